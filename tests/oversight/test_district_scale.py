"""The district view at scale (issue 19 items 2-3): a bounded number of SQL statements whatever the number of
estates, a sortable, filterable, paginated table, and its CSV/XLSX export.

Each estate built here: 1幢 101 (80.00 m²) and 102 (70.00 m²), one owner each; an open round (window around the
real clock: the district view reads utcnow()) with 101's ballot; every third estate also a closed round, not yet
signed off. Two more estates (PlanWorld, moved into the office) have a published plan and payments.
"""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from openpyxl import load_workbook

from residents_app.db import utcnow
from residents_app.funding import services as funding_svc
from residents_app.oversight import district as district_svc
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from tests.plan_world import PlanWorld
from tests.querycount import count_statements

BOUND = 14  # issue 19: 20 before the id lists became one array parameter and the names were shared


def _round(estate, start, end, now, title):
    rnd = svc.create_round(estate.id, svc.RoundInput(kind="willingness", title=title, opens_at=start,
                                                      closes_at=end), now)
    assert svc.open_round(rnd.id, start) is True
    return rnd


def build(factory, db, office, n, *, start=0):
    t = utcnow()
    for i in range(start, start + n):
        e = factory.estate(office=office, code=f"D{i:03d}", name="小区",
                           buildings={"1幢": [("101", "80.00"), ("102", "70.00")]})
        db.session.flush()
        u101 = next(u for b in e.buildings for u in b.units if u.number == "101")
        rnd = _round(e, t - timedelta(hours=1), t + timedelta(days=14), t - timedelta(hours=1), "是否同意改造")
        ballots_svc.cast_ballot(rnd.id, u101.id, u101.ownerships[0].owner_id, "agree", t - timedelta(minutes=30))
        if i % 3 == 0:
            old = _round(e, t - timedelta(days=3), t - timedelta(days=1), t - timedelta(days=3), "上一轮意愿征求")
            ballots_svc.cast_ballot(old.id, u101.id, u101.ownerships[0].owner_id, "agree", t - timedelta(days=2))
            assert svc.close_round(old.id, t - timedelta(days=1)) is True
    db.session.commit()


def planned(factory, db, office, now, paid_fen):
    world = PlanWorld(factory, db, now)
    world.estate.street_office_id = office.id
    db.session.commit()
    world.plan()  # owed: 1幢-101 540,000 + 1幢-102 360,000 + 2幢-101 200,000 fen
    funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=paid_fen, method="cash",
                               paid_on=date(2026, 9, 1), user=world.committee, now=now)
    db.session.commit()
    return world


@pytest.fixture
def district(factory, db, now):
    office = factory.street_office()
    street = factory.user("street", office=office)
    db.session.commit()
    return office, street


def _district(client, db, url="/district"):
    db.session.expire_all()
    with count_statements(db.engine) as counted:
        resp = client.get(url)
    assert resp.status_code == 200
    return resp.get_data(as_text=True), counted


def test_district_view_runs_the_same_few_statements_at_3_and_at_30_estates(client, login_as, factory, db, now,
                                                                           district):
    office, street = district
    build(factory, db, office, 3)
    planned(factory, db, office, now, 250_000)
    login_as(client, street)
    html, small = _district(client, db)
    assert small.total <= BOUND, small.report()
    assert "共 4 个小区" in html
    build(factory, db, office, 27, start=3)
    planned(factory, db, office, now, 1_100_000)
    html, large = _district(client, db)
    assert "共 32 个小区" in html
    assert large.total <= BOUND, large.report()
    assert large.total == small.total, (small.report(), large.report())
    # No chart, no round card on the district view: those are on the estate page.
    assert "<svg" not in html and 'class="round-card' not in html


