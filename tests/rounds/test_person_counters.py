"""Stored person counters of person-counted rounds (issue 19 item 1; 法释〔2009〕7号 art. 9): moved by every cast
path in the cast's own transaction, read by the tally, equal to the live computation (core.thresholds.tally),
checked and rebuilt by `flask rounds recount` and `flask audit verify`.

The estate of tests/rounds/conftest.py (1幢 101/102/103 at 100.00 m², 2幢 201 at 60.00 and 202 at 40.00), its
owners rearranged (`persons`): A owns 1幢-101 and 2幢-201 (one person, two buildings); B and C own 1幢-102
(co-owners: one person); C and D own 1幢-103 (a chain with 1幢-102: another person); 2幢-202 has no owner (a
person of its own). 4 persons, 400.00 m².
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.core import thresholds as th
from residents_app.db import utcnow
from residents_app.registry.models import Owner, Ownership
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import counters, person_counters
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import CurrentBallot, RollEntry, RoundPerson, RoundPersonCount
from tests.rounds.conftest import units_of
from tests.rounds.test_cast_path import _identify
from tests.rounds.test_counters import PDF, _api_cast, _paper, _proxy, recount


@pytest.fixture
def persons(db, estate):
    u = units_of(estate)
    owner = {label: unit.ownerships[0].owner_id for label, unit in u.items()}
    a, c = owner["1幢-101"], owner["1幢-103"]  # B is 1幢-102's own owner
    d = Owner(estate_id=estate.id, name="业主丁", phone="13911112222")
    db.session.add(d)
    db.session.flush()
    for label in ("2幢-201", "2幢-202"):
        db.session.delete(db.session.get(Ownership, (u[label].id, owner[label])))
    db.session.add_all([Ownership(unit_id=u["2幢-201"].id, owner_id=a), Ownership(unit_id=u["1幢-102"].id, owner_id=c),
                        Ownership(unit_id=u["1幢-103"].id, owner_id=d.id)])
    db.session.commit()
    db.session.expire_all()
    return units_of(estate)


def totals(rnd) -> tuple[int, int, int, int]:
    t = person_counters.stored_totals([rnd.id])[rnd.id]
    return (t.persons, t.participated, t.agree, t.potential)


def live_tally(rnd) -> th.Tally:
    """The tally computed from the roll's owner sets and the counted ballots (one row per unit)."""
    rows = db_rows(rnd.id)
    entries = [th.RollEntry(u, b, a, tuple(o or ())) for u, b, a, o, _ in rows]
    return th.tally(entries, {u: c for u, _, _, _, c in rows if c is not None}, rnd.rule_preset, "person")


def db_rows(round_id):
    from residents_app.extensions import db

    return db.session.execute(
        sa.select(RollEntry.unit_id, RollEntry.building_id, RollEntry.area_m2, RollEntry.owner_ids,
                  CurrentBallot.choice)
        .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                          CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id)).all()


def assert_stored_is_live(rnd):
    stored = tally_svc.compute_tally(rnd.id).to_dict()
    live = tally_svc.name_buildings(live_tally(rnd), {r["building_id"]: r["building_name"] for r in
                                                      stored["buildings"]}).to_dict()
    assert stored == live
    assert counters.check_counters(round_ids=[rnd.id]) == []


def test_the_roll_freezes_the_persons(db, live_round, persons):
    rnd = live_round(kind="general", matter_item=7, counting_mode="person")
    key = dict(db.session.execute(sa.select(RollEntry.unit_id, RollEntry.person_unit_id)
                                  .where(RollEntry.round_id == rnd.id)).all())
    u = {label: persons[label].id for label in persons}
    assert key == {u["1幢-101"]: u["1幢-101"], u["2幢-201"]: u["1幢-101"], u["1幢-102"]: u["1幢-102"],
                   u["1幢-103"]: u["1幢-103"], u["2幢-202"]: u["2幢-202"]}
    rows = db.session.execute(sa.select(RoundPerson.person_unit_id, RoundPerson.units, RoundPerson.voted,
                                        RoundPerson.agreeing).where(RoundPerson.round_id == rnd.id)
                              .order_by(RoundPerson.person_unit_id)).all()
    assert rows == sorted([(u["1幢-101"], 2, 0, 0), (u["1幢-102"], 1, 0, 0), (u["1幢-103"], 1, 0, 0),
                           (u["2幢-202"], 1, 0, 0)])
    # Nobody voted: 4 persons, none participated or agrees, all could still agree.
    assert totals(rnd) == (4, 0, 0, 4)
    # A household-counted round keeps no person counters.
    plain = live_round(kind="general", matter_item=7, title="按户计")
    assert totals(plain) == (0, 0, 0, 0)
    assert db.session.execute(sa.select(sa.func.count()).where(
        RollEntry.round_id == plain.id, RollEntry.person_unit_id.is_not(None))).scalar_one() == 0


