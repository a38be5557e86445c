"""Appending to the audit log, in the caller's transaction (the caller commits)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import make_transient_to_detached

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


_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock(7301, :chain)")
# Built once: constructing the statement costs more than running it on the hot path (every ballot).
_HEAD_SQL = (sa.select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.chain == sa.bindparam("p_chain"))
             .order_by(AuditEvent.seq.desc()).limit(1))
_INSERT_SQL = sa.insert(AuditEvent.__table__).returning(AuditEvent.__table__.c.id)
_COLUMNS = ("chain", "seq", "kind", "at", "actor", "subject_type", "subject_id", "data", "prev_hash", "hash")


def _lock_chain(chain: int) -> None:
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        # Serialise appends to one chain; released at commit or rollback.
        session.execute(_LOCK_SQL, {"chain": chain})
    # SQLite: every transaction starts with BEGIN IMMEDIATE, so writers are already serialised.


def record(kind: str, *, chain: int, actor: str, now: datetime, subject_type: str = "",
           subject_id: str | int = "", data: dict | None = None) -> AuditEvent:
    """Append one event to the chain of an estate (chain=estate_id) in the current transaction."""
    return record_then(kind, chain=chain, actor=actor, now=now, subject_type=subject_type, subject_id=subject_id,
                       data=data)


_WITH_THEN: dict[int, sa.Executable] = {}


def record_then(kind: str, *, chain: int, actor: str, now: datetime, subject_type: str = "",
                subject_id: str | int = "", data: dict | None = None,
                then: tuple[sa.Executable, Callable[[AuditEvent], dict]] | None = None) -> AuditEvent:
    """record(), then `then` = (an UPDATE with bind parameters, ev -> its parameters): a write that needs the
    event's hash (a ballot's receipt code). On PostgreSQL both go in one statement (WITH .. UPDATE ..
    INSERT), one round trip less while the chain lock is held; the UPDATE's parameter names must not be
    column names of audit_event."""
    if now.tzinfo is None:
        raise ValueError("audit.record needs an aware datetime")
    # Hash the instant as the database returns it (UTC), or a caller's +08:00 would not verify after reload.
    now = now.astimezone(UTC)
    # Pending changes of the caller go first (autoflush), then the lock, then the chain head.
    db.session.flush()
    _lock_chain(chain)
    conn = db.session.connection()
    last = conn.execute(_HEAD_SQL, {"p_chain": chain}).first()
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
    # A plain INSERT .. RETURNING id, then the object joins the session as persistent (no unit of work).
    params = {k: ev.__dict__[k] for k in _COLUMNS}
    if then is not None and conn.dialect.name == "postgresql":
        update, make_params = then
        stmt = _WITH_THEN.get(id(update))
        if stmt is None:
            stmt = _WITH_THEN[id(update)] = _INSERT_SQL.add_cte(update.cte("then_update"))
        ev.id = conn.execute(stmt, {**params, **make_params(ev)}).scalar_one()
    else:
        ev.id = conn.execute(_INSERT_SQL, params).scalar_one()
        if then is not None:
            conn.execute(then[0], then[1](ev))
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


# ---- Street office sign-off, exports, receipts (the verification desk) -------------------------

SIGNOFF_KIND = "round.verification"
DECISIONS = {"verified": "核验通过", "returned": "退回"}


def sign_off(rnd, *, decision: str, comment: str, user, now: datetime) -> AuditEvent:
    """The street office's verdict on a closed round, kept only in the log (the log is the record)."""
    from residents_app.audit.verify import verify_chain
    from residents_app.errors import Conflict, ValidationFailed

    comment = (comment or "").strip()
    errors = {}
    if decision not in DECISIONS:
        errors["decision"] = "请选择“核验通过”或“退回”"
    if decision == "returned" and not comment:
        errors["comment"] = "退回时必须填写意见，说明需要业委会补正什么"
    if len(comment) > 2000:
        errors["comment"] = "意见不能超过 2000 字"
    if errors:
        raise ValidationFailed("核验意见有误：" + "；".join(errors.values()), errors=errors)
    if rnd.status != "closed":
        raise Conflict("表决尚未结束，不能核验", code="round_not_closed")
    chain = verify_chain(rnd.estate_id)
    if decision == "verified" and not chain.ok:
        raise Conflict(f"本小区审计日志校验未通过（{chain.broken.describe()}），不能核验通过",
                       code="audit_chain_broken")
    from residents_app.rounds.models import RoundResult

    result = db.session.get(RoundResult, rnd.id)
    return record(SIGNOFF_KIND, chain=rnd.estate_id, actor=actor_for_user(user), now=now, subject_type="round",
                  subject_id=rnd.id,
                  data={"decision": decision, "comment": comment, "round_id": rnd.id,
                        "passed": result.passed if result is not None else None,
                        "chain_head_seq": chain.head_seq, "chain_head_hash": chain.head_hash})


def signoffs(round_id: int, estate_id: int) -> list[AuditEvent]:
    return list(db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.chain == estate_id, AuditEvent.kind == SIGNOFF_KIND,
                                    AuditEvent.subject_type == "round", AuditEvent.subject_id == str(round_id))
        .order_by(AuditEvent.seq)).scalars())


def log_export(what: str, *, estate_id: int, user, now: datetime, subject_type: str, subject_id,
               rows: int | None = None) -> AuditEvent:
    """Every download holding personal data or official figures is logged (who, what, when)."""
    data = {"what": what}
    if rows is not None:
        data["rows"] = rows
    return record("export.downloaded", chain=estate_id, actor=actor_for_user(user), now=now,
                  subject_type=subject_type, subject_id=subject_id, data=data)