def test_district_table_rows_sort_filter_page_and_export(client, login_as, factory, db, now, district,
                                                          monkeypatch):
    office, street = district
    build(factory, db, office, 4)
    world = planned(factory, db, office, now, 250_000)
    login_as(client, street)
    html, _ = _district(client, db)
    row = html.split('id="estate-')[1].split("</tr>")[0]
    # D000: open round 1 of 2 voted; a closed round waiting for the street office.
    assert "小区" in row and "（D000）" in row and "投票中：改造意愿征求（改不改）" in row
    assert "50.00%（1 / 2 户）" in row and "1 / 1" in row
    plan_row = html.split(f'id="estate-{world.estate.id}"')[1].split("</tr>")[0]
    # 200,000 of 1,100,000 fen counted (2幢-101's overpayment covers nobody else).
    assert "筹资中" in plan_row and "18.18% · 未缴清 2 户" in plan_row

    # Filters: only rows with something overdue (D000 and D003), by name or code, by stage.
    html, _ = _district(client, db, "/district?overdue=1")
    assert "符合条件 2 个" in html and "（D000）" in html and "（D003）" in html and "（D001）" not in html
    html, _ = _district(client, db, "/district?q=d002")
    assert "符合条件 1 个" in html and "（D002）" in html
    html, _ = _district(client, db, "/district?stage=筹资中")
    assert "符合条件 1 个" in html and f'id="estate-{world.estate.id}"' in html

    # Sorted by funding, highest first: the planned estate, then the ones without a plan by code.
    rows = district_svc.filter_rows(
        district_svc.district_rows(_estates(db, office), utcnow()), sort="funding", descending=True)
    assert [r.code for r in rows][:1] == [world.estate.code]
    # Sorted by what is overdue, most first.
    rows = district_svc.filter_rows(district_svc.district_rows(_estates(db, office), utcnow()), sort="overdue",
                                    descending=True)
    assert [(r.code, r.overdue) for r in rows][:2] == [("D003", 1), ("D000", 1)]

    # Pages of 2: 5 estates -> 3 pages; page 3 holds the last one by code.
    monkeypatch.setattr(district_svc, "PAGE_SIZE", 2)
    html, _ = _district(client, db, "/district?page=3")
    assert "第 3 / 3 页" in html and html.count('<tr id="estate-') == 1
    html, _ = _district(client, db, "/district?page=99")  # clamped to the last page
    assert "第 3 / 3 页" in html

    csv = client.get("/district/export.csv?overdue=1&sort=code").get_data().decode("utf-8-sig").splitlines()
    assert csv[0] == ",".join(district_svc.HEADER)
    assert [line.split(",")[0] for line in csv[1:]] == ["D000", "D003"]
    assert csv[1].split(",")[2:12] == ["投票中：改造意愿征求（改不改）", "1", "50.00%", "1", "2", "户", "—", "0", "1",
                                       "1"]
    resp = client.get("/district/export.xlsx?q=D00&sort=code&dir=desc")
    ws = load_workbook(io.BytesIO(resp.get_data())).active
    assert [r[0] for r in ws.iter_rows(min_row=2, values_only=True)] == ["D003", "D002", "D001", "D000"]


def _estates(db, office):
    import sqlalchemy as sa

    from residents_app.registry.models import Estate

    return list(db.session.execute(sa.select(Estate).where(Estate.street_office_id == office.id)
                                   .order_by(Estate.code)).scalars())


def test_committee_cannot_export_the_district(client, login_as, factory, db, district):
    office, _ = district
    e = factory.estate(office=office)
    committee = factory.user("committee", estate=e)
    db.session.commit()
    login_as(client, committee)
    assert client.get("/district/export.csv").status_code == 404


def test_funding_summary_rows_follow_each_committed_payment(factory, db, now, district):
    from residents_app.funding import summary

    office, _ = district
    world = planned(factory, db, office, now, 250_000)
    row = summary.stored([world.estate.id])[world.estate.id]
    plan_id = summary.plans_in_force([world.estate.id])[world.estate.id]
    assert (row.plan_version_id, row.owed_fen, row.counted_fen, row.paid_fen, row.owing_units) == (
        plan_id, 1_100_000, 200_000, 250_000, 2)
    funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=540_000, method="cash",
                               paid_on=date(2026, 9, 1), user=world.committee, now=now)
    db.session.commit()
    db.session.expire_all()
    row = summary.stored([world.estate.id])[world.estate.id]
    assert (row.owed_fen, row.counted_fen, row.paid_fen, row.owing_units) == (1_100_000, 740_000, 790_000, 1)
    live = funding_svc.funding_summary(world.estate.id)
    assert (live["counted_fen"], live["owing_units"]) == (740_000, 1)
