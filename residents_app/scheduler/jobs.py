"""Scheduler jobs. Each is idempotent: it acts on what is due at `now`, re-checks every window under a
row lock in its own transaction, and running it twice changes nothing the second time.

`tick(now)` processes, in this order, each step in order of due time:
1. open rounds due to open, 2. close rounds due to close (the rounds feature stores the final tally),
3. end publicity periods past their end with no open objection, 4. close pledge windows,
5. remind the committees of finance publicity due (one per finished month), 6. queue reminders in the outbox,
7. delete roster uploads previewed but never confirmed (24 hours).
Steps 3-7 (and the features' overdue reminders between them) touch nothing a round's close reads but the chains'
heads, which the close checks: they run once the rounds due to close are known, before the first of them closes;
on PostgreSQL at the same time as the read of those rounds' figures (scheduler/closing.plan_meanwhile), which the
server answers meanwhile. The JobRun reports their actions after the closes', in the order above.
On PostgreSQL the whole tick holds an advisory lock (pg_try_advisory_lock): a second scheduler
process finds it taken and skips. On SQLite every transaction is BEGIN IMMEDIATE, which serialises.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.extensions import db
from residents_app.scheduler.models import JobRun

log = logging.getLogger(__name__)

ACTOR = "system:scheduler"
TICK_LOCK_KEY = 73_010_001  # pg advisory lock id of the tick


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _optional(module: str, name: str) -> Callable | None:
    """A function another feature provides, or None while that feature is not built yet."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            return None
        raise
    return getattr(mod, name, None)


@contextlib.contextmanager
def advisory_lock(enabled: bool = True) -> Iterator[bool]:
    """Yield True if this process may run the tick. PostgreSQL: a session advisory lock held on a
    dedicated connection for the whole tick. SQLite: always True (BEGIN IMMEDIATE serialises)."""
    if not enabled or db.engine.dialect.name != "postgresql":
        yield True
        return
    conn = db.engine.connect()
    try:
        got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": TICK_LOCK_KEY}).scalar_one()
        conn.commit()
        try:
            yield bool(got)
        finally:
            if got:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": TICK_LOCK_KEY})
                conn.commit()
    finally:
        conn.close()


def _rounds_in_order(items, attr: str) -> list[tuple[int, datetime]]:
    """Round ids (or rounds) in order of their due time (`opens_at` / `closes_at`), then id."""
    from residents_app.rounds.models import Round

    ids = [int(getattr(it, "id", it)) for it in (items or [])]
    if not ids:
        return []
    column = getattr(Round, attr)
    rows = db.session.execute(sa.select(Round.id, column).where(Round.id.in_(ids)).order_by(column, Round.id)).all()
    return [(r[0], r[1]) for r in rows]


