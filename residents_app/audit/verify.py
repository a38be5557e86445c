"""Walking the hash chains: recompute every hash and link, name the first broken entry.

Read-only. Used by `flask audit verify`, the verification desk and the dashboards.

Features above audit compare their own tables with what the log says through EXTRA_CHECKS (audit imports none
of them): rounds registers its recount of each closed round from the chain's ballot entries (rounds/recount.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from residents_app.audit.chain import GENESIS, compute_hash
from residents_app.audit.models import AuditEvent
from residents_app.extensions import db

BATCH = 1000
COLUMNS = ("id", "chain", "seq", "kind", "at", "actor", "subject_type", "subject_id", "data",
           "prev_hash", "hash")


@dataclass(frozen=True)
class Break:
    """The first broken entry of a chain."""

    chain: int
    seq: int
    event_id: int | None
    kind: str
    problem: str  # stable English code: hash_mismatch, link_broken, seq_gap, reordered, bad_start
    message: str  # Chinese, for the operator

    def describe(self) -> str:
        ident = f"id={self.event_id}" if self.event_id is not None else "id=?"
        return f"链 {self.chain} 第 {self.seq} 条（{ident}，{self.kind}）：{self.message}"


@dataclass
class ChainReport:
    chain: int
    entry_count: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    broken: Break | None = None  # head_seq / head_hash then describe the last good entry
    # Walked from this checkpoint (entries up to from_seq were verified earlier, at checkpoint_at by checkpoint_by)
    from_seq: int = 0
    checkpoint_at: object = None
    checkpoint_by: str = ""

    @property
    def ok(self) -> bool:
        return self.broken is None


def chains_present(estate_ids: list[int] | None = None) -> list[int]:
    q = sa.select(AuditEvent.chain).distinct().order_by(AuditEvent.chain)
    if estate_ids is not None:
        q = q.where(AuditEvent.chain.in_(estate_ids))
    return list(db.session.execute(q).scalars())


def verify_chain(chain: int) -> ChainReport:
    """Walk one chain in seq order and stop at the first entry that does not check out.

    Checks, in order, for each entry: seq follows the previous one (a gap means removed entries),
    the row ids rise with seq (rows are inserted in seq order, so a falling id means two entries
    were swapped), prev_hash equals the previous entry's hash, and the stored hash equals the
    SHA-256 recomputed over the entry's canonical JSON.
    """
    return _walk(ChainReport(chain=chain), 0, GENESIS, 0)


def _walk(report: ChainReport, prev_seq: int, prev_hash: str, prev_id: int) -> ChainReport:
    """Check the entries after `prev_seq` (whose hash and row id are given), stopping at the first bad one."""
    chain = report.chain
    # Plain rows, not ORM objects: a long chain must not fill the session's identity map.
    stmt = (
        sa.select(*_columns())
        .where(AuditEvent.chain == chain, AuditEvent.seq > prev_seq)
        .order_by(AuditEvent.seq)
        .execution_options(yield_per=BATCH)
    )
    result = db.session.execute(stmt)
    try:
        _walk_rows(report, result, prev_seq, prev_hash, prev_id)
    finally:
        result.close()  # stopping early must still close PostgreSQL's server-side cursor
    return report


def _columns():
    return [AuditEvent.__table__.c[name] for name in COLUMNS]


def _walk_rows(report: ChainReport, rows, prev_seq: int, prev_hash: str, prev_id: int) -> tuple[int, str, int]:
    """Check `rows` (entries in seq order after `prev_seq`); report's counts, head and first break updated."""
    for ev in rows:
        problem = _check(ev, prev_seq, prev_hash, prev_id)
        if problem is not None:
            code, message = problem
            report.broken = Break(chain=report.chain, seq=ev.seq, event_id=ev.id, kind=ev.kind,
                                  problem=code, message=message)
            break
        report.entry_count += 1
        prev_seq, prev_hash, prev_id = ev.seq, ev.hash, ev.id
    report.head_seq, report.head_hash = prev_seq, prev_hash
    return prev_seq, prev_hash, prev_id


def verify_since_checkpoint(chain: int) -> ChainReport:
    """The desk's check: the checkpointed entry (still there, same hash, its hash recomputes), then only the
    entries after it. Without a checkpoint, or when the checkpointed entry no longer checks out, the whole chain
    is walked (so a break is located as verify_chain locates it).

    One statement when little came after the checkpoint: the checkpoint row joined to its entry and the entries
    after it (up to BATCH of them; a longer tail is walked on in batches)."""
    return verify_checkpoint_rows(chain, db.session.execute(checkpoint_statement(), {"p_chain": chain}).all())


_CHECKPOINT: list[sa.Select] = []


def checkpoint_statement() -> sa.Select:
    """verify_since_checkpoint's statement, built once, the chain bound as p_chain: the checkpoint (cp_seq,
    cp_hash, verified_at, verified_by) with its entry and the entries after it (COLUMNS), in seq order, at most
    BATCH + 1 rows; no row without a checkpoint. A page may read it together with other rows of the chain (as a
    subquery) and hand its rows to verify_checkpoint_rows."""
    if not _CHECKPOINT:
        from residents_app.audit.models import AuditCheckpoint

        cp, ev = AuditCheckpoint.__table__, AuditEvent.__table__
        _CHECKPOINT.append(
            sa.select(cp.c.seq.label("cp_seq"), cp.c.hash.label("cp_hash"), cp.c.verified_at, cp.c.verified_by,
                      *_columns())
            .select_from(cp.outerjoin(ev, sa.and_(ev.c.chain == cp.c.chain, ev.c.seq >= cp.c.seq)))
            .where(cp.c.chain == sa.bindparam("p_chain", type_=sa.Integer)).order_by(ev.c.seq).limit(BATCH + 1))
    return _CHECKPOINT[0]


