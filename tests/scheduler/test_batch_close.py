"""The tick closes many due rounds in batches (issue 19 item 5): each round once, in its own transaction, its
result read from the stored counters, exactly what closing them one by one (services.close_round) stores.

World (T = 2026-09-01 10:00 Beijing, every round closes at T): three estates, each 1幢 101/102/103 (100.00 m²)
and 2幢 201 (60.00) / 202 (40.00), each owner owning one unit, except that 1幢-101 and 1幢-102 of the third estate
have the same owner (one person in a person-counted round). Per estate: a willingness round (household), a general
question counted by persons, a management mode choice, a satisfaction survey and a willingness round of 2幢 only.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app import db as app_db
from residents_app.audit.models import AuditEvent
from residents_app.audit.verify import verify_chain
from residents_app.extensions import db as _db
from residents_app.registry.models import Ownership
from residents_app.rounds import ballots, closing
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import Round, RoundResult
from residents_app.scheduler import jobs
from tests.conftest import NOW, Factory
from tests.querycount import count_statements

BUILDINGS = {"1幢": [("101", "100.00"), ("102", "100.00"), ("103", "100.00")],
             "2幢": [("201", "60.00"), ("202", "40.00")]}
# (unit label, choice) per round kind; a survey's rating comes with it.
VOTES = {
    "willingness": [("1幢-101", "agree"), ("1幢-102", "agree"), ("1幢-103", "disagree"), ("2幢-201", "agree")],
    "general": [("1幢-101", "agree"), ("1幢-102", "abstain"), ("2幢-201", "agree"), ("2幢-202", "agree")],
    "management_mode": [("1幢-101", "self_managed"), ("1幢-102", "self_managed"), ("2幢-201", "self_managed"),
                        ("2幢-202", "property_company")],
    "satisfaction": [("1幢-101", "agree"), ("2幢-202", "disagree")],
    "scoped": [("2幢-201", "agree"), ("2幢-202", "agree")],
}


def _world(db, factory, now):
    """Three estates with five open rounds each, all closing at `now`; returns the round ids in closing order."""
    t0 = now - timedelta(days=3)
    ids = []
    for e in range(3):
        estate = factory.estate(buildings=BUILDINGS)
        units = {u.label: u for b in estate.buildings for u in b.units}
        if e == 2:  # one owner for 101 and 102
            same = units["1幢-101"].ownerships[0].owner_id
            db.session.execute(sa.update(Ownership).where(Ownership.unit_id == units["1幢-102"].id)
                               .values(owner_id=same))
            db.session.expire_all()
        for kind, extra in (("willingness", {}), ("general", {"matter_item": 7, "counting_mode": "person"}),
                            ("management_mode", {}), ("satisfaction", {}),
                            ("scoped", {"scope_building_ids": [units["2幢-201"].building_id]})):
            rnd = svc.create_round(estate.id, svc.RoundInput(
                kind="willingness" if kind == "scoped" else kind, title=f"{kind} {e}", opens_at=t0, closes_at=now,
                **extra), t0)
            assert svc.open_round(rnd.id, t0, "system:test") is True
            for k, (label, choice) in enumerate(VOTES[kind]):
                if e == 1 and k == 0:
                    continue  # estate 2: the first voter stays away
                unit = units[label]
                ballots.cast_ballot(rnd.id, unit.id, unit.ownerships[0].owner_id, choice, t0 + timedelta(hours=k),
                                    rating=3 + k % 3 if kind == "satisfaction" else None)
            ids.append(rnd.id)
    db.session.commit()
    return ids


def _stored(db, ids):
    """Each round's stored result and its `round.closed` chain entry (seq, data, hash)."""
    out = {}
    for rid in ids:
        res = db.session.get(RoundResult, rid)
        ev = db.session.execute(sa.select(AuditEvent).where(
            AuditEvent.kind == "round.closed", AuditEvent.subject_id == str(rid))).scalars().all()
        out[rid] = (res.passed, res.tally, res.agreeing_unit_labels, res.closed_at,
                    [(e.seq, e.data, e.hash) for e in ev])
    return out


