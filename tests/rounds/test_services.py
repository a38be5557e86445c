"""Rounds and ballots through the service layer: lifecycle, window, history, paper, proxy, tally."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.core import thresholds as th
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import links
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, RoundFile


def owner_of(unit):
    return unit.ownerships[0].owner_id


def cast(rnd, unit, choice, when, **kw):
    return ballots_svc.cast_ballot(rnd.id, unit.id, owner_of(unit), choice, when, **kw)


def test_opening_freezes_the_roll_and_register_changes_do_not_move_totals(db, make_round, units, now):
    rnd = make_round()
    entries = db.session.execute(sa.select(RollEntry).where(RollEntry.round_id == rnd.id)
                                 .order_by(RollEntry.label)).scalars().all()
    assert [(e.label, e.area_m2) for e in entries] == [
        ("1幢-101", Decimal("100.00")), ("1幢-102", Decimal("100.00")), ("1幢-103", Decimal("100.00")),
        ("2幢-201", Decimal("60.00")), ("2幢-202", Decimal("40.00"))]
    assert entries[0].owner_names == [units["1幢-101"].owners[0].name]
    units["1幢-101"].title_area_m2 = Decimal("500.00")
    db.session.flush()
    t = tally_svc.compute_tally(rnd.id, now)
    assert (t.figures.total_count, t.figures.total_area) == (5, 40000)


def test_open_and_close_are_idempotent_and_store_the_result(db, make_round, units, now, estate):
    rnd = make_round()
    assert svc.open_round(rnd.id, now, "system:scheduler") is False
    for label in ("1幢-101", "1幢-102", "1幢-103", "2幢-201"):
        cast(rnd, units[label], "agree", now + timedelta(hours=1))
    assert svc.rounds_due_to_close(now + timedelta(days=14) - timedelta(seconds=1)) == []
    assert svc.close_round(rnd.id, now + timedelta(days=13), None) is False  # not due yet
    due = now + timedelta(days=14)
    assert svc.rounds_due_to_close(due) == [rnd.id]
    assert svc.close_round(rnd.id, due, "system:scheduler") is True
    assert svc.close_round(rnd.id, due, "system:scheduler") is False
    out = svc.round_outcome(rnd.id)
    assert out["passed"] is True  # 360.00 of 400.00 m², 4 of 5 households
    assert out["tally"]["figures"]["agree_area"] == "360.00"
    assert out["tally"]["figures"]["agree_count"] == 4
    assert svc.agreeing_unit_labels(rnd.id) == ["1幢-101", "1幢-102", "1幢-103", "2幢-201"]
    kinds = db.session.execute(sa.select(AuditEvent.kind).where(AuditEvent.chain == estate.id)
                               .order_by(AuditEvent.seq)).scalars().all()
    assert kinds == ["round.created", "round.opened"] + ["ballot.cast"] * 4 + ["round.closed"]


def test_rounds_due_to_open(make_round, now):
    rnd = make_round(open_it=False, opens_at=now + timedelta(hours=1))
    assert svc.rounds_due_to_open(now) == []
    assert svc.rounds_due_to_open(now + timedelta(hours=1)) == [rnd.id]
    assert svc.open_round(rnd.id, now + timedelta(hours=1), None) is True
    assert svc.rounds_due_to_open(now + timedelta(hours=2)) == []


def test_server_clock_refuses_ballots_outside_the_window(make_round, units, now):
    rnd = make_round(open_it=False, opens_at=now + timedelta(hours=1))
    with pytest.raises(Conflict) as exc:
        cast(rnd, units["1幢-101"], "agree", now + timedelta(hours=2))
    assert exc.value.code == "vote_not_open"  # still a draft: no job opened it
    rnd2 = make_round(opens_at=now, closes_at=now + timedelta(days=1))
    cast(rnd2, units["1幢-101"], "agree", now)  # opens_at itself is inside
    with pytest.raises(Conflict) as exc:
        cast(rnd2, units["1幢-102"], "agree", now + timedelta(days=1))  # closes_at itself is outside
    assert (exc.value.code, exc.value.message) == ("vote_window_closed", "投票已截止，不能再投票或修改")
    cast(rnd2, units["1幢-102"], "agree", now + timedelta(days=1) - timedelta(microseconds=1))


def test_change_of_vote_keeps_history_and_last_counts(db, make_round, units, now):
    rnd = make_round()
    u = units["1幢-101"]
    first = cast(rnd, u, "disagree", now + timedelta(minutes=1))
    second = cast(rnd, u, "agree", now + timedelta(minutes=2))
    assert first.receipt_code != second.receipt_code and len(second.receipt_code) == 20
    db.session.expire_all()
    assert [b.status for b in ballots_svc.ballot_history(rnd.id, u.id)] == ["counted", "superseded"]
    assert db.session.get(CurrentBallot, (rnd.id, u.id)).ballot_id == second.id
    assert ballots_svc.check_receipt(first.receipt_code)["counted"] is False
    info = ballots_svc.check_receipt(second.receipt_code.upper())
    assert (info["counted"], info["choice_label"], info["cast_at"]) == (True, "同意改造", now + timedelta(minutes=2))
    ev = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "ballot.cast")
                            .order_by(AuditEvent.seq.desc())).scalars().first()
    assert ev.data["receipt"] == second.receipt_code and ev.subject_id == str(second.id)


def test_receipt_code_format_and_unknown(db):
    with pytest.raises(ValidationFailed):
        ballots_svc.check_receipt("xyz")
    with pytest.raises(NotFound):
        ballots_svc.check_receipt("0" * 20)


def test_only_registered_owners_of_the_unit_can_cast(make_round, units, now):
    rnd = make_round()
    with pytest.raises(Exception) as exc:
        ballots_svc.cast_ballot(rnd.id, units["1幢-101"].id, owner_of(units["1幢-102"]), "agree", now)
    assert exc.value.status == 403


def test_invalid_choice_and_items_are_refused(make_round, units, now):
    rnd = make_round(item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"}])
    with pytest.raises(ValidationFailed) as exc:
        cast(rnd, units["1幢-101"], "maybe", now)
    assert exc.value.errors == {"choice": "“maybe”不是本次表决的选项"}
    with pytest.raises(ValidationFailed) as exc:
        cast(rnd, units["1幢-101"], "agree", now, items=["lift"])
    assert exc.value.errors == {"items": "未知的改造项目：lift"}
    b = cast(rnd, units["1幢-101"], "agree", now, items=["roof", "roof"])
    assert b.items == ["roof"]


def test_nothing_changes_after_opening_and_close_only_moves_later(make_round, now, committee):
    rnd = make_round()
    with pytest.raises(Conflict) as exc:
        svc.update_round(rnd.id, svc.RoundInput(kind="general", matter_item=7, title="x", opens_at=now,
                                                closes_at=now + timedelta(days=3)), now, committee)
    assert exc.value.code == "round_not_editable"
    with pytest.raises(Conflict) as exc:
        svc.extend_round(rnd.id, rnd.closes_at - timedelta(hours=1), "早点结束", now, committee)
    assert exc.value.message == "截止时间只能延后，不能提前"
    with pytest.raises(Conflict):
        svc.extend_round(rnd.id, rnd.closes_at + timedelta(days=1), "  ", now, committee)
    old = rnd.closes_at
    svc.extend_round(rnd.id, old + timedelta(days=3), "国庆假期，很多业主外出", now, committee)
    assert rnd.closes_at == old + timedelta(days=3)
    assert [(e.old_closes_at, e.reason) for e in rnd.extensions] == [(old, "国庆假期，很多业主外出")]


def test_round_input_errors_name_the_fields(estate, now):
    data = svc.RoundInput(kind="poll", title="", opens_at=now, closes_at=now, rule_preset="x", counting_mode="y")
    with pytest.raises(ValidationFailed) as exc:
        svc.create_round(estate.id, data, now)
    assert set(exc.value.errors) == {"kind", "title", "rule_preset", "counting_mode", "closes_at"}


def test_sql_tally_matches_the_pure_engine(db, make_round, units, now):
    rnd = make_round()
    choices = {"1幢-101": "agree", "1幢-102": "disagree", "2幢-201": "agree", "2幢-202": "abstain"}
    for label, choice in choices.items():
        cast(rnd, units[label], choice, now)
    t = tally_svc.compute_tally(rnd.id, now)
    entries = [th.RollEntry(u.id, u.building_id, u.title_area_m2, tuple(u.ownerships[0].owner_id for _ in [0]))
               for u in units.values()]
    pure = th.tally(entries, {units[k].id: v for k, v in choices.items()}, rnd.rule_preset)
    assert t.figures == pure.figures
    d = t.to_dict()
    assert d["figures"] == {"total_count": 5, "total_area": "400.00", "voted_count": 4, "voted_area": "300.00",
                            "agree_count": 2, "agree_area": "160.00"}
    assert [(c["key"], c["met"], c["margin"]) for c in d["conditions"]] == [
        ("agree_area", False, "106.67"), ("agree_count", False, 2)]
    assert d["can_still_pass"] is False  # 160 + 100 (1幢-103) = 260.00 < 266.67
    assert [(b["building_name"], b["voted_count"], b["agree_area"]) for b in d["buildings"]] == [
        ("1幢", 2, "100.00"), ("2幢", 2, "60.00")]
    assert tally_svc.non_voters_by_building(rnd.id) == {"1幢": ["103"]}


def test_person_mode_tally_through_the_service(db, make_round, units, now, estate):
    from residents_app.registry.models import Ownership

    # the owner of 1幢-101 also owns 1幢-102 (its own owner stays as co-owner): the owner sets {A} and
    # {A, B} differ, so these are two persons (法释〔2009〕7号 art. 9: chains do not merge)
    db.session.add(Ownership(unit_id=units["1幢-102"].id, owner_id=owner_of(units["1幢-101"])))
    db.session.flush()
    rnd = make_round(counting_mode="person")
    cast(rnd, units["1幢-101"], "agree", now)
    cast(rnd, units["1幢-102"], "agree", now)
    t = tally_svc.compute_tally(rnd.id, now)
    assert (t.figures.total_count, t.figures.agree_count, t.figures.agree_area) == (5, 2, 20000)


def test_person_mode_units_with_the_same_owner_set_are_one_person(db, make_round, units, now, estate):
    from residents_app.registry.models import Ownership

    # 1幢-102 now belongs to the owner of 1幢-101 alone: the same buyer of two units, one person
    own_102 = db.session.get(Ownership, (units["1幢-102"].id, owner_of(units["1幢-102"])))
    db.session.delete(own_102)
    db.session.add(Ownership(unit_id=units["1幢-102"].id, owner_id=owner_of(units["1幢-101"])))
    db.session.flush()
    db.session.expire_all()
    rnd = make_round(counting_mode="person")
    cast(rnd, units["1幢-101"], "agree", now)
    cast(rnd, units["1幢-102"], "agree", now)
    t = tally_svc.compute_tally(rnd.id, now)
    assert (t.figures.total_count, t.figures.agree_count, t.figures.agree_area) == (4, 1, 20000)


def test_scope_round_freezes_only_its_buildings(db, make_round, estate, units, now):
    b2 = next(b for b in estate.buildings if b.name == "2幢")
    rnd = make_round(scope_building_ids=[b2.id], kind="general", matter_item=7, title="2幢加装电梯")
    assert [e.label for e in tally_svc.roll_entries(rnd.id)] == ["2幢-201", "2幢-202"]
    with pytest.raises(NotFound):
        cast(rnd, units["1幢-101"], "agree", now)
    cast(rnd, units["2幢-201"], "agree", now)
    cast(rnd, units["2幢-202"], "disagree", now)
    t = tally_svc.compute_tally(rnd.id, now)
    # 60.00 of 100.00 < 2/3; 1 of 2 households
    assert (t.passed, t.to_dict()["margin_area"], t.margin_count) == (False, "6.67", 1)


def _scan(rnd, now, user):
    return ballots_svc.store_file(rnd.id, "paper_scan", b"%PDF-1.4 signed form", "application/pdf", now, user)


def test_paper_ballot_counts_only_after_a_second_member_confirms(db, make_round, units, now, committee, committee2):
    rnd = make_round()
    paper = ballots_svc.enter_paper_ballot(rnd.id, units["1幢-101"].id, "agree", _scan(rnd, now, committee), now,
                                           committee)
    assert paper.status == "pending"
    assert tally_svc.compute_tally(rnd.id, now).figures.agree_count == 0
    with pytest.raises(Conflict) as exc:
        ballots_svc.confirm_paper_ballot(paper.id, now, committee)
    assert exc.value.code == "same_user_confirm"
    ballots_svc.confirm_paper_ballot(paper.id, now, committee2)
    assert paper.status == "counted" and paper.receipt_code
    assert tally_svc.compute_tally(rnd.id, now).figures.agree_count == 1


def test_paper_ballot_for_unit_that_voted_online_is_a_conflict_resolved_with_reason(
        db, make_round, units, now, committee, committee2):
    rnd = make_round()
    u = units["1幢-101"]
    online = cast(rnd, u, "disagree", now)
    paper = ballots_svc.enter_paper_ballot(rnd.id, u.id, "agree", _scan(rnd, now, committee), now, committee)
    ballots_svc.confirm_paper_ballot(paper.id, now, committee2)
    assert paper.status == "conflict"
    assert db.session.get(CurrentBallot, (rnd.id, u.id)).ballot_id == online.id
    with pytest.raises(ValidationFailed):
        ballots_svc.resolve_conflict(paper.id, "paper", "", now, committee)
    ballots_svc.resolve_conflict(paper.id, "paper", "业主本人到场确认以纸质票为准", now, committee)
    db.session.expire_all()
    assert db.session.get(CurrentBallot, (rnd.id, u.id)).ballot_id == paper.id
    assert db.session.get(Ballot, online.id).status == "superseded"
    counted = db.session.execute(sa.select(sa.func.count()).select_from(Ballot).where(
        Ballot.round_id == rnd.id, Ballot.unit_id == u.id, Ballot.status == "counted")).scalar_one()
    assert counted == 1


def test_proxy_votes_with_a_recorded_mandate(db, make_round, units, now, committee, committee2):
    rnd = make_round()
    u = units["2幢-202"]
    evidence = ballots_svc.store_file(rnd.id, "mandate", b"\x89PNG\r\n\x1a\nxx", "image/png", now, committee)
    with pytest.raises(ValidationFailed):
        ballots_svc.record_mandate(rnd.id, u.id, owner_of(units["2幢-201"]), "李四", "", evidence, now, committee)
    m = ballots_svc.record_mandate(rnd.id, u.id, owner_of(u), "李四", "13900000000", evidence, now, committee)
    b = ballots_svc.cast_proxy_ballot(m.id, "agree", now, committee)
    # Issue 13 item 10: a proxy ballot counts only once a second member confirms it.
    assert (b.channel, b.proxy_name, b.status, b.cast_by_owner_id) == ("proxy", "李四", "pending", owner_of(u))
    assert tally_svc.compute_tally(rnd.id, now).figures.agree_area == 0
    ballots_svc.confirm_proxy_ballot(b.id, now, committee2)
    assert b.status == "counted"
    assert db.session.get(RoundFile, m.evidence_file_id).size_bytes == 10
    assert tally_svc.compute_tally(rnd.id, now).figures.agree_area == 4000


def test_links_issue_revoke_reissue(db, estate, units, now, committee):
    from residents_app.auth.resident import resolve_token

    issued = links.issue_links(estate.id, now, committee)
    assert len(issued) == 5
    assert links.issue_links(estate.id, now, committee) == []  # every unit already has one
    unit, token = issued[0]
    assert resolve_token(token).unit_id == unit.id
    new = links.reissue_link(unit.id, now, committee)
    assert resolve_token(token).revoked_at == now
    assert resolve_token(new).is_active
    assert links.revoke_link(unit.id, now, committee) == 1
    assert len(links.link_status(estate.id)) == 4


def test_identity_confirmation_and_lockout(db, estate, units, now):
    from residents_app.auth.resident import resolve_token

    unit, token = links.issue_links(estate.id, now)[0]
    link = resolve_token(token)
    owner = unit.owners[0]
    assert links.confirm_identity(link, owner.name, owner.phone[-4:], now) is owner
    for _ in range(5):
        with pytest.raises(ValidationFailed) as exc:
            links.confirm_identity(link, owner.name, "0000", now)
        assert exc.value.code == "identity_mismatch"
    with pytest.raises(Exception) as exc:
        links.confirm_identity(link, owner.name, owner.phone[-4:], now + timedelta(minutes=14))
    assert (exc.value.code, exc.value.status) == ("identity_locked", 429)
    assert links.confirm_identity(link, owner.name, owner.phone[-4:], now + timedelta(minutes=16)) is owner


def test_unit_lists_sort_naturally(db, factory, now):
    estate = factory.estate(buildings={"10幢": [("101", "50.00")], "2幢": [("1001", "50.00"), ("201", "50.00")]})
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="general", matter_item=7, title="排序", opens_at=now,
                                                     closes_at=now + timedelta(days=1)), now)
    svc.open_round(rnd.id, now, None)
    assert [e.label for e in tally_svc.roll_entries(rnd.id)] == ["2幢-201", "2幢-1001", "10幢-101"]
    assert tally_svc.non_voters_by_building(rnd.id) == {"2幢": ["201", "1001"], "10幢": ["101"]}
    for b in estate.buildings:
        for u in b.units:
            ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree", now)
    assert svc.agreeing_unit_labels(rnd.id) == ["2幢-201", "2幢-1001", "10幢-101"]
    assert [b["building_name"] for b in tally_svc.compute_tally(rnd.id).buildings] == ["2幢", "10幢"]


def test_plan_vote_needs_a_plan_version_of_this_estate(db, factory, estate, now):
    from residents_app.plans.models import PlanVersion

    other = factory.estate(buildings={"A": [("1", "10.00")]})
    mine = PlanVersion(estate_id=estate.id, number=1, title="方案一", status="published")  # votes need published
    theirs = PlanVersion(estate_id=other.id, number=1, title="别人的方案")
    db.session.add_all([mine, theirs])
    db.session.flush()
    base = {"kind": "plan_vote", "title": "方案表决", "opens_at": now, "closes_at": now + timedelta(days=7)}
    with pytest.raises(ValidationFailed) as exc:
        svc.create_round(estate.id, svc.RoundInput(**base), now)
    assert exc.value.errors == {"plan_version_id": "方案表决必须选择一个方案版本"}
    with pytest.raises(ValidationFailed) as exc:
        svc.create_round(estate.id, svc.RoundInput(**base, plan_version_id=theirs.id), now)
    assert exc.value.errors == {"plan_version_id": "所选方案版本不属于本小区"}
    rnd = svc.create_round(estate.id, svc.RoundInput(**base, plan_version_id=mine.id), now)
    assert (rnd.plan_version_id, rnd.option_labels["agree"]) == (mine.id, "同意该方案")
    svc.open_round(rnd.id, now, None)
    assert svc.round_outcome(rnd.id) is None
    svc.close_round(rnd.id, now + timedelta(days=7), None)
    out = svc.round_outcome(rnd.id)
    assert (out["plan_version_id"], out["passed"], out["kind"]) == (mine.id, False, "plan_vote")
