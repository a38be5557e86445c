"""The chain's hashing: what an entry's hash covers, its canonical JSON, and the entry at a given place.

Both the writer (services, sealer) and the checker (verify) use these; neither imports the other."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from types import SimpleNamespace

_COLUMNS = ("chain", "seq", "kind", "at", "actor", "subject_type", "subject_id", "data", "prev_hash", "hash")
GENESIS = "0" * 64


def canonical_json(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_dict(ev) -> dict:
    """What an entry's hash covers (an AuditEvent, or anything with the same attributes)."""
    return {
        "chain": ev.chain,
        "seq": ev.seq,
        "kind": ev.kind,
        "at": ev.at.isoformat(),
        "actor": ev.actor,
        "subject_type": ev.subject_type,
        "subject_id": ev.subject_id,
        "data": ev.data,
        "prev_hash": ev.prev_hash,
    }


def compute_hash(ev) -> str:
    return hashlib.sha256(canonical_json(entry_dict(ev)).encode("utf-8")).hexdigest()


def new_receipt() -> str:
    """A ballot's receipt code: 20 hex digits (80 random bits), written into the ballot's audit entry, so the
    sealed chain commits to it; the voter looks the entry up by it."""
    return secrets.token_hex(10)


def chain_entry(*, chain: int, seq: int, kind: str, at: datetime, actor: str, subject_type: str, subject_id: str,
                data: dict, prev_hash: str) -> dict:
    """The column values of the chain entry at `seq` after `prev_hash`, its hash included (`at` hashed as UTC,
    the form the database gives back; `data` must already be in its JSON-decoded form)."""
    entry = SimpleNamespace(chain=chain, seq=seq, kind=kind, at=at.astimezone(UTC), actor=actor,
                            subject_type=subject_type, subject_id=subject_id, data=data, prev_hash=prev_hash)
    entry.hash = compute_hash(entry)
    return {k: getattr(entry, k) for k in _COLUMNS}