def test_every_cast_path_moves_the_persons_split_votes_co_owners_chains_ownerless(
        client, db, live_round, link_for, persons, committee, committee2):
    rnd = live_round(kind="general", matter_item=7, counting_mode="person")
    tokens = link_for()
    # A's two units through the API (checked path, then the one-statement path): agree + disagree is a person who
    # participated and does not agree.
    _identify(client, tokens["1幢-101"], persons["1幢-101"])
    _api_cast(client, tokens["1幢-101"], rnd, "agree")
    assert totals(rnd) == (4, 1, 0, 4)  # 1 of 2 units voted, and agrees: could still agree
    _identify(client, tokens["2幢-201"], persons["2幢-201"])
    _api_cast(client, tokens["2幢-201"], rnd, "disagree")
    assert totals(rnd) == (4, 1, 0, 3)
    # The disagreeing unit changes to agree: A agrees; back to disagree, and agree again.
    _api_cast(client, tokens["2幢-201"], rnd, "agree")
    assert totals(rnd) == (4, 1, 1, 4)
    _api_cast(client, tokens["2幢-201"], rnd, "disagree")
    assert totals(rnd) == (4, 1, 0, 3)
    _api_cast(client, tokens["2幢-201"], rnd, "agree")
    assert totals(rnd) == (4, 1, 1, 4)
    t = utcnow()
    # Co-owners: C (the second owner of 1幢-102) votes for the person B+C, by the service path.
    c = persons["1幢-103"].ownerships[0].owner_id
    ballots_svc.cast_ballot(rnd.id, persons["1幢-102"].id, c, "agree", t)
    assert totals(rnd) == (4, 2, 2, 4)
    # The chain's other person (C+D, 1幢-103): a paper ballot, confirmed by a second member.
    _paper(rnd, persons["1幢-103"], "disagree", t, committee, committee2)
    assert totals(rnd) == (4, 3, 2, 3)
    # The ownerless unit: paper too.
    _paper(rnd, persons["2幢-202"], "abstain", t, committee, committee2)
    assert totals(rnd) == (4, 4, 2, 2)
    # A proxy for 1幢-103 against its paper ballot: a conflict (nothing moves), which the proxy wins.
    proxy = _proxy(rnd, persons["1幢-103"], "agree", t, committee, committee2)
    assert proxy.status == "conflict" and totals(rnd) == (4, 4, 2, 2)
    ballots_svc.resolve_conflict(proxy.id, "proxy", "业主书面委托在后", t, committee)
    assert totals(rnd) == (4, 4, 3, 3)
    # A paper ballot against A's online one: a conflict moves nothing until the paper wins it.
    conflict = _paper(rnd, persons["1幢-101"], "disagree", t, committee, committee2)
    assert conflict.status == "conflict" and totals(rnd) == (4, 4, 3, 3)
    ballots_svc.resolve_conflict(conflict.id, "paper", "业主到场确认", t, committee)
    assert totals(rnd) == (4, 4, 2, 2)
    db.session.commit()
    assert_stored_is_live(rnd)
    f = tally_svc.compute_tally(rnd.id).to_dict()
    # Persons: 4 voted, 2 agree (B+C, C+D); A is split (101 disagree on paper, 201 agree), 202 abstained;
    # areas per unit: 201 60.00 + 102 100.00 + 103 100.00 agree.
    assert (f["figures"]["total_count"], f["figures"]["voted_count"], f["figures"]["agree_count"],
            f["figures"]["agree_area"], f["passed"], f["can_still_pass"]) == (4, 4, 2, "260.00", False, False)
    assert [(c["key"], c["label"], c["value"], c["denominator"]) for c in f["conditions"]] == [
        ("agree_area", "同意面积 ≥ 总面积的 2/3", "260.00", "400.00"),
        ("agree_count", "同意人数 ≥ 总人数的 2/3", 2, 4)]