def _one_by_one(db, ids, now):
    """What services.close_round stores for each round (in a savepoint, rolled back)."""
    nested = db.session.begin_nested()
    for rid in ids:
        assert svc.close_round(rid, now, jobs.ACTOR) is True
    db.session.flush()
    expected = _stored(db, ids)
    nested.rollback()
    db.session.expire_all()
    return expected


def test_batch_close_stores_exactly_what_closing_one_by_one_stores(db, factory, now):
    ids = _world(db, factory, now)
    expected = _one_by_one(db, ids, now)
    # The figures: the household willingness round of the first estate (3 of 5 agree, 260.00 of 400.00 m²).
    passed, stored, labels, _, entries = expected[ids[0]]
    assert (passed, labels) == (False, ["1幢-101", "1幢-102", "2幢-201"])
    assert stored["figures"] == {"total_count": 5, "total_area": "400.00", "voted_count": 4, "voted_area": "360.00",
                                 "agree_count": 3, "agree_area": "260.00"}
    assert len(entries) == 1
    # The person-counted round of the third estate: 101 and 102 are one person (agree + abstain: not agreeing).
    assert expected[ids[11]][1]["figures"]["total_count"] == 4
    assert expected[ids[11]][1]["figures"]["agree_count"] == 2

    before = dict(closing.STATS)
    run = jobs.tick(now)
    assert run.status == "ok"
    assert [(a["kind"], a["id"]) for a in run.actions if a["kind"] == "round_closed"] == [
        ("round_closed", rid) for rid in ids]
    # PostgreSQL: each estate's household willingness round closes as planned from the batch's one read; its
    # scoped one comes after the chain got entries the plan does not follow (three rounds closed one by one).
    fast = closing.STATS["fast"] - before["fast"]
    assert fast == (3 if db.engine.dialect.name == "postgresql" else 0)
    db.session.expire_all()
    assert _stored(db, ids) == expected
    assert all(r.status == "closed" and r.closed_at == now for r in
               db.session.execute(sa.select(Round).where(Round.id.in_(ids))).scalars())


def test_closing_twice_is_a_no_op(db, factory, now):
    ids = _world(db, factory, now)
    jobs.tick(now)
    db.session.expire_all()
    first = _stored(db, ids)
    again = jobs.tick(now + timedelta(minutes=1))
    assert [a for a in again.actions if a["kind"].startswith("round_closed")] == []
    batch = closing.CloseBatch(ids)
    assert [batch.close(rid, now + timedelta(minutes=2), jobs.ACTOR) for rid in ids] == [False] * len(ids)
    assert [svc.close_round(rid, now, jobs.ACTOR) for rid in ids] == [False] * len(ids)
    db.session.commit()
    db.session.expire_all()
    assert _stored(db, ids) == first  # one result and one chain entry each, unchanged


def _fail_closing(monkeypatch, victim: int):
    """Closing the round `victim` fails ("disk full"), the others close; returns what mends it."""
    real = tally_svc.household_tally

    def broken(rnd, stored):
        if rnd.id == victim:
            raise RuntimeError("disk full")
        return real(rnd, stored)

    monkeypatch.setattr(tally_svc, "household_tally", broken)
    return lambda: monkeypatch.setattr(tally_svc, "household_tally", real)


def test_a_round_whose_close_fails_is_retried_next_tick_and_the_others_close(db, factory, now, monkeypatch):
    ids = _world(db, factory, now)
    expected = _one_by_one(db, ids, now)
    victim = ids[5]  # the second estate's household willingness round
    mend = _fail_closing(monkeypatch, victim)
    run = jobs.tick(now)
    assert run.status == "error"
    assert {"kind": "round_closed", "id": victim, "due": now.isoformat(), "error": "RuntimeError: disk full"} \
        in run.actions
    assert [a["id"] for a in run.actions if a["kind"] == "round_closed" and "error" not in a] == \
        [rid for rid in ids if rid != victim]
    db.session.expire_all()
    assert db.session.get(Round, victim).status == "open"
    assert db.session.get(RoundResult, victim) is None
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.kind == "round.closed", AuditEvent.subject_id == str(victim))).scalar_one() == 0
    others = [rid for rid in ids if rid != victim]
    assert {rid: v[:4] for rid, v in _stored(db, others).items()} == {rid: expected[rid][:4] for rid in others}

    mend()
    later = now + timedelta(minutes=1)
    retry = jobs.tick(later)
    assert [(a["kind"], a["id"]) for a in retry.actions] == [("round_closed", victim)]
    db.session.expire_all()
    passed, stored, labels, closed_at, entries = _stored(db, [victim])[victim]
    # Closed by the retry (at its time), with the figures and outcome closing it at T gives.
    assert (passed, stored, labels, closed_at) == (*expected[victim][:3], later)
    assert [data for _, data, _ in entries] == [data for _, data, _ in expected[victim][4]]


