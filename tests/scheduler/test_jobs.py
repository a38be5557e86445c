"""The scheduler's tick with the time passed in: idempotent, in order, after an outage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict
from residents_app.notify import outbox
from residents_app.notify.models import OutboxMessage
from residents_app.publicity import services as pub_services
from residents_app.publicity.models import Publicity
from residents_app.rounds import ballots
from residents_app.rounds import services as rounds
from residents_app.rounds.models import Round, RoundResult
from residents_app.scheduler import jobs
from residents_app.scheduler.models import JobRun

from .conftest import BACK, build_outage_scenario


def count(db, model, *where):
    return db.session.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one()


def audit_kinds(db, kind):
    return db.session.execute(sa.select(AuditEvent.subject_id).where(AuditEvent.kind == kind)
                              .order_by(AuditEvent.id)).scalars().all()


def test_three_day_outage_catch_up_in_order_then_nothing(db, factory):
    s = build_outage_scenario(factory)
    run = jobs.tick(BACK)
    assert run.status == "ok"
    assert [(a["kind"], a["id"]) for a in run.actions] == [
        ("round_opened", s.r_draft),
        ("round_closed", s.r_early), ("round_closed", s.r_late),  # by closes_at, not by id
        ("publicity_ended", s.p_early), ("publicity_ended", s.p_late),  # by ends_at
        ("publicity_notice_queued", s.p_current),
    ]
    assert [a["due"] for a in run.actions[:5]] == [
        "2026-11-11T02:00:00+00:00", "2026-11-10T02:00:00+00:00", "2026-11-11T02:00:00+00:00",
        "2026-11-09T16:00:00+00:00", "2026-11-10T16:00:00+00:00"]
    assert run.summary == {"round_opened": 1, "round_closed": 2, "publicity_ended": 2, "publicity_notice_queued": 1}
    statuses = dict(db.session.execute(sa.select(Round.id, Round.status)).all())
    assert statuses == {s.r_late: "closed", s.r_early: "closed", s.r_draft: "open"}
    assert count(db, RoundResult) == 2
    # the scheduler closes at the time it acts (the rounds feature records `now`)
    assert db.session.get(Round, s.r_early).closed_at == BACK
    assert db.session.get(Publicity, s.p_early).status == "completed"
    assert db.session.get(Publicity, s.p_current).status == "posted"
    assert count(db, OutboxMessage) == s.unit_count
    before = {
        "audit": count(db, AuditEvent), "results": count(db, RoundResult), "outbox": count(db, OutboxMessage),
        "rounds": sorted(db.session.execute(sa.select(Round.id, Round.status, Round.closed_at)).all()),
        "pubs": sorted(db.session.execute(sa.select(Publicity.id, Publicity.status, Publicity.completed_at)).all()),
    }
    again = jobs.tick(BACK)
    assert (again.status, again.actions, again.summary) == ("ok", [], {})
    later = jobs.tick(BACK + timedelta(minutes=1))
    assert later.actions == []
    after = {
        "audit": count(db, AuditEvent), "results": count(db, RoundResult), "outbox": count(db, OutboxMessage),
        "rounds": sorted(db.session.execute(sa.select(Round.id, Round.status, Round.closed_at)).all()),
        "pubs": sorted(db.session.execute(sa.select(Publicity.id, Publicity.status, Publicity.completed_at)).all()),
    }
    assert after == before
    assert count(db, JobRun, JobRun.job == "tick") == 3
    assert audit_kinds(db, "round.closed") == [str(s.r_early), str(s.r_late)]
    assert audit_kinds(db, "publicity.completed") == [str(s.p_early), str(s.p_late)]
    ev = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "publicity.completed")).scalars().first()
    assert ev.actor == "system:scheduler"


def test_later_steps_run_before_the_closes_and_are_reported_after_them(db, factory):
    """Steps 3-7 run once the rounds due to close are known, before the first of them closes (on PostgreSQL while
    the server reads their figures): on the estate's chain the publicities' ends come before the rounds' closes;
    the JobRun reports the closes first, in the order of STEPS."""
    s = build_outage_scenario(factory)
    before = db.session.execute(sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.chain == s.estate_id)
                                ).scalar_one()
    run = jobs.tick(BACK)
    appended = db.session.execute(sa.select(AuditEvent.kind, AuditEvent.subject_id)
                                  .where(AuditEvent.chain == s.estate_id, AuditEvent.seq > before)
                                  .order_by(AuditEvent.seq)).all()
    assert appended == [("round.opened", str(s.r_draft)),
                        ("publicity.completed", str(s.p_early)), ("publicity.completed", str(s.p_late)),
                        ("round.closed", str(s.r_early)), ("round.closed", str(s.r_late))]
    assert [(a["kind"], a["id"]) for a in run.actions] == [
        ("round_opened", s.r_draft), ("round_closed", s.r_early), ("round_closed", s.r_late),
        ("publicity_ended", s.p_early), ("publicity_ended", s.p_late), ("publicity_notice_queued", s.p_current)]


def test_a_later_step_that_raises_lets_the_due_rounds_close_then_the_tick_raises_it(db, factory, monkeypatch):
    """A later step failing outside its own windows (here the publicity step's read): the rounds due still close,
    each in its own transaction, and the tick raises that failure after them, as when the step ran after them."""
    s = build_outage_scenario(factory)

    def broken(now):
        raise RuntimeError("publicity table unreadable")

    monkeypatch.setattr(pub_services, "publicity_due", broken)
    with pytest.raises(RuntimeError, match="publicity table unreadable"):
        jobs.tick(BACK)
    statuses = dict(db.session.execute(sa.select(Round.id, Round.status)).all())
    assert statuses == {s.r_late: "closed", s.r_early: "closed", s.r_draft: "open"}
    assert count(db, RoundResult) == 2
    assert audit_kinds(db, "round.closed") == [str(s.r_early), str(s.r_late)]
    assert [db.session.get(Publicity, p).status for p in (s.p_early, s.p_late)] == ["posted", "posted"]
    assert count(db, JobRun, JobRun.job == "tick") == 0


def test_round_closed_by_the_job_and_a_late_ballot_refused_before_it_ran(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "80.00")]})
    closes = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)
    opens = closes - timedelta(days=10)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="改不改",
                                                           opens_at=opens, closes_at=closes),
                              closes - timedelta(days=20))
    assert jobs.tick(opens - timedelta(seconds=1)).actions == []
    # the tick that opens the round also tells every unit on the roll (item 5: opening notice)
    assert jobs.tick(opens).actions == [{"kind": "round_opened", "id": rnd.id, "due": opens.isoformat()},
                                        {"kind": "round_opening_notices_queued", "id": rnd.id,
                                         "due": opens.isoformat()}]
    unit = estate.buildings[0].units[0]
    owner = unit.owners[0]
    ballots.cast_ballot(rnd.id, unit.id, owner.id, "agree", closes - timedelta(seconds=1))
    # One second after closes_at, no job has run yet: the round is still "open" in the table...
    assert db.session.get(Round, rnd.id).status == "open"
    with pytest.raises(Conflict) as err:
        ballots.cast_ballot(rnd.id, unit.id, owner.id, "disagree", closes + timedelta(seconds=1))
    assert err.value.code == "vote_window_closed"
    # ...and the job closes it afterwards, counting only the ballot cast in time.
    assert jobs.tick(closes - timedelta(seconds=1)).actions == [  # 1幢-102 has not voted: reminded
        {"kind": "round_reminders_queued", "id": rnd.id, "due": closes.isoformat()}]
    run = jobs.tick(closes + timedelta(seconds=30))
    assert run.actions == [{"kind": "round_closed", "id": rnd.id, "due": closes.isoformat()}]
    assert db.session.get(Round, rnd.id).status == "closed"
    assert rounds.agreeing_unit_labels(rnd.id) == ["1幢-101"]
    assert jobs.tick(closes + timedelta(seconds=90)).actions == []


def test_publicity_with_an_open_objection_waits_for_mediation(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00")]})
    now = datetime(2026, 11, 2, 2, tzinfo=UTC)
    pub = pub_services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id, title="名单",
                                      notice_text="n", posted_on=date(2026, 11, 2), actor="a", now=now)
    unit = estate.buildings[0].units[0]
    obj = pub_services.raise_objection(pub, unit=unit, owner=unit.owners[0], text="有误", photo=None, now=now)
    end = datetime(2026, 11, 9, 16, 0, tzinfo=UTC)
    assert pub.ends_at == end
    assert [a["kind"] for a in jobs.tick(end - timedelta(seconds=1)).actions] == ["publicity_notice_queued"]
    assert jobs.tick(end).actions == []  # due, but an objection is open
    assert pub.status == "posted"
    pub_services.mediate(obj, outcome="answered", notes="沟通", answer="名单无误", actor="a", now=end)
    db.session.commit()
    # the objector is told of the answer (item 5)
    assert jobs.tick(end + timedelta(minutes=1)).actions == [
        {"kind": "publicity_ended", "id": pub.id, "due": end.isoformat()},
        {"kind": "objection_answers_queued", "count": 1}]
    db.session.refresh(pub)
    assert (pub.status, pub.completed_by) == ("completed", "system:scheduler")


def test_pledge_windows_are_closed_by_the_tick(db, factory):
    from residents_app.plans.models import PlanVersion

    estate = factory.estate(buildings={"1幢": [("101", "100.00")]})
    closes = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
    plan = PlanVersion(estate_id=estate.id, number=1, title="方案", status="published",
                       pledge_opens_at=closes - timedelta(days=10), pledge_closes_at=closes)
    db.session.add(plan)
    db.session.commit()
    # 48 hours before the window closes, the unit that has not pledged is reminded once (item 5)
    assert jobs.tick(closes - timedelta(hours=48, seconds=1)).actions == []
    assert jobs.tick(closes - timedelta(hours=48)).actions == [{"kind": "pledge_reminders_queued", "count": 1}]
    assert jobs.tick(closes - timedelta(seconds=1)).actions == []
    assert jobs.tick(closes).actions == [{"kind": "pledge_windows_closed", "count": 1}]
    assert plan.pledge_closed_at == closes
    assert jobs.tick(closes + timedelta(minutes=5)).actions == []


def test_one_failing_window_does_not_block_the_others(db, factory, monkeypatch):
    s = build_outage_scenario(factory)
    real = pub_services.end_publicity_if_due

    def broken(pid, now, actor):
        if pid == s.p_early:
            raise RuntimeError("disk full")
        return real(pid, now, actor)

    monkeypatch.setattr(pub_services, "end_publicity_if_due", broken)
    run = jobs.tick(BACK)
    assert run.status == "error"
    assert {"kind": "publicity_ended", "id": s.p_early, "due": "2026-11-09T16:00:00+00:00",
            "error": "RuntimeError: disk full"} in run.actions
    assert run.summary["publicity_ended_errors"] == 1 and run.summary["publicity_ended"] == 1
    assert db.session.get(Publicity, s.p_late).status == "completed"
    monkeypatch.setattr(pub_services, "end_publicity_if_due", real)
    retry = jobs.tick(BACK + timedelta(minutes=1))
    assert retry.actions == [{"kind": "publicity_ended", "id": s.p_early, "due": "2026-11-09T16:00:00+00:00"}]


def test_outbox_send_and_retry(db, factory):
    s = build_outage_scenario(factory)
    jobs.tick(BACK)
    msgs = db.session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.id)).scalars().all()
    assert len(msgs) == 5 and {m.state for m in msgs} == {"pending"}
    assert msgs[0].text.startswith("【") and "公示期：2026-11-10 至 2026-11-16（5个工作日）" in msgs[0].text
    assert msgs[0].dedupe_key == f"publicity:{s.p_current}:posted:2026-11-09:unit:{msgs[0].unit_id}"

    class Flaky:
        channel = "sms"
        calls = 0

        def send(self, message):
            self.calls += 1
            if message.id == msgs[0].id:
                raise outbox.SendError("运营商拒绝")

    sender = Flaky()
    run = jobs.send_outbox(BACK, sender)
    assert run.summary == {"sent": 4, "failed": 0, "retry": 1}
    db.session.refresh(msgs[0])
    assert (msgs[0].state, msgs[0].attempts, msgs[0].last_error) == ("pending", 1, "运营商拒绝")
    assert msgs[1].state == "sent" and msgs[1].sent_at == BACK and msgs[1].channel == "sms"
    # a retry waits for its backoff (1 minute after the first failure), then 2, 4, 8 minutes
    assert msgs[0].next_attempt_at == BACK + timedelta(minutes=1)
    assert jobs.send_outbox(BACK + timedelta(seconds=59), sender).summary == {"sent": 0, "failed": 0, "retry": 0}
    for k in range(outbox.MAX_ATTEMPTS - 1):
        jobs.send_outbox(BACK + timedelta(hours=k + 1), sender)
    db.session.refresh(msgs[0])
    assert (msgs[0].state, msgs[0].attempts) == ("failed", outbox.MAX_ATTEMPTS)
    assert sender.calls == 4 + outbox.MAX_ATTEMPTS
    assert jobs.send_outbox(BACK, sender).summary == {"sent": 0, "failed": 0, "retry": 0}


def test_log_sender_is_the_default(db, factory, monkeypatch):
    import logging

    build_outage_scenario(factory)
    jobs.tick(BACK)
    seen = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger("residents_app.notify.outbox")
    monkeypatch.setattr(logger, "disabled", False)  # other suites may reconfigure logging
    old_level = logger.level
    logger.setLevel(logging.INFO)  # setLevel also clears the logger's isEnabledFor cache
    handler = ListHandler()
    logger.addHandler(handler)
    try:
        assert jobs.send_outbox(BACK).summary == {"sent": 5, "failed": 0, "retry": 0}
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert len(seen) == 5 and all(m.startswith("outbox message ") for m in seen)
    assert "正在公示" in seen[0]


def test_restart_queues_a_new_notice(db, factory):
    s = build_outage_scenario(factory)
    jobs.tick(BACK)
    pub = db.session.get(Publicity, s.p_current)
    pub_services.restart_publicity(pub, "公示书有错字，更正后重新张贴", actor="a", now=BACK)
    db.session.commit()
    run = jobs.tick(BACK + timedelta(minutes=1))
    assert run.actions == [{"kind": "publicity_notice_queued", "id": s.p_current, "due": None}]
    assert count(db, OutboxMessage) == 10


def test_tick_refuses_a_naive_time(db):
    with pytest.raises(ValueError):
        jobs.tick(datetime(2026, 11, 9, 10, 0))


def test_advisory_lock_held_elsewhere_makes_the_tick_skip(db, factory):
    s = build_outage_scenario(factory)
    if db.engine.dialect.name != "postgresql":
        # SQLite has no advisory locks: BEGIN IMMEDIATE serialises writers, so the tick simply acts.
        run = jobs.tick(BACK, use_advisory_lock=True)
        assert run.status == "ok"
        assert run.summary["publicity_ended"] == 2
        return
    with db.engine.connect() as other:
        assert other.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": jobs.TICK_LOCK_KEY}).scalar_one()
        run = jobs.tick(BACK)
        assert (run.status, run.actions) == ("skipped", [])
        assert db.session.get(Publicity, s.p_early).status == "posted"
        other.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": jobs.TICK_LOCK_KEY})
        other.commit()
    assert jobs.tick(BACK).summary["publicity_ended"] == 2


def test_check_window_end_matches_calendar():
    # Guard for the scenario's dates: 11/2 + 5 working days = 11/9, 11/3 -> 11/10, 11/9 -> 11/16
    from residents_app.core.calendar import publicity_last_day

    assert [publicity_last_day(date(2026, 11, d), 5) for d in (2, 3, 9)] == [
        date(2026, 11, 9), date(2026, 11, 10), date(2026, 11, 16)]


def test_round_reminder_24_hours_before_closing_to_units_that_have_not_voted(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "80.00"), ("103", "70.00")]})
    closes = datetime(2026, 9, 15, 12, 0, tzinfo=UTC)  # 20:00 Beijing
    opens = closes - timedelta(days=7)
    rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="是否同意改造",
                                                           opens_at=opens, closes_at=closes), opens)
    rounds.open_round(rnd.id, opens, "a")
    u101, u102, u103 = estate.buildings[0].units
    ballots.cast_ballot(rnd.id, u101.id, u101.owners[0].id, "agree", opens + timedelta(hours=1))
    db.session.commit()
    # 48 hours before: the first reminder (item 5); then the 24-hour one
    assert jobs.tick(closes - timedelta(hours=48, seconds=1)).actions == []
    assert jobs.tick(closes - timedelta(hours=48)).actions == [
        {"kind": "round_reminders_48h_queued", "id": rnd.id, "due": closes.isoformat()}]
    assert jobs.tick(closes - timedelta(hours=24, seconds=1)).actions == []
    run = jobs.tick(closes - timedelta(hours=24))
    assert run.actions == [{"kind": "round_reminders_queued", "id": rnd.id, "due": closes.isoformat()}]
    msgs = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.dedupe_key.like("%:closing:%"))
                              .order_by(OutboxMessage.unit_id)).scalars().all()
    assert [m.unit_id for m in msgs] == [u102.id, u103.id]
    assert msgs[0].text == ("【" + estate.name + "】“是否同意改造”将于 2026-09-15 20:00 截止，"
                            "您家（1幢-102）尚未表决。请扫描本户二维码参与，逾期不能再投。")
    first = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.dedupe_key.like("%:closing48:%"))
                               .order_by(OutboxMessage.unit_id)).scalars().all()
    assert [m.unit_id for m in first] == [u102.id, u103.id]
    assert (first[0].title, first[0].text) == ("表决还剩两天", "【" + estate.name + "】“是否同意改造”将于 2026-09-15 "
                                               "20:00 截止，您家（1幢-102）尚未表决。还有两天，请扫描本户二维码参与。")
    # 102 votes; the next ticks queue nothing new (103 was already reminded).
    ballots.cast_ballot(rnd.id, u102.id, u102.owners[0].id, "agree", closes - timedelta(hours=2))
    db.session.commit()
    assert jobs.tick(closes - timedelta(hours=1)).actions == []
    assert count(db, OutboxMessage) == 4