def _each_window(actions: list, kind: str, items: list[tuple[int, datetime | None]],
                 act: Callable[[int], bool]) -> None:
    """Run `act` per window in its own transaction; one failing window never blocks the others."""
    for wid, due in items:
        try:
            acted = bool(act(wid))
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - logged and recorded; the next tick retries
            db.session.rollback()
            log.exception("scheduler: %s %s failed", kind, wid)
            actions.append({"kind": kind, "id": wid, "due": due.isoformat() if due else None,
                            "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        if acted:
            actions.append({"kind": kind, "id": wid, "due": due.isoformat() if due else None})


def seal_audit(now: datetime, actions: list) -> None:
    """Audit events of online ballots still pending (a process died between its commit and its sealer): onto
    their chains, first, so what the other steps append comes after them."""
    from residents_app.audit.services import seal_pending

    try:
        run = seal_pending()
    except Exception as exc:  # noqa: BLE001 - logged and recorded; the next tick retries
        db.session.rollback()
        log.exception("scheduler: sealing pending audit events failed")
        actions.append({"kind": "audit_sealed", "id": None, "due": None, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return
    if run.sealed:
        actions.append({"kind": "audit_sealed", "id": None, "due": None, "count": run.sealed})


def open_due_rounds(now: datetime, actions: list) -> None:
    due = _optional("residents_app.rounds.services", "rounds_due_to_open")
    act = _optional("residents_app.rounds.services", "open_round")
    if due is None or act is None:
        return
    items = _rounds_in_order(due(now), "opens_at")
    db.session.commit()
    _each_window(actions, "round_opened", items, lambda rid: act(rid, now, ACTOR))


def close_due_rounds(now: datetime, actions: list, meanwhile: Callable[[], None] = lambda: None) -> None:
    """The rounds due to close, each in its own transaction. `meanwhile` (the tick's later steps) runs before the
    first close: on PostgreSQL while the server reads the due rounds' figures (scheduler/closing.plan_meanwhile).
    What `meanwhile` raises is raised once the rounds are closed (as when those steps ran after the closes)."""
    due = _optional("residents_app.rounds.services", "rounds_due_to_close")
    act = _optional("residents_app.rounds.services", "close_round")
    if due is None or act is None:
        meanwhile()
        return
    items = _rounds_in_order(due(now), "closes_at")
    db.session.commit()
    failed: list[BaseException] = []

    def later() -> None:  # a later step's failure neither passes for the read's nor keeps the rounds open
        try:
            meanwhile()
        except BaseException as exc:  # noqa: BLE001 - raised below, after the closes
            db.session.rollback()
            failed.append(exc)

    _close_rounds(now, actions, items, act, later)
    if failed:
        raise failed[0]


def _close_rounds(now: datetime, actions: list, items: list[tuple[int, datetime]], act: Callable,
                  later: Callable[[], None]) -> None:
    make_batch = _optional("residents_app.rounds.closing", "CloseBatch")
    if make_batch is None or not items:
        later()
        _each_window(actions, "round_closed", items, lambda rid: act(rid, now, ACTOR))
        return
    # Many rounds at once (rounds/closing.py): the whole batch read in one statement (PostgreSQL), then each round
    # closed in its own transaction, on several connections at once (scheduler/closing.py), the rest one by one
    # here; a round whose close fails stays open and is retried by the next tick.
    from residents_app.scheduler import closing

    batch = make_batch([rid for rid, _ in items])
    try:
        closing.plan_meanwhile(batch, now, ACTOR, later)
        db.session.commit()
    except Exception:  # noqa: BLE001 - every round then takes the per-round path
        db.session.rollback()
        log.exception("scheduler: reading the due rounds' figures failed")
        batch = make_batch([rid for rid, _ in items])
    n = closing.connections_to_use(batch)
    done = closing.close_on_connections(batch, items, now, ACTOR, n) if n else set()
    rest: list[dict] = []
    _each_window(rest, "round_closed", [it for it in items if it[0] not in done],
                 lambda rid: batch.close(rid, now, ACTOR))
    order = {rid: i for i, (rid, _) in enumerate(items)}
    actions.extend(sorted([{"kind": "round_closed", "id": rid, "due": due.isoformat()}
                           for rid, due in items if rid in done] + rest, key=lambda a: order[a["id"]]))


def end_due_publicity(now: datetime, actions: list) -> None:
    from residents_app.publicity.services import end_publicity_if_due, publicity_due

    items = publicity_due(now)
    db.session.commit()
    _each_window(actions, "publicity_ended", items, lambda pid: end_publicity_if_due(pid, now, ACTOR))


def _optional_step(now: datetime, actions: list, module: str, name: str, kind: str, what: str) -> None:
    """One optional feature's idempotent step in its own transaction; a failure is recorded, the tick goes on."""
    fn = _optional(module, name)
    if fn is None:
        return
    try:
        n = int(fn(now) or 0)
        db.session.commit()
    except Exception as exc:  # noqa: BLE001
        db.session.rollback()
        log.exception("scheduler: %s failed", what)
        actions.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return
    if n:
        actions.append({"kind": kind, "count": n})


def close_pledge_windows(now: datetime, actions: list) -> None:
    _optional_step(now, actions, "residents_app.funding.services", "close_due_pledge_windows",
                   "pledge_windows_closed", "closing pledge windows")


def remind_finance_publicity(now: datetime, actions: list) -> None:
    """A month's finance publicity is due once the month is over: the committee is reminded once per month."""
    _optional_step(now, actions, "residents_app.funding.finance", "remind_due_finance_publicity",
                   "finance_publicity_due", "finance publicity reminders")


def remind_overdue_progress(now: datetime, actions: list) -> None:
    """A project whose progress report is overdue (its interval passed) is reminded once per missed due date."""
    _optional_step(now, actions, "residents_app.works.construction.progress", "remind_overdue_reports",
                   "progress_report_overdue", "progress report reminders")


def flag_overdue_complaints(now: datetime, actions: list) -> None:
    """A complaint or question not answered by its due day is flagged to the street office, once."""
    _optional_step(now, actions, "residents_app.works.construction.complaints", "flag_overdue_complaints",
                   "complaints_overdue", "overdue complaints")


def remind_overdue_rectifications(now: datetime, actions: list) -> None:
    """A rectification item (the construction's or the acceptance's) still open after its due day: its owner is
    reminded once."""
    _optional_step(now, actions, "residents_app.works.acceptance.overdue", "remind_overdue_items",
                   "rectifications_overdue", "overdue rectification reminders")


ROUND_REMINDER_BEFORE = timedelta(hours=24)
ROUND_SECOND_REMINDER_BEFORE = timedelta(hours=48)
# An opening notice later than this after the round opened (a long outage) is dropped: the closing reminders
# still reach the units that have not voted.
ROUND_OPENING_NOTICE_WITHIN = timedelta(hours=12)


def queue_reminders(now: datetime, actions: list) -> None:
    """Reminders, each queued once (templates in notify/templates.py): a notice to every unit when a publicity
    starts and when a round opens, a reminder to the units that have not voted 48 and 24 hours before a round
    closes, and the features' own (objection answered, pledge window closing, settlement due)."""
    _queue_publicity_notices(now, actions)
    _queue_round_openings(now, actions)
    # 48 h: rounds closing in 24-48 hours (closer ones get the 24-hour reminder only, not a "two days left")
    _queue_round_reminders(now, actions, ROUND_SECOND_REMINDER_BEFORE, "round_closing_48h",
                           "round_reminders_48h_queued", after=ROUND_REMINDER_BEFORE)
    _queue_round_reminders(now, actions, ROUND_REMINDER_BEFORE, "round_closing_24h", "round_reminders_queued")
    for module, name, kind in FEATURE_REMINDERS:
        fn = _optional(module, name)
        if fn is None:
            continue
        try:
            n = int(fn(now) or 0)
            db.session.commit()
        except Exception as exc:  # noqa: BLE001 - logged and recorded; the next tick retries
            db.session.rollback()
            log.exception("scheduler: %s failed", kind)
            actions.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}"[:300]})
            continue
        if n:
            actions.append({"kind": kind, "count": n})


# (module, function(now) -> messages queued, action kind): each queues its reminders once (dedupe keys).
FEATURE_REMINDERS = (
    ("residents_app.publicity.answer_notices", "queue_objection_answers", "objection_answers_queued"),
    ("residents_app.funding.reminders", "queue_pledge_window_closing", "pledge_reminders_queued"),
    ("residents_app.funding.reminders", "queue_settlement_due", "settlement_notices_queued"),
)


def _queue_round_openings(now: datetime, actions: list) -> None:
    from residents_app.rounds.models import Round

    rows = db.session.execute(
        sa.select(Round.id, Round.opens_at).where(
            Round.status == "open", Round.closes_at > now, Round.opens_at <= now,
            Round.opens_at > now - ROUND_OPENING_NOTICE_WITHIN)
        .order_by(Round.opens_at, Round.id)).all()
    db.session.commit()
    notify = _optional("residents_app.rounds.reminders", "queue_opening_notice")
    if notify is None:
        return
    _each_window(actions, "round_opening_notices_queued", [(r.id, r.opens_at) for r in rows],
                 lambda rid: notify(rid, now))


def _queue_round_reminders(now: datetime, actions: list, before: timedelta = ROUND_REMINDER_BEFORE,
                           template: str = "round_closing_24h", kind: str = "round_reminders_queued", *,
                           after: timedelta = timedelta(0)) -> None:
    try:
        from residents_app.rounds.models import Round
    except ImportError:
        return
    rows = db.session.execute(
        sa.select(Round.id, Round.closes_at).where(
            Round.status == "open", Round.closes_at > now + after, Round.closes_at <= now + before)
        .order_by(Round.closes_at, Round.id)).all()
    db.session.commit()
    remind = _optional("residents_app.rounds.reminders", "queue_closing_reminder")
    if remind is None:
        return
    _each_window(actions, kind, [(r.id, r.closes_at) for r in rows], lambda rid: remind(rid, now, template))


def _queue_publicity_notices(now: datetime, actions: list) -> None:
    from residents_app.core.calendar import beijing_date
    from residents_app.publicity.models import Publicity

    today = beijing_date(now)
    ids = db.session.execute(
        sa.select(Publicity.id, Publicity.ends_at).where(
            Publicity.status != "completed", Publicity.started_notice_queued.is_(False),
            Publicity.posted_on <= today, Publicity.ends_at > now)
        .order_by(Publicity.posted_on, Publicity.id)).all()
    db.session.commit()
    notify = _optional("residents_app.publicity.notices", "queue_posting_notice")
    if notify is None:
        return
    _each_window(actions, "publicity_notice_queued", [(r.id, None) for r in ids],
                 lambda pid: notify(pid, now))


def delete_stale_roster_uploads(now: datetime, actions: list) -> None:
    """A roster previewed for import but never confirmed holds owners' names and phones: deleted 24 hours after
    its upload (file times are compared with `now`; a second run finds nothing left to delete)."""
    from residents_app.registry.uploads import delete_stale

    try:
        n = delete_stale(now)
    except Exception as exc:  # noqa: BLE001 - logged and recorded; the next tick retries
        log.exception("scheduler: deleting stale roster uploads failed")
        actions.append({"kind": "roster_uploads_deleted", "error": f"{type(exc).__name__}: {exc}"[:300]})
        return
    if n:
        actions.append({"kind": "roster_uploads_deleted", "count": n})


STEPS = (seal_audit, open_due_rounds, close_due_rounds, end_due_publicity, close_pledge_windows,
         remind_finance_publicity, remind_overdue_progress, flag_overdue_complaints, remind_overdue_rectifications,
         queue_reminders, delete_stale_roster_uploads)


def tick(now: datetime, *, use_advisory_lock: bool = True) -> JobRun:
    """Everything due at `now`, once. Returns the JobRun recorded for this run."""
    if now.tzinfo is None:
        raise ValueError("tick needs an aware datetime")
    started = utcnow()
    db.session.commit()  # start from a clean transaction; each window gets its own
    actions: list[dict] = []
    with advisory_lock(use_advisory_lock) as acquired:
        if not acquired:
            status = "skipped"
            log.info("scheduler: another process holds the tick lock; skipping")
        else:
            # The steps after the closes run while the due rounds' figures are read (close_due_rounds), before the
            # first close; their actions are reported after the closes', in the order of STEPS.
            split = STEPS.index(close_due_rounds)
            for step in STEPS[:split]:
                step(now, actions)
            later: list[dict] = []
            STEPS[split](now, actions, lambda: [step(now, later) for step in STEPS[split + 1:]])
            actions.extend(later)
            status = "error" if any("error" in a for a in actions) else "ok"
        run = JobRun(job="tick", now=now, started_at=started, finished_at=utcnow(), status=status,
                     actions=actions, summary=_summarise(actions), worker=worker_name())
        db.session.add(run)
        db.session.commit()
    if actions:
        log.info("scheduler tick for %s: %s", now.isoformat(), run.summary)
    return run


def _summarise(actions: list[dict]) -> dict:
    out: dict[str, int] = {}
    for a in actions:
        key = a["kind"] + ("_errors" if "error" in a else "")
        out[key] = out.get(key, 0) + int(a.get("count", 1))
    return out


def send_outbox(now: datetime, sender=None) -> JobRun:
    from residents_app.notify.outbox import send_pending

    started = utcnow()
    counts = send_pending(now, sender)
    run = JobRun(job="send_outbox", now=now, started_at=started, finished_at=utcnow(), status="ok", actions=[],
                 summary=counts, worker=worker_name())
    db.session.add(run)
    db.session.commit()
    return run