def test_exactly_two_thirds_of_the_persons_in_scope_passes(db, make_round, persons, now):
    """Scope 1幢: A counts with 1幢-101 only; 3 persons, 300.00 m². Two agree (200.00 m²): exactly 2/3 of both."""
    b1 = persons["1幢-101"].building_id
    rnd = make_round(kind="general", matter_item=7, counting_mode="person", scope_building_ids=[b1])
    assert totals(rnd) == (3, 0, 0, 3)
    a = persons["1幢-101"].ownerships[0].owner_id
    ballots_svc.cast_ballot(rnd.id, persons["1幢-101"].id, a, "agree", now + timedelta(hours=1))
    b = persons["1幢-102"].ownerships[0].owner_id
    ballots_svc.cast_ballot(rnd.id, persons["1幢-102"].id, b, "disagree", now + timedelta(hours=1))
    t = tally_svc.compute_tally(rnd.id, now)
    assert (t.figures.total_count, t.figures.agree_count, t.passed) == (3, 1, False)
    ballots_svc.cast_ballot(rnd.id, persons["1幢-102"].id, b, "agree", now + timedelta(hours=2))
    t = tally_svc.compute_tally(rnd.id, now)
    assert (t.figures.total_count, t.figures.voted_count, t.figures.agree_count, t.figures.agree_area,
            t.figures.total_area, t.passed, t.margin_count) == (3, 2, 2, 20000, 30000, True, 0)
    assert_stored_is_live(rnd)


def test_a_dashboard_batch_reads_the_person_totals(db, make_round, persons, now):
    person, household = (make_round(kind="general", matter_item=7, counting_mode="person"),
                         make_round(kind="general", matter_item=7, title="按户计"))
    for rnd in (person, household):
        for label in ("1幢-101", "2幢-201"):
            u = persons[label]
            ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree", now + timedelta(hours=1))
    got = tally_svc.compute_tallies([person, household])
    assert (got[person.id].figures.total_count, got[person.id].figures.agree_count) == (4, 1)
    assert (got[household.id].figures.total_count, got[household.id].figures.agree_count) == (5, 2)
    assert got[person.id].figures.agree_area == got[household.id].figures.agree_area == 16000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_person_figures_equal_the_live_computation_over_random_ballots(db, factory, now, seed):
    """18 units in 3 buildings, owner sets drawn from 6 owners (some empty, some repeated, some chained); 60
    random casts and changes (online by an owner, or paper for ownerless units); after each, the tally from the
    counters equals core.thresholds.tally over the roll."""
    from residents_app.rounds import services as svc

    rng = random.Random(seed)
    estate = factory.estate(code=f"RND{seed}", buildings={
        f"{b}幢": [(f"{n}01", f"{rng.randint(40, 140)}.{rng.randint(0, 99):02d}") for n in range(1, 7)]
        for b in (1, 2, 3)})
    c1, c2 = factory.user("committee", estate=estate), factory.user("committee", estate=estate)
    units = [u for b in estate.buildings for u in b.units]
    pool = [o.owner_id for u in units[:6] for o in u.ownerships]
    for u in units:
        for o in list(u.ownerships):
            db.session.delete(o)
    db.session.flush()
    sets = [(), (pool[0],), (pool[0], pool[1]), (pool[1], pool[2]), (pool[3],), (pool[4], pool[5])]
    for u in units:
        for owner_id in rng.choice(sets):
            db.session.add(Ownership(unit_id=u.id, owner_id=owner_id))
    db.session.flush()
    db.session.expire_all()
    rnd = svc.create_round(estate.id, svc.RoundInput(
        kind="general", matter_item=7, title="随机", opens_at=now, closes_at=now + timedelta(days=14),
        counting_mode="person", rule_preset=rng.choice(["lucheng_double_two_thirds", "civil_code_278_major"])),
        now, c1)
    assert svc.open_round(rnd.id, now, c1)
    for step in range(60):
        u = rng.choice(units)
        choice = rng.choice(["agree", "agree", "disagree", "abstain"])
        when = now + timedelta(minutes=step + 1)
        if u.ownerships:
            ballots_svc.cast_ballot(rnd.id, u.id, rng.choice(u.ownerships).owner_id, choice, when)
        else:
            _paper(rnd, u, choice, when, c1, c2)
        stored = tally_svc.compute_tally(rnd.id)
        live = live_tally(rnd)
        assert (stored.figures, stored.passed, stored.can_still_pass) == (live.figures, live.passed,
                                                                         live.can_still_pass), step
    assert_stored_is_live(rnd)