def test_statements_per_round_do_not_grow_with_the_rounds(db, factory, now):
    """Household rounds read counters and agreeing units in one statement: a fixed number per round."""
    t0 = now - timedelta(days=3)
    per_tick = []
    for n_rounds, when in ((2, now), (6, now + timedelta(hours=1))):
        for _ in range(n_rounds):
            estate = factory.estate(buildings=BUILDINGS)
            units = {u.label: u for b in estate.buildings for u in b.units}
            rnd = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title="改不改", opens_at=t0,
                                                             closes_at=when), t0)
            svc.open_round(rnd.id, t0, "system:test")
            for label, choice in VOTES["willingness"]:
                ballots.cast_ballot(rnd.id, units[label].id, units[label].ownerships[0].owner_id, choice, t0)
        db.session.commit()
        before = dict(closing.STATS)
        with count_statements(db.engine) as counted:
            run = jobs.tick(when)
        assert [a["kind"] for a in run.actions] == ["round_closed"] * n_rounds
        # PostgreSQL: the rounds' statements go through psycopg's pipeline (not seen by SQLAlchemy's events).
        raw = closing.STATS["statements"] - before["statements"]
        trips = closing.STATS["round_trips"] - before["round_trips"]
        fast = closing.STATS["fast"] - before["fast"]
        if db.engine.dialect.name == "postgresql":
            # The batch's figures in one statement, then per round one round trip: its row lock and its chain's
            # lock (one statement), and the write (the commit is the scheduler's).
            assert (raw, trips, fast) == (1 + 2 * n_rounds, 1 + n_rounds, n_rounds)
            assert not [s for s in counted.statements if "round_count" in s]
        else:
            assert (raw, trips, fast) == (0, 0, 0)
            # the counters and agreeing units: one statement per round, never per unit
            assert len([s for s in counted.statements if "round_count" in s]) == n_rounds
        per_tick.append(counted.total + raw)
    # Each further round costs the same few statements (lock, counters + agreeing units, round, result, chain).
    per_round = (per_tick[1] - per_tick[0]) / 4
    assert per_round == int(per_round) and per_round <= 8, per_tick


def _live_world(db, factory, now):
    """_world, and per further estate two household willingness rounds one after the other (a chain whose rounds
    all close as planned), committed."""
    ids = _world(db, factory, now)
    t0 = now - timedelta(days=3)
    for e in range(5):
        estate = factory.estate(buildings=BUILDINGS)
        units = {u.label: u for b in estate.buildings for u in b.units}
        for r in range(2):
            rnd = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title=f"改不改 {e}-{r}",
                                                             opens_at=t0, closes_at=now), t0)
            svc.open_round(rnd.id, t0, "system:test")
            for k, (label, choice) in enumerate(VOTES["willingness"]):
                if k != r + e % 3:
                    ballots.cast_ballot(rnd.id, units[label].id, units[label].ownerships[0].owner_id, choice, t0)
            ids.append(rnd.id)
    db.session.commit()
    return ids


@pytest.fixture
def lanes(live_app, monkeypatch):
    """The planned rounds close on 4 connections of their own (PostgreSQL), every connection checked before use
    (db.py's ping, as one idle for a while is): the lanes still get all of them."""
    monkeypatch.setitem(live_app.config, "SCHEDULER_CLOSE_CONNECTIONS", 4)
    monkeypatch.setattr(app_db, "PING_AFTER_IDLE", 0)


