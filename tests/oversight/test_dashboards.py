"""Dashboards: progress against the 2/3 lines, the server-drawn turnout chart, deadlines, funding, scoping."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from residents_app.db import utcnow
from residents_app.extensions import db
from residents_app.oversight import charts, dashboards
from residents_app.registry.models import StreetOffice
from residents_app.rounds import counters
from tests.voted import build_open_round


@pytest.fixture
def live_round(voted_round):
    opens = utcnow().replace(microsecond=0) - timedelta(hours=5)
    return build_open_round(voted_round, opens, opens + timedelta(days=3))


def test_turnout_points_count_each_unit_once(voted_round, live_round):
    opens = live_round.opened_at
    assert dashboards.turnout_points(live_round.id) == [
        (opens + timedelta(hours=1), 1), (opens + timedelta(hours=2), 2), (opens + timedelta(hours=3), 3)]


def test_turnout_columns_are_the_points_at_the_charts_resolution(voted_round, live_round):
    opens = live_round.opened_at
    now = opens + timedelta(hours=5)  # the chart spans 5 h: 576 columns of 31.25 s, one household in each
    assert dashboards.turnout_columns_of([live_round], now) == {live_round.id: dashboards.turnout_points(live_round.id)}
    # Two columns of 2.5 h: +1 h and +2 h fall in the first (one step at its first cast), +3 h in the second.
    assert dashboards.turnout_columns_of([live_round], now, columns=2) == {
        live_round.id: [(opens + timedelta(hours=1), 2), (opens + timedelta(hours=3), 3)]}
    # Casts after the chart's end (a window cut short) are drawn at its right edge, still counted.
    assert dashboards.turnout_columns_of([live_round], opens + timedelta(hours=2), columns=2) == {
        live_round.id: [(opens + timedelta(hours=1), 1), (opens + timedelta(hours=2), 3)]}
    assert dashboards.turnout_columns_of([], now) == {}
    # With the counters read in the same statement: the same curve, the counters as stored_counts_of gives them.
    counts: dict = {}
    assert dashboards.turnout_columns_of([live_round], now, columns=2, counts=counts) == {
        live_round.id: [(opens + timedelta(hours=1), 2), (opens + timedelta(hours=3), 3)]}
    assert counts == counters.stored_counts_of([live_round.id])
    assert sum(n for (_, choice), (n, _) in counts[live_round.id].items() if choice) == 3  # the three voters


def test_progress_bars_are_exact(voted_round, live_round):
    card = dashboards.round_card(live_round, utcnow())
    assert [(b.label, b.value_text, b.fill_pct, b.line_pct, b.met, b.margin_text) for b in card.bars] == [
        ("同意面积 ≥ 总面积的 2/3", "92.30 m²（16.57%）", "16.57%", "66.66%", False, "还差 278.94 m²"),
        ("同意户数 ≥ 总户数的 2/3", "1 户（16.66%）", "16.66%", "66.66%", False, "还差 3 户"),
    ]
    assert (card.voted_count, card.total_count, card.passed, card.can_still_pass) == (3, 6, False, True)


def test_turnout_svg_is_drawn_exactly():
    start = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)
    svg = charts.turnout_svg([(start + timedelta(hours=6), 3), (start + timedelta(hours=12), 5)],
                             start=start, end=start + timedelta(hours=24), total=6, width=248, height=152)
    # plot: x 48..232 (184 px over 24 h), y 16..116 (100 px over 6 households)
    assert '<path d="M48.0,116.0 H94.0 V66.0 H140.0 V32.7 H232.0"' in svg
    assert 'y1="49.3" y2="49.3" stroke="#c0392b"' in svg  # the 2/3 line: 4 households
    assert "2/3 = 4 户" in svg and "已投票户数：5 / 6" in svg
    assert "<script" not in svg


def test_month_grid_and_deadline_months():
    weeks = charts.month_grid(2026, 9)
    assert weeks[0] == [None, date(2026, 9, 1), date(2026, 9, 2), date(2026, 9, 3), date(2026, 9, 4),
                        date(2026, 9, 5), date(2026, 9, 6)]
    assert weeks[-1][:3] == [date(2026, 9, 28), date(2026, 9, 29), date(2026, 9, 30)]
    assert charts.months_to_show(date(2026, 9, 20), []) == [(2026, 9)]
    assert charts.months_to_show(date(2026, 12, 20), [charts.Deadline(date(2027, 1, 4), "x")]) == [(2026, 12),
                                                                                                    (2027, 1)]


def test_deadlines_list_round_close_and_publicity_end(voted_round, now):
    rnd = build_open_round(voted_round, now, now + timedelta(days=3), title="屋面")
    items = dashboards.deadlines([voted_round.estate_id], now)
    assert [(d.day, d.label) for d in items] == [
        (date(2026, 9, 4), "「屋面」投票截止（2026-09-04 10:00）"),
        (date(2026, 9, 15), "公示「意愿征求结果公示」截止（09-15 24:00）"),
    ]
    assert rnd.status == "open"
    named = dashboards.deadlines([voted_round.estate_id], now, with_estate_name=True)
    assert named[0].label == f"{voted_round.estate_name}：「屋面」投票截止（2026-09-04 10:00）"
    # The day after the publicity's last day nothing is left.
    assert dashboards.deadlines([voted_round.estate_id], datetime(2026, 9, 15, 16, 0, tzinfo=UTC)) == []


def test_the_estate_statement_gives_what_deadlines_and_sign_offs_read_themselves(db, voted_round, now):
    """dashboards.estate_with_rounds: the estate's rounds, publicities and sign-offs in one statement (JSON arrays)
    give the dashboard's deadlines and closed rounds exactly as their own statements do."""
    from residents_app.oversight.services import sign_off
    from residents_app.rounds.models import Round

    rnd = build_open_round(voted_round, now, now + timedelta(days=3), title="屋面")
    closed = db.session.get(Round, voted_round.id)
    sign_off(closed, decision="returned", comment="补材料", user=voted_round.street, now=now)
    sign_off(closed, decision="verified", comment="材料齐全", user=voted_round.street, now=now + timedelta(hours=1))
    db.session.flush()
    estate, names, rounds, pubs, signoffs = dashboards.estate_with_rounds(voted_round.estate_id)
    assert estate.id == voted_round.estate_id and len(names) >= 1
    assert [r.id for r in rounds] == sorted([closed.id, rnd.id])
    assert pubs == [(voted_round.estate_id, "意愿征求结果公示", date(2026, 9, 15))]
    assert [(c, subject, data["decision"], at) for c, subject, data, at in signoffs] == [
        (voted_round.estate_id, str(closed.id), "returned", now),
        (voted_round.estate_id, str(closed.id), "verified", now + timedelta(hours=1))]
    ids = [voted_round.estate_id]
    assert dashboards.deadlines(ids, now, rounds=rounds, pubs=pubs) == dashboards.deadlines(ids, now)
    with_rows = dashboards.rounds_awaiting_verification(ids, rounds=rounds, signoffs=signoffs)
    assert with_rows == dashboards.rounds_awaiting_verification(ids)
    assert [(r["round"].id, r["decision"], r["decided"], r["at"]) for r in with_rows] == [
        (closed.id, "核验通过", True, now + timedelta(hours=1))]
    assert dashboards.estate_with_rounds(10**9) == (None, {}, [], [], [])