def test_recount_names_tampered_person_counters_and_rebuilds_them(app, db, make_round, persons, now):
    rnd = make_round(kind="general", matter_item=7, counting_mode="person", title="按人计")
    for label, choice in (("1幢-101", "agree"), ("2幢-201", "disagree"), ("1幢-102", "agree")):
        u = persons[label]
        ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, choice, now + timedelta(hours=1))
    db.session.commit()
    assert totals(rnd) == (4, 2, 1, 3)
    assert recount(app).exit_code == 0
    a, b = persons["1幢-101"].id, persons["1幢-102"].id
    db.session.execute(sa.update(RoundPersonCount).where(RoundPersonCount.round_id == rnd.id,
                                                         RoundPersonCount.slot == 0)
                       .values(agree=RoundPersonCount.agree + 1))
    db.session.execute(sa.update(RoundPerson).where(RoundPerson.round_id == rnd.id, RoundPerson.person_unit_id == a)
                       .values(agreeing=2))
    db.session.execute(sa.update(RollEntry).where(RollEntry.round_id == rnd.id,
                                                  RollEntry.unit_id == persons["1幢-103"].id)
                       .values(person_unit_id=b))
    db.session.commit()
    # The tally follows the counters (2 agree of 4 now), which is why they are checked.
    assert tally_svc.compute_tally(rnd.id).figures.agree_count == 2
    result = recount(app)
    assert result.exit_code == 1, result.output
    subject = f"BROKEN 表决 #{rnd.id}「按人计」"
    assert result.output == (
        f"{subject}：房屋 1幢-103 的计人归属为 {b}，按名册的业主应为 {persons['1幢-103'].id}（person_key_mismatch）\n"
        f"{subject}：业主（房屋 1幢-101 等）：计数器为 2 套、2 套已投、2 套同意，按选票重新计数为 2 套、2 套已投、"
        "1 套同意（round_person_mismatch）\n"
        f"{subject}：同意人数：计数器为 2，按选票重新计数为 1（round_person_count_mismatch）\n"
        f"核对失败：3 处计数器与选票不符（表决 #{rnd.id}）\n")
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 1
    assert "同意人数：计数器为 2，按选票重新计数为 1（round_person_count_mismatch）" in verify.output
    rebuilt = recount(app, "--rebuild")
    assert (rebuilt.exit_code, rebuilt.output.splitlines()[-1]) == (0, f"已按选票重建 1 个表决的计数器：#{rnd.id}")
    assert recount(app).exit_code == 0
    assert totals(rnd) == (4, 2, 1, 3)
    assert_stored_is_live(rnd)
    # The rebuilt counters keep moving with the casts.
    u = persons["2幢-201"]
    ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree", now + timedelta(hours=2))
    assert totals(rnd) == (4, 2, 2, 4)
    assert_stored_is_live(rnd)


