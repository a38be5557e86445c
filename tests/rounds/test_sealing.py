"""Online ballots' audit events: written to audit_pending by the cast, moved onto the chain by the sealer."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from residents_app.audit import services as audit
from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.audit.verify import verify_chain
from residents_app.extensions import db as _db
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import common
from residents_app.rounds import services as svc
from residents_app.scheduler import jobs
from tests.conftest import NOW, Factory


@pytest.fixture(autouse=True)
def defer_on_sqlite_too(app, monkeypatch):
    """The views defer only on PostgreSQL; the mechanism is the same on SQLite, and tested on both."""
    monkeypatch.setitem(app.config, "AUDIT_DEFER_ON_SQLITE", True)


def deferred_cast(rnd, unit, choice, at):
    return ballots_svc.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, at, defer_audit=True)


def chain_entries(db, chain):
    return db.session.execute(sa.select(AuditEvent.seq, AuditEvent.kind, AuditEvent.subject_id)
                              .where(AuditEvent.chain == chain).order_by(AuditEvent.seq)).all()


def test_a_deferred_cast_waits_in_pending_then_is_sealed_in_id_order(db, make_round, units, now):
    rnd = make_round(kind="general", matter_item=7)
    head = chain_entries(db, rnd.estate_id)[-1].seq  # round.created, round.opened, ...
    ballots = [deferred_cast(rnd, units[label], "agree", now + timedelta(minutes=i))
               for i, label in enumerate(["2幢-201", "1幢-101", "1幢-102"], start=1)]
    db.session.commit()
    assert audit.pending_count(rnd.estate_id) == 3 and audit.pending_count() == 3
    assert [e for e in chain_entries(db, rnd.estate_id) if e.kind == "ballot.cast"] == []
    run = audit.seal_pending()
    assert (run.sealed, run.busy) == (3, set())
    entries = chain_entries(db, rnd.estate_id)
    assert [(e.seq, e.kind, e.subject_id) for e in entries[-3:]] == [
        (head + 1, "ballot.cast", str(ballots[0].id)), (head + 2, "ballot.cast", str(ballots[1].id)),
        (head + 3, "ballot.cast", str(ballots[2].id))]
    sealed = db.session.execute(sa.select(AuditEvent).where(AuditEvent.seq == head + 1,
                                                            AuditEvent.chain == rnd.estate_id)).scalar_one()
    # The sealed entry carries what the cast wrote: its time, actor, receipt and data.
    assert sealed.at == now + timedelta(minutes=1)
    assert sealed.actor == common.owner_actor(units["2幢-201"].id, units["2幢-201"].owners[0].id)
    assert sealed.data["receipt"] == ballots[0].receipt_code and sealed.data["choice"] == "agree"
    report = verify_chain(rnd.estate_id)
    assert report.ok and report.head_seq == head + 3
    assert audit.pending_count() == 0
    assert audit.seal_pending().sealed == 0  # nothing left: a second run changes nothing


def test_record_seals_the_chains_pending_events_before_its_own(db, make_round, units, now, committee):
    rnd = make_round(kind="general", matter_item=7)
    b = deferred_cast(rnd, units["1幢-101"], "disagree", now + timedelta(minutes=1))
    ev = audit.record("round.note", chain=rnd.estate_id, actor="user:1:x", now=now + timedelta(minutes=2))
    entries = chain_entries(db, rnd.estate_id)
    assert [(e.kind, e.subject_id) for e in entries[-2:]] == [("ballot.cast", str(b.id)), ("round.note", "")]
    assert ev.seq == entries[-1].seq and audit.pending_count() == 0
    assert verify_chain(rnd.estate_id).ok


def test_sealing_runs_in_batches(db, make_round, units, now, monkeypatch):
    monkeypatch.setattr(audit, "SEAL_BATCH", 2)
    rnd = make_round(kind="general", matter_item=7)
    labels = ["1幢-101", "1幢-102", "1幢-103", "2幢-201", "2幢-202"]
    for i, label in enumerate(labels, start=1):
        deferred_cast(rnd, units[label], "agree", now + timedelta(minutes=i))
    db.session.commit()
    # 5 events, batches of 2: three transactions (2 + 2 + 1), one chain, no gap.
    assert audit.seal_pending([rnd.estate_id]).sealed == 5
    seqs = [e.seq for e in chain_entries(db, rnd.estate_id)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify_chain(rnd.estate_id).ok


def test_pending_events_cannot_be_updated(db, make_round, units, now):
    rnd = make_round(kind="general", matter_item=7)
    deferred_cast(rnd, units["1幢-101"], "agree", now + timedelta(minutes=1))
    conn = db.session.connection()
    t = AuditPending.__table__
    savepoint = conn.begin_nested()
    with pytest.raises(DBAPIError) as info:
        conn.execute(sa.update(t).values(data={"choice": "disagree"}))
    savepoint.rollback()
    assert "audit_pending is insert-only" in str(info.value)
    assert conn.execute(sa.select(t.c.data)).scalar_one()["choice"] == "agree"


def test_sqlite_appends_in_place_unless_told_to_defer(db, make_round, units, now, app, monkeypatch):
    """What the views get on SQLite: the event straight onto the chain in the cast's own transaction."""
    rnd = make_round(kind="general", matter_item=7)
    monkeypatch.setitem(app.config, "AUDIT_DEFER_ON_SQLITE", False)
    b = deferred_cast(rnd, units["1幢-101"], "agree", now + timedelta(minutes=1))
    pg = db.engine.dialect.name == "postgresql"
    assert audit.pending_count() == (1 if pg else 0)
    if pg:
        audit.seal_pending()
    assert chain_entries(db, rnd.estate_id)[-1].subject_id == str(b.id)
    assert verify_chain(rnd.estate_id).ok