def test_estate_dashboard_page(client, login_as, voted_round, live_round):
    login_as(client, voted_round.c1)
    resp = client.get(f"/estates/{voted_round.estate_id}/dashboard")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    for expected in ("进行中的表决（1）", "进行中的表决", "已投票 3 / 6 户", "尚未达到，仍可能通过",
                     'style="width: 16.57%"', 'style="left: 66.66%"', "<svg", "还差 3 户",
                     "外立面及屋面改造意愿征求", "待核验", "尚无生效的改造方案", 'class="month"'):
        assert expected in html, expected
    assert "<script" not in html


def test_district_page_lists_only_its_estates(client, login_as, factory, voted_round, live_round):
    mine = factory.estate(office=db.session.get(StreetOffice, voted_round.office_id),
                          code="VR2", name="第二小区")
    other = factory.estate(code="ELSE", name="别的街道小区")
    login_as(client, voted_round.street)
    html = client.get("/district").get_data(as_text=True)
    assert f"{voted_round.estate_name}（VR1）" in html and f"{mine.name}（VR2）" in html
    assert "别的街道小区" not in html
    assert "外立面及屋面改造意愿征求" in html and "待核验" in html
    assert client.get(f"/estates/{other.id}/dashboard").status_code == 404


def test_committee_has_no_district_page(client, login_as, voted_round):
    login_as(client, voted_round.c1)
    assert client.get("/district").status_code == 404


def test_funding_ratio_on_the_estate_dashboard(client, login_as, factory, db, now):
    from datetime import date as _date

    from residents_app.funding import services as funding_svc
    from tests.plan_world import PlanWorld

    world = PlanWorld(factory, db, now)
    world.plan()  # owed: 1幢-101 540,000 + 1幢-102 360,000 + 2幢-101 200,000 fen
    funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=250_000, method="cash",
                               paid_on=_date(2026, 9, 1), user=world.committee, now=now)
    # 50,000 fen paid over 2幢-101's share does not cover anyone else's.
    assert dashboards.funding(world.estate.id) == {
        "owed_fen": 1_100_000, "counted_fen": 200_000, "ratio_text": "18.18%", "complete": False,
        "fill_pct": "18.18%", "owing_units": 2}
    login_as(client, world.street)
    html = client.get(f"/estates/{world.estate.id}/dashboard").get_data(as_text=True)
    assert "18.18%" in html and "已到位 2,000.00 元 / 应筹 11,000.00 元 · 未缴清 2 户" in html
    html = client.get("/district").get_data(as_text=True)
    assert "18.18%" in html
