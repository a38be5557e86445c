"""Appending to the audit log, in the caller's transaction (the caller commits)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import make_transient_to_detached

from residents_app.audit.chain import (
    _COLUMNS,
    GENESIS,
    canonical_json,
    chain_entry,
    compute_hash,
)
from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.extensions import db

CHAIN_LOCK_KEY = 7301  # pg_advisory_xact_lock(CHAIN_LOCK_KEY, chain): the lock every append to a chain holds
_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock(7301, :chain)")
_TRY_LOCK_SQL = sa.text("SELECT pg_try_advisory_xact_lock(7301, :chain)")
# Built once: constructing the statement costs more than running it on a hot path.
_HEAD_SQL = (sa.select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain == sa.bindparam("p_chain"))
             .order_by(AuditEvent.seq.desc()).limit(1))
_INSERT_SQL = sa.insert(AuditEvent.__table__).returning(AuditEvent.__table__.c.id)
_INSERT_MANY_SQL = sa.insert(AuditEvent.__table__)
_PENDING = AuditPending.__table__
_PENDING_SQL = (sa.select(_PENDING).where(_PENDING.c.chain == sa.bindparam("p_chain"))
                .order_by(_PENDING.c.id).limit(sa.bindparam("p_limit")))
_PENDING_DELETE_SQL = sa.delete(_PENDING).where(_PENDING.c.id.in_(sa.bindparam("p_ids", expanding=True)))
SEAL_BATCH = 2000


def _lock_chain(conn, chain: int, *, wait: bool = True) -> bool:
    """Serialise appends to one chain (PostgreSQL: an advisory lock released at commit or rollback). SQLite:
    every transaction starts with BEGIN IMMEDIATE, so writers are already serialised. False: busy (wait=False)."""
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        conn.execute(_LOCK_SQL, {"chain": chain})
        return True
    return bool(conn.execute(_TRY_LOCK_SQL, {"chain": chain}).scalar_one())


def _seal_locked(conn, chain: int) -> tuple[int, str, int]:
    """With the chain's lock held: move its pending events onto it, in id order (one batch). Returns the new
    head (seq, hash) and how many were sealed."""
    last = conn.execute(_HEAD_SQL, {"p_chain": chain}).first()
    seq, prev = (last.seq, last.hash) if last else (0, GENESIS)
    rows = conn.execute(_PENDING_SQL, {"p_chain": chain, "p_limit": SEAL_BATCH}).all()
    if not rows:
        return seq, prev, 0
    entries = []
    for row in rows:
        seq += 1
        entry = chain_entry(chain=chain, seq=seq, kind=row.kind, at=row.at, actor=row.actor,
                            subject_type=row.subject_type, subject_id=row.subject_id,
                            data=row.data or {}, prev_hash=prev)  # data as decoded from the database
        prev = entry["hash"]
        entries.append(entry)
    ids = [row.id for row in rows]
    if conn.dialect.name == "postgresql":
        # One statement for the batch: the entries as one JSON parameter, and the pending rows gone with them
        # (one row per INSERT would cost a statement each on the server).
        conn.execute(_PG_MOVE_SQL, {"p_entries": json.dumps(entries, default=_iso), "p_ids": ids})
    else:
        conn.execute(_INSERT_MANY_SQL, entries)
        conn.execute(_PENDING_DELETE_SQL, {"p_ids": ids})
    return seq, prev, len(rows)




def _seal_all_locked(conn, chain: int) -> tuple[int, str]:
    """_seal_locked until nothing is left pending on the chain; the new head (seq, hash)."""
    while True:
        seq, prev, n = _seal_locked(conn, chain)
        if n < SEAL_BATCH:
            return seq, prev


def _iso(value):
    return value.isoformat()


_PG_MOVE_SQL = sa.text(
    "WITH gone AS (DELETE FROM audit_pending WHERE id = ANY(CAST(:p_ids AS INTEGER[]))) "
    "INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash) "
    "SELECT chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash "
    "FROM json_to_recordset(CAST(:p_entries AS JSON)) AS e(chain INTEGER, seq INTEGER, kind VARCHAR, "
    "at TIMESTAMP WITH TIME ZONE, actor VARCHAR, subject_type VARCHAR, subject_id VARCHAR, data JSON, "
    "prev_hash VARCHAR, hash VARCHAR) ORDER BY seq"
)


def seal_chain(chain: int) -> None:
    """In the caller's transaction: take the chain's lock and seal all its pending events. The synchronous mode
    of a hot path (the lock is then held until the caller commits, as for record())."""
    db.session.flush()
    conn = db.session.connection()
    _lock_chain(conn, chain)
    _seal_all_locked(conn, chain)


@dataclass
class SealRun:
    sealed: int = 0
    busy: set[int] = field(default_factory=set)  # chains whose lock another process held (wait=False)


def pending_chains() -> list[int]:
    return list(db.session.execute(sa.select(_PENDING.c.chain).distinct().order_by(_PENDING.c.chain)).scalars())


def pending_count(chain: int | None = None) -> int:
    q = sa.select(sa.func.count()).select_from(_PENDING)
    if chain is not None:
        q = q.where(_PENDING.c.chain == chain)
    return db.session.execute(q).scalar_one()


def seal_pending(chains=None, *, wait: bool = True) -> SealRun:
    """Seal the pending events of `chains` (all chains with any when None), one transaction (committed here)
    per chain and batch. wait=False skips a chain whose lock is held elsewhere (reported in .busy): whoever
    holds it seals what it can see, and the caller retries for what committed after that."""
    db.session.commit()
    run = SealRun()
    for chain in sorted(pending_chains() if chains is None else set(chains)):
        while True:
            conn = db.session.connection()
            if not _lock_chain(conn, chain, wait=wait):
                db.session.rollback()
                run.busy.add(chain)
                break
            _, _, n = _seal_locked(conn, chain)
            db.session.commit()
            run.sealed += n
            if n < SEAL_BATCH:
                break
    return run


def record(kind: str, *, chain: int, actor: str, now: datetime, subject_type: str = "",
           subject_id: str | int = "", data: dict | None = None) -> AuditEvent:
    """Append one event to the chain of an estate (chain=estate_id) in the current transaction.

    The chain's pending events (online ballots committed but not yet sealed) go first, under the same lock, so
    the chain's order follows the order in which things were committed."""
    if now.tzinfo is None:
        raise ValueError("audit.record needs an aware datetime")
    # Hash the instant as the database returns it (UTC), or a caller's +08:00 would not verify after reload.
    now = now.astimezone(UTC)
    # Pending changes of the caller go first (autoflush), then the lock, then the chain head.
    db.session.flush()
    conn = db.session.connection()
    _lock_chain(conn, chain)
    seq, prev = _seal_all_locked(conn, chain)
    ev = AuditEvent(
        chain=chain,
        seq=seq + 1,
        kind=kind,
        at=now,
        actor=actor,
        subject_type=subject_type,
        subject_id=str(subject_id),
        # Round-trip through JSON so the stored value hashes the same after reload.
        data=json.loads(canonical_json(data or {})),
        prev_hash=prev,
    )
    ev.hash = compute_hash(ev)
    # A plain INSERT .. RETURNING id, then the object joins the session as persistent (no unit of work).
    ev.id = conn.execute(_INSERT_SQL, {k: ev.__dict__[k] for k in _COLUMNS}).scalar_one()
    make_transient_to_detached(ev)
    db.session.add(ev)
    return ev


def actor_for_user(user) -> str:
    return f"user:{user.id}:{user.username}" if user is not None else "system"


@event.listens_for(AuditEvent, "before_update")
def _refuse_update(mapper, connection, target):
    raise RuntimeError("audit_event is append-only")


@event.listens_for(AuditEvent, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise RuntimeError("audit_event is append-only")


def log_export(what: str, *, estate_id: int, user, now: datetime, subject_type: str, subject_id,
               rows: int | None = None) -> AuditEvent:
    """Every download holding personal data or official figures is logged (who, what, when)."""
    data = {"what": what}
    if rows is not None:
        data["rows"] = rows
    return record("export.downloaded", chain=estate_id, actor=actor_for_user(user), now=now,
                  subject_type=subject_type, subject_id=subject_id, data=data)