def test_a_sealer_that_finds_the_chain_busy_leaves_it_to_the_holder(live_app):
    """wait=False: on PostgreSQL a chain whose advisory lock another connection holds is reported busy and
    sealed by the next try once the lock is free. On SQLite writers are serialised by the database itself (the
    sealer's transaction waits on BEGIN IMMEDIATE), so there is no busy chain. Real commits (live_app): the
    test's own transaction must not hold the chain lock."""
    with live_app.app_context():
        estate = Factory(_db).estate(buildings={"1幢": [("101", "80.00")]})
        rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="封存", opens_at=NOW,
                                                         closes_at=NOW + timedelta(days=1)), NOW)
        svc.open_round(rnd.id, NOW, None)
        deferred_cast(rnd, estate.buildings[0].units[0], "agree", NOW + timedelta(minutes=1))
        _db.session.commit()
        chain = estate.id
        if _db.engine.dialect.name == "postgresql":
            with _db.engine.connect() as other:
                other.execute(sa.text("SELECT pg_advisory_lock(7301, :c)"), {"c": chain})
                other.commit()
                try:
                    run = audit.seal_pending(wait=False)
                finally:
                    other.execute(sa.text("SELECT pg_advisory_unlock(7301, :c)"), {"c": chain})
                    other.commit()
            assert (run.sealed, run.busy) == (0, {chain})
            assert audit.pending_count() == 1
        run = audit.seal_pending(wait=False)
        assert (run.sealed, run.busy) == (1, set())
        assert verify_chain(chain).ok
        _db.session.remove()


def test_the_scheduler_tick_seals_what_a_crashed_process_left_pending(db, make_round, units, now):
    rnd = make_round(kind="general", matter_item=7)
    b = deferred_cast(rnd, units["1幢-102"], "agree", now + timedelta(minutes=1))
    db.session.commit()  # ... and the process dies before its sealer runs
    run = jobs.tick(now + timedelta(minutes=2))
    # (the round opened at `now`: the same tick queues its opening notice, issue 17 item 5)
    assert run.actions == [{"kind": "audit_sealed", "id": None, "due": None, "count": 1},
                           {"kind": "round_opening_notices_queued", "id": rnd.id, "due": now.isoformat()}]
    assert run.summary == {"audit_sealed": 1, "round_opening_notices_queued": 1}
    assert chain_entries(db, rnd.estate_id)[-1].subject_id == str(b.id)
    assert jobs.tick(now + timedelta(minutes=3)).actions == []
    assert verify_chain(rnd.estate_id).ok