def verify_checkpoint_rows(chain: int, rows: list) -> ChainReport:
    """verify_since_checkpoint from checkpoint_statement's rows (read by the caller)."""
    if not rows:
        return verify_chain(chain)
    first = rows[0]
    if first.seq != first.cp_seq or first.hash != first.cp_hash or compute_hash(first) != first.hash:
        return verify_chain(chain)
    report = ChainReport(chain=chain, entry_count=first.seq, from_seq=first.seq, checkpoint_at=first.verified_at,
                         checkpoint_by=first.verified_by)
    head = _walk_rows(report, rows[1:], first.seq, first.hash, first.id)
    if report.ok and len(rows) > BATCH:
        _walk(report, *head)
    return report


def record_checkpoint(report: ChainReport, *, actor: str, now) -> None:
    """After a full walk found the chain intact: its head becomes the chain's checkpoint (in the caller's
    transaction). A broken or empty chain, or a walk that started at a checkpoint, records nothing."""
    from residents_app.audit.models import AuditCheckpoint

    if not report.ok or report.head_seq == 0 or report.from_seq:
        return
    cp = db.session.get(AuditCheckpoint, report.chain)
    if cp is None:
        db.session.add(AuditCheckpoint(chain=report.chain, seq=report.head_seq, hash=report.head_hash,
                                       verified_at=now, verified_by=actor))
    elif report.head_seq >= cp.seq:
        cp.seq, cp.hash, cp.verified_at, cp.verified_by = report.head_seq, report.head_hash, now, actor
    db.session.flush()


def advance_checkpoint(report: ChainReport, *, actor: str, now) -> bool:
    """After the desk's check found the chain intact up to a head past its checkpoint (a walk from genesis, or
    from the checkpoint through the entries since): that head becomes the checkpoint, so the next view reads only
    what comes after it. One upsert, in the caller's transaction; a checkpoint already further on (another view
    at the same time) is kept. True when a row was written. Who may record it is the caller's decision (the desk:
    the street office and admin, not a committee member)."""
    from residents_app.audit.models import AuditCheckpoint

    if not report.ok or report.head_seq <= report.from_seq:
        return False
    table = AuditCheckpoint.__table__
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(chain=report.chain, seq=report.head_seq, hash=report.head_hash, verified_at=now,
                                verified_by=actor)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.chain],
        set_={"seq": stmt.excluded.seq, "hash": stmt.excluded.hash, "verified_at": stmt.excluded.verified_at,
              "verified_by": stmt.excluded.verified_by},
        where=table.c.seq < stmt.excluded.seq)
    db.session.execute(stmt)
    return True


def _check(ev, prev_seq: int, prev_hash: str, prev_id: int) -> tuple[str, str] | None:
    if ev.seq != prev_seq + 1:
        if prev_seq == 0:
            return "bad_start", f"链应从第 1 条开始，却从第 {ev.seq} 条开始（前面的条目被删除）"
        missing = f"第 {prev_seq + 1} 条" if ev.seq == prev_seq + 2 else f"第 {prev_seq + 1}–{ev.seq - 1} 条"
        return "seq_gap", f"序号不连续：缺少{missing}（条目被删除）"
    if ev.id < prev_id:
        return "reordered", f"顺序被调换：本条记录编号 {ev.id} 小于前一条（第 {prev_seq} 条）的 {prev_id}"
    if ev.prev_hash != prev_hash:
        points_to = _seq_of_hash(ev.chain, ev.prev_hash)
        if points_to is not None and points_to != prev_seq:
            return "reordered", (f"顺序被调换：本条的 prev_hash 指向第 {points_to} 条，"
                                 f"它本应排在第 {points_to + 1} 条的位置")
        return "link_broken", (f"与前一条不衔接：prev_hash {ev.prev_hash[:12]}… 不等于第 {prev_seq} 条的哈希 "
                               f"{prev_hash[:12]}…（前一条被改动后重算了哈希，或本条被改动）")
    recomputed = compute_hash(ev)
    if recomputed != ev.hash:
        return "hash_mismatch", (f"内容被改动：重新计算的哈希 {recomputed[:12]}… 与记录的哈希 {ev.hash[:12]}… "
                                 "不一致")
    return None


def _seq_of_hash(chain: int, hash_: str) -> int | None:
    return db.session.execute(
        sa.select(AuditEvent.seq).where(AuditEvent.chain == chain, AuditEvent.hash == hash_)
    ).scalar_one_or_none()


def verify_all(estate_ids: list[int] | None = None) -> list[ChainReport]:
    return [verify_chain(c) for c in chains_present(estate_ids)]


# ---- extra checks registered by the features above audit ------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A disagreement between a feature's tables and the log (found by an extra check)."""

    chain: int  # the estate whose log it is
    subject: str  # Chinese, names the thing: "表决 #3「外立面改造意愿征求」"
    code: str  # stable English code, e.g. current_ballot_mismatch
    message: str  # Chinese, names what differs (the unit, both values)

    def describe(self) -> str:
        return f"{self.subject}：{self.message}"


# Each check takes the estate ids to look at (None = all) and returns what it found wrong (empty: all agree).
ExtraCheck = Callable[[list[int] | None], list[Problem]]
EXTRA_CHECKS: list[ExtraCheck] = []


def register_check(check: ExtraCheck) -> ExtraCheck:
    """Add a check run by `flask audit verify` (once, however often the registering module is imported)."""
    if check not in EXTRA_CHECKS:
        EXTRA_CHECKS.append(check)
    return check


def run_extra_checks(estate_ids: list[int] | None = None) -> list[Problem]:
    problems: list[Problem] = []
    for check in EXTRA_CHECKS:
        problems.extend(check(estate_ids))
    return problems