def test_closing_on_several_connections_stores_exactly_what_closing_one_by_one_stores(live_app, lanes):
    """Real commits: on PostgreSQL the planned rounds close on 4 connections of their own, each round in its own
    transaction, a chain's rounds in order; SQLite takes the per-round path. Same results, same chain entries."""
    with live_app.app_context():
        ids = _live_world(_db, Factory(_db), NOW)
        expected = _one_by_one(_db, ids, NOW)
        _db.session.rollback()  # the one-by-one closes' locks go with it
        before = dict(closing.STATS)
        run = jobs.tick(NOW)
        assert run.status == "ok"
        assert sorted(a["id"] for a in run.actions if a["kind"] == "round_closed") == ids
        # 3 of _world's rounds (see above) and the further estates' 10
        fast = closing.STATS["fast"] - before["fast"]
        assert fast == (13 if _db.engine.dialect.name == "postgresql" else 0)
        _db.session.expire_all()
        assert _stored(_db, ids) == expected
        again = jobs.tick(NOW + timedelta(minutes=1))
        assert [a for a in again.actions if a["kind"].startswith("round_closed")] == []
        chains = {_db.session.get(Round, rid).estate_id for rid in ids}
        assert [verify_chain(c).ok for c in sorted(chains)] == [True] * 8
        _db.session.remove()


def test_two_ticks_at_once_close_each_round_once(live_app, lanes):
    """Two ticks running at the same instant (their tick lock left out): each round is closed by one of them,
    with one result and one chain entry, and the chains verify."""
    with live_app.app_context():
        ids = _live_world(_db, Factory(_db), NOW)
        expected = _one_by_one(_db, ids, NOW)
        _db.session.rollback()
        _db.session.remove()
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def worker():
        with live_app.app_context():
            try:
                barrier.wait()
                runs.append(jobs.tick(NOW, use_advisory_lock=False).actions)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    closed = [a["id"] for actions in runs for a in actions if a["kind"] == "round_closed"]
    assert [a for actions in runs for a in actions if "error" in a] == []
    assert sorted(closed) == ids  # each round once, by one tick or the other
    with live_app.app_context():
        stored = _stored(_db, ids)
        assert {rid: v[:4] for rid, v in stored.items()} == {rid: v[:4] for rid, v in expected.items()}
        assert all(len(v[4]) == 1 for v in stored.values())
        chains = {_db.session.get(Round, rid).estate_id for rid in ids}
        assert [verify_chain(c).ok for c in sorted(chains)] == [True] * 8
        _db.session.remove()


def test_a_round_that_fails_on_its_own_connection_is_retried_and_its_chain_keeps_its_order(live_app, lanes,
                                                                                           monkeypatch):
    """The first of a chain's two rounds fails (real commits; PostgreSQL: on the connections of their own): it
    stays open and is reported, the chain's second round still closes (after it, on the per-round path), the
    other rounds close as planned, and the next tick closes the failed one; every chain verifies."""
    with live_app.app_context():
        ids = _live_world(_db, Factory(_db), NOW)
        expected = _one_by_one(_db, ids, NOW)
        _db.session.rollback()
        victim, after = ids[15], ids[16]  # the first further estate's two rounds
        mend = _fail_closing(monkeypatch, victim)
        before = dict(closing.STATS)
        run = jobs.tick(NOW)
        assert run.status == "error"
        assert [a for a in run.actions if "error" in a] == [
            {"kind": "round_closed", "id": victim, "due": NOW.isoformat(), "error": "RuntimeError: disk full"}]
        assert sorted(a["id"] for a in run.actions if "error" not in a) == [rid for rid in ids if rid != victim]
        # PostgreSQL: as planned, 3 of _world's rounds, the further estates' 8 on the connections of their own (not
        # the victim's chain: it stops there), and the victim's successor on the per-round path (its head unmoved)
        fast = closing.STATS["fast"] - before["fast"]
        assert fast == (12 if _db.engine.dialect.name == "postgresql" else 0)
        _db.session.expire_all()
        assert _db.session.get(Round, victim).status == "open"
        others = [rid for rid in ids if rid != victim]
        assert {rid: v[:4] for rid, v in _stored(_db, others).items()} == {rid: expected[rid][:4] for rid in others}
        assert _stored(_db, [after])[after][4][0][0] == expected[victim][4][0][0]  # the chain's first entry now

        mend()
        later = NOW + timedelta(minutes=1)
        retry = jobs.tick(later)
        assert [(a["kind"], a["id"]) for a in retry.actions] == [("round_closed", victim)]
        _db.session.expire_all()
        assert _stored(_db, [victim])[victim][:4] == (*expected[victim][:3], later)
        chains = {_db.session.get(Round, rid).estate_id for rid in ids}
        assert [verify_chain(c).ok for c in sorted(chains)] == [True] * 8
        _db.session.remove()


