"""Stored counters per round, building and choice (issue 19 item 1): moved by every cast path in the cast's own
transaction, equal to a recount from the ballots, checked by `flask rounds recount` and `flask audit verify`.

Estate: 1幢 101/102/103 (100.00 m² each), 2幢 201 (60.00) and 202 (40.00): 5 households, 400.00 m².
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import counters
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import RoundCount
from tests.rounds.test_cast_path import _identify

PDF = b"%PDF-1.4 signed"


def _api_cast(client, token, rnd, choice):
    resp = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": choice})
    assert resp.status_code == 201, resp.get_json()


def _paper(rnd, unit, choice, when, user, user2):
    scan = ballots_svc.store_file(rnd.id, "paper_scan", PDF, "application/pdf", when, user)
    b = ballots_svc.enter_paper_ballot(rnd.id, unit.id, choice, scan, when, user)
    return ballots_svc.confirm_paper_ballot(b.id, when, user2)


def _proxy(rnd, unit, choice, when, user, user2):
    evidence = ballots_svc.store_file(rnd.id, "mandate", PDF, "application/pdf", when, user)
    m = ballots_svc.record_mandate(rnd.id, unit.id, unit.ownerships[0].owner_id, "李四", "13900000000", evidence,
                                   when, user)
    b = ballots_svc.cast_proxy_ballot(m.id, choice, when, user)
    return ballots_svc.confirm_proxy_ballot(b.id, when, user2)


def test_every_cast_path_moves_the_counters_to_what_a_recount_gives(client, db, live_round, link_for, units,
                                                                    committee, committee2):
    rnd = live_round(kind="general", matter_item=7)
    b1, b2 = units["1幢-101"].building_id, units["2幢-201"].building_id
    # Frozen roll: written when the round opened.
    assert counters.stored_counts(rnd.id) == {(b1, ""): (3, 30000), (b2, ""): (2, 10000)}
    tokens = link_for()
    # The API: a first cast (checked path), then changes and casts by the one-statement path.
    for label, choices in (("1幢-101", ("agree", "disagree")), ("1幢-102", ("agree",)),
                           ("2幢-201", ("abstain", "agree", "agree"))):
        _identify(client, tokens[label], units[label])
        for choice in choices:
            _api_cast(client, tokens[label], rnd, choice)
    t = utcnow()
    # The service path (pages, scripts).
    for choice in ("disagree", "agree"):
        ballots_svc.cast_ballot(rnd.id, units["1幢-103"].id, units["1幢-103"].ownerships[0].owner_id, choice, t)
    # Paper, confirmed by a second member; paper against an online ballot: a conflict the paper wins.
    _paper(rnd, units["2幢-202"], "disagree", t, committee, committee2)
    conflict = _paper(rnd, units["1幢-102"], "disagree", t, committee, committee2)
    assert conflict.status == "conflict"
    assert counters.stored_counts(rnd.id)[(b1, "agree")] == (2, 20000)  # a conflict moves nothing yet
    ballots_svc.resolve_conflict(conflict.id, "paper", "业主到场确认", t, committee)
    # A proxy against the owner's own ballot: the owner's stays (nothing moves).
    proxy = _proxy(rnd, units["1幢-101"], "agree", t, committee, committee2)
    ballots_svc.resolve_conflict(proxy.id, "online", "业主本人已在线投票", t, committee)
    db.session.commit()

    # 1幢: 101 disagree, 102 disagree (paper), 103 agree; 2幢: 201 agree, 202 disagree (paper).
    expected = {(b1, ""): (3, 30000), (b1, "agree"): (1, 10000), (b1, "disagree"): (2, 20000),
                (b2, ""): (2, 10000), (b2, "agree"): (1, 6000), (b2, "disagree"): (1, 4000)}
    assert counters.stored_counts(rnd.id) == expected
    assert counters.live_counts([rnd.id])[rnd.id] == expected
    assert counters.check_counters(round_ids=[rnd.id]) == []
    # A choice left (abstain -> agree) keeps a zero row, which is no count.
    assert db.session.execute(sa.select(RoundCount.units).where(
        RoundCount.round_id == rnd.id, RoundCount.choice == "abstain")).scalar_one() == 0
    f = tally_svc.compute_tally(rnd.id, t).to_dict()["figures"]
    assert (f["total_count"], f["total_area"], f["voted_count"], f["voted_area"], f["agree_count"],
            f["agree_area"]) == (5, "400.00", 5, "400.00", 2, "160.00")


def test_the_tally_reads_the_counters(db, make_round, units, now):
    rnd = make_round(kind="general", matter_item=7)
    u = units["2幢-201"]
    ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree", now + timedelta(hours=1))
    f = tally_svc.compute_tally(rnd.id, now).to_dict()["figures"]
    assert (f["voted_count"], f["agree_count"], f["agree_area"]) == (1, 1, "60.00")
    # Only the counters changed: the tally follows them (and the recount says they are wrong).
    db.session.execute(sa.update(RoundCount).where(RoundCount.round_id == rnd.id, RoundCount.choice == "agree")
                       .values(units=2, area_m2=Decimal("100.00")))
    f = tally_svc.compute_tally(rnd.id, now).to_dict()["figures"]
    assert (f["voted_count"], f["agree_count"], f["agree_area"]) == (2, 2, "100.00")
    assert [p.code for p in counters.check_counters(round_ids=[rnd.id])] == ["round_count_mismatch"]


def test_the_round_pages_one_statement_gives_the_counters_and_the_latest_ballots(db, make_round, units, now):
    """ballots.counts_and_latest: what counters.stored_counts and latest_ballots give, read in one statement."""
    rnd = make_round(kind="general", matter_item=7)
    b1, b2 = units["1幢-101"].building_id, units["2幢-201"].building_id
    casts = [("1幢-101", "agree", 1), ("2幢-201", "disagree", 2), ("1幢-101", "disagree", 3), ("1幢-102", "agree", 4)]
    for label, choice, hours in casts:
        u = units[label]
        ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, choice, now + timedelta(hours=hours))
    stored, latest = ballots_svc.counts_and_latest(rnd.id, limit=3)
    assert stored == {
        (b1, ""): (3, 30000), (b2, ""): (2, 10000), (b1, "agree"): (1, 10000), (b1, "disagree"): (1, 10000),
        (b2, "disagree"): (1, 6000)}
    assert stored == counters.stored_counts(rnd.id)
    # Newest first: 102 agree, 101 disagree, 201 disagree (the 4th, 101's first ballot, is past the limit).
    assert [(b.label, b.choice, b.channel, b.status, b.proxy_name, b.cast_at) for b in latest] == [
        ("1幢-102", "agree", "online", "counted", "", now + timedelta(hours=4)),
        ("1幢-101", "disagree", "online", "counted", "", now + timedelta(hours=3)),
        ("2幢-201", "disagree", "online", "counted", "", now + timedelta(hours=2))]
    assert latest[0].cast_at.tzinfo is not None
    assert [(b.id, b.unit_id, b.choice, b.label, b.cast_at) for b in ballots_svc.latest_ballots(rnd.id, limit=3)] \
        == [(b.id, b.unit_id, b.choice, b.label, b.cast_at) for b in latest]
    assert ballots_svc.counts_and_latest(rnd.id, limit=0)[1] == []


def recount(app, *args):
    return app.test_cli_runner().invoke(args=["rounds", "recount", *args])


def test_flask_rounds_recount_names_a_corrupted_round_and_rebuilds_it(app, db, make_round, units, now):
    good = make_round(kind="general", matter_item=7, title="好的表决")
    bad = make_round(kind="general", matter_item=7, title="被改过的表决")
    for rnd in (good, bad):
        for label in ("1幢-101", "2幢-202"):
            u = units[label]
            ballots_svc.cast_ballot(rnd.id, u.id, u.ownerships[0].owner_id, "agree", now + timedelta(hours=1))
    db.session.commit()
    ok = recount(app)
    assert (ok.exit_code, ok.output) == (0, "OK    计数器与选票一致\n")

    b2 = units["2幢-202"].building_id
    db.session.execute(sa.update(RoundCount).where(
        RoundCount.round_id == bad.id, RoundCount.building_id == b2, RoundCount.choice == "agree")
        .values(units=5, area_m2=Decimal("400.00")))
    db.session.commit()
    result = recount(app)
    assert result.exit_code == 1, result.output
    assert result.output == (
        f"BROKEN 表决 #{bad.id}「被改过的表决」：2幢 “同意”：计数器为 5 户、400.00 ㎡，按选票重新计数为 1 户、40.00 ㎡"
        "（round_count_mismatch）\n"
        f"核对失败：1 处计数器与选票不符（表决 #{bad.id}）\n")
    # Only the named round: the other one is fine.
    assert recount(app, "--round", str(good.id)).exit_code == 0
    # `flask audit verify` runs the same check.
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 1
    assert ("“同意”：计数器为 5 户、400.00 ㎡，按选票重新计数为 1 户、40.00 ㎡（round_count_mismatch）"
            in verify.output)

    rebuilt = recount(app, "--rebuild")
    assert (rebuilt.exit_code, rebuilt.output.splitlines()[-1]) == (0, f"已按选票重建 1 个表决的计数器：#{bad.id}")
    assert recount(app).exit_code == 0
    assert counters.stored_counts(bad.id)[(b2, "agree")] == (1, 4000)


def test_a_round_opened_freezes_its_roll_totals_and_a_draft_has_none(db, make_round, units, now):
    draft = make_round(open_it=False)
    assert counters.stored_counts(draft.id) == {}
    assert svc.open_round(draft.id, now, None) is True
    b1, b2 = units["1幢-101"].building_id, units["2幢-201"].building_id
    assert counters.stored_counts(draft.id) == {(b1, ""): (3, 30000), (b2, ""): (2, 10000)}