def test_simultaneous_casts_of_one_persons_units_add_up(live_app):
    """One owner with 8 units (in two buildings) and an owner of one more: 8 threads (real commits, own
    connections) each cast one of the 8 units twice at the same instant, online or on paper (confirmed by a second
    member: the ORM path). The person's row serialises them, so its transitions add up: the stored counters equal
    the recount, on both databases."""
    import threading

    from residents_app.auth.models import User
    from residents_app.extensions import db as _db
    from residents_app.rounds import services as svc
    from tests.conftest import NOW, Factory

    with live_app.app_context():
        factory = Factory(_db)
        estate = factory.estate(buildings={"1幢": [(f"{n}01", "50.00") for n in range(1, 6)],
                                           "2幢": [(f"{n}01", "70.00") for n in range(1, 5)]})
        members = [factory.user("committee", estate=estate).id for _ in range(2)]
        units = sorted((u for b in estate.buildings for u in b.units), key=lambda u: u.id)
        owner = units[0].ownerships[0].owner_id
        for u in units[1:8]:
            _db.session.delete(u.ownerships[0])
            _db.session.add(Ownership(unit_id=u.id, owner_id=owner))
        _db.session.flush()
        rnd = svc.create_round(estate.id, svc.RoundInput(
            kind="general", matter_item=7, title="并发按人", opens_at=NOW, closes_at=NOW + timedelta(days=1),
            counting_mode="person"), NOW)
        svc.open_round(rnd.id, NOW, None)
        round_id, unit_ids = rnd.id, [u.id for u in units[:8]]
        _db.session.commit()
        _db.session.remove()
    barrier = threading.Barrier(8)
    errors = []

    def worker(i):
        with live_app.app_context():
            try:
                barrier.wait()
                for k, choice in enumerate(("disagree", "agree") if i % 3 else ("agree", "abstain")):
                    when = NOW + timedelta(hours=1, minutes=k)
                    if i % 2:  # as the views cast: the audit event deferred (no chain lock in the transaction)
                        ballots_svc.cast_ballot(round_id, unit_ids[i], owner, choice, when, defer_audit=True)
                    else:  # entered, then confirmed by another member (another request)
                        c1, c2 = (_db.session.get(User, m) for m in members)
                        scan = ballots_svc.store_file(round_id, "paper_scan", PDF, "application/pdf", when, c1)
                        b = ballots_svc.enter_paper_ballot(round_id, unit_ids[i], choice, scan, when, c1)
                        _db.session.commit()
                        ballots_svc.confirm_paper_ballot(b.id, when, c2)
                    _db.session.commit()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc))
            finally:
                _db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with live_app.app_context():
        # Units 0, 3, 6 abstain: the person of 8 units participated, does not agree, cannot agree any more; the
        # owner of the ninth unit has not voted.
        assert counters.check_counters(round_ids=[round_id]) == []
        t = person_counters.stored_totals([round_id])[round_id]
        assert (t.persons, t.participated, t.agree, t.potential) == (2, 1, 0, 1)
        _db.session.remove()


def test_a_person_round_cast_runs_these_statements(client, db, live_round, link_for, persons, monkeypatch):
    """PostgreSQL: still one statement per cast (plus the supersede of a change); SQLite: the person's transition
    onto the totals and the person's row, right after the building counters."""
    from residents_app.rounds import castpath

    rnd = live_round(kind="general", matter_item=7, counting_mode="person")
    tokens = link_for()
    _identify(client, tokens["2幢-201"], persons["2幢-201"])
    raw = []
    real_run = castpath._run

    def spy(cursor, name, sql, params):
        raw.append(name)
        real_run(cursor, name, sql, params)

    monkeypatch.setattr(castpath, "_run", spy)
    _api_cast(client, tokens["2幢-201"], rnd, "agree")
    first, raw[:] = list(raw), []
    _api_cast(client, tokens["2幢-201"], rnd, "disagree")
    if db.session.get_bind().dialect.name == "postgresql":
        assert (first, raw) == (["read", "write"], ["cast", "supersede"])
    else:
        assert first == ["read", "ballot", "current", "count", "person totals", "person", "supersede", "pending?",
                         "head", "append"]
        assert raw == ["cast", "current", "count", "person totals", "person", "supersede", "pending?", "head",
                       "append"]
    assert totals(rnd) == (4, 1, 0, 3)