def _outage_tick():
    """The outage scenario (tests/scheduler/conftest.py) ticked at BACK, real commits: what the tick appended to
    the estate's chain (kind, subject), its actions, and whether the chain verifies."""
    from tests.scheduler.conftest import BACK, build_outage_scenario

    s = build_outage_scenario(Factory(_db))
    top = _db.session.execute(sa.select(sa.func.max(AuditEvent.seq)).where(AuditEvent.chain == s.estate_id)
                              ).scalar_one()
    _db.session.commit()
    run = jobs.tick(BACK)
    appended = _db.session.execute(sa.select(AuditEvent.kind, AuditEvent.subject_id)
                                   .where(AuditEvent.chain == s.estate_id, AuditEvent.seq > top)
                                   .order_by(AuditEvent.seq)).all()
    expected = ([("round.opened", str(s.r_draft)), ("publicity.completed", str(s.p_early)),
                 ("publicity.completed", str(s.p_late)), ("round.closed", str(s.r_early)),
                 ("round.closed", str(s.r_late))],
                [("round_opened", s.r_draft), ("round_closed", s.r_early), ("round_closed", s.r_late),
                 ("publicity_ended", s.p_early), ("publicity_ended", s.p_late),
                 ("publicity_notice_queued", s.p_current)])
    return (appended, [(a["kind"], a["id"]) for a in run.actions], run.status,
            verify_chain(s.estate_id).ok), expected


def test_the_later_steps_run_while_the_figures_are_read_and_before_the_first_close(live_app, lanes):
    """Real commits (PostgreSQL: the due rounds' figures read on a connection of their own, in a thread, while the
    tick's later steps run in its own): the publicities end before the rounds close on the estate's chain, each
    round closes once, the JobRun reports the closes first, the chain verifies."""
    with live_app.app_context():
        (appended, actions, status, ok), (chain, reported) = _outage_tick()
        assert (appended, actions, status, ok) == (chain, reported, "ok", True)
        _db.session.remove()


def test_a_failed_read_of_the_figures_leaves_the_rounds_to_the_per_round_path(live_app, lanes, monkeypatch):
    """The read of the due rounds' figures fails (in its thread on PostgreSQL): the later steps still ran, every
    round closes on the per-round path (none as planned), the chain is the same and verifies."""
    def broken(self, now, actor=None, dbapi=None):
        raise RuntimeError("connection lost")

    monkeypatch.setattr(closing.CloseBatch, "plan", broken)
    with live_app.app_context():
        before = dict(closing.STATS)
        (appended, actions, status, ok), (chain, reported) = _outage_tick()
        assert (appended, actions, status, ok) == (chain, reported, "ok", True)
        assert closing.STATS["fast"] - before["fast"] == 0
        _db.session.remove()


def test_a_later_step_that_raises_while_the_figures_are_read_lets_the_rounds_close(live_app, lanes, monkeypatch):
    """Real commits (PostgreSQL: the figures read in a thread meanwhile): a later step fails outside its own
    windows; the rounds due still close (as planned: the chain's head did not move), then the tick raises it."""
    from residents_app.publicity import services as pub_services
    from tests.scheduler.conftest import BACK, build_outage_scenario

    def broken(now):
        raise RuntimeError("publicity table unreadable")

    monkeypatch.setattr(pub_services, "publicity_due", broken)
    with live_app.app_context():
        s = build_outage_scenario(Factory(_db))
        before = dict(closing.STATS)
        with pytest.raises(RuntimeError, match="publicity table unreadable"):
            jobs.tick(BACK)
        _db.session.expire_all()
        assert [_db.session.get(Round, r).status for r in (s.r_early, s.r_late, s.r_draft)] == [
            "closed", "closed", "open"]
        assert closing.STATS["fast"] - before["fast"] == (2 if _db.engine.dialect.name == "postgresql" else 0)
        assert verify_chain(s.estate_id).ok
        _db.session.remove()
