"""Appending to the audit log, in the caller's transaction (the caller commits)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event

from residents_app.audit.models import AuditEvent
from residents_app.extensions import db

GENESIS = "0" * 64


def canonical_json(entry: dict) -> str:
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_dict(ev: AuditEvent) -> dict:
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


def compute_hash(ev: AuditEvent) -> str:
    return hashlib.sha256(canonical_json(entry_dict(ev)).encode("utf-8")).hexdigest()


def _lock_chain(chain: int) -> None:
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appends to one chain; released at commit or rollback.
        session.execute(sa.text("SELECT pg_advisory_xact_lock(7301, :chain)"), {"chain": chain})
    # SQLite: every transaction starts with BEGIN IMMEDIATE, so writers are already serialised.


def record(kind: str, *, chain: int, actor: str, now: datetime, subject_type: str = "",
           subject_id: str | int = "", data: dict | None = None) -> AuditEvent:
    """Append one event to the chain of an estate (chain=estate_id) in the current transaction."""
    _lock_chain(chain)
    last = db.session.execute(
        sa.select(AuditEvent.seq, AuditEvent.hash)
        .where(AuditEvent.chain == chain)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).first()
    ev = AuditEvent(
        chain=chain,
        seq=(last.seq + 1) if last else 1,
        kind=kind,
        at=now,
        actor=actor,
        subject_type=subject_type,
        subject_id=str(subject_id),
        # Round-trip through JSON so the stored value hashes the same after reload.
        data=json.loads(canonical_json(data or {})),
        prev_hash=last.hash if last else GENESIS,
    )
    ev.hash = compute_hash(ev)
    db.session.add(ev)
    db.session.flush()
    return ev


def actor_for_user(user) -> str:
    return f"user:{user.id}:{user.username}" if user is not None else "system"


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target):
    raise RuntimeError("audit_event is append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise RuntimeError("audit_event is append-only")
