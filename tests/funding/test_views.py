"""Money pages and API: funding and ledger, statements export, resident statement and pledge, settlement."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from openpyxl import load_workbook

from residents_app.funding import services as funding_svc
from residents_app.funding.models import Payment


def test_street_office_sees_but_cannot_record_payments(client, login_as, world):
    world.plan()
    login_as(client, world.street)
    assert client.get(f"/estates/{world.estate.id}/funding").status_code == 200
    resp = client.post(f"/estates/{world.estate.id}/funding/payments",
                       data={"unit_id": world.u101.id, "amount_yuan": "1", "method": "cash", "paid_on": "2026-09-01"})
    assert resp.status_code == 403


def test_funding_page_ledger_and_reversal(client, login_as, world, db):
    world.plan()
    login_as(client, world.committee)
    today = datetime.now(UTC).date().isoformat()
    resp = client.post(f"/estates/{world.estate.id}/funding/payments",
                       data={"unit_id": world.u101.id, "amount_yuan": "5,400.00", "method": "bank", "paid_on": today,
                             "reference": "=HYPERLINK(\"x\")"})
    assert resp.status_code == 302
    pay = db.session.execute(sa.select(Payment)).scalar_one()
    assert pay.amount_fen == 540_000
    resp = client.post(f"/estates/{world.estate.id}/funding/payments/{pay.id}/reverse", data={"reason": ""})
    assert resp.status_code == 422
    resp = client.post(f"/estates/{world.estate.id}/funding/payments/{pay.id}/reverse", data={"reason": "录错户"})
    assert resp.status_code == 302
    page = client.get(f"/estates/{world.estate.id}/funding").get_data(as_text=True)
    assert '<strong id="estate-ratio">0.00%</strong>' in page
    assert f"冲正第 {pay.id} 号：录错户" in page
    wb = load_workbook(io.BytesIO(client.get(f"/estates/{world.estate.id}/ledger.xlsx").data))
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[1][1:5] == ("1幢-101", 5400, "银行转账", "'=HYPERLINK(\"x\")")
    assert rows[2][2] == -5400 and rows[2][8] == pay.id


def test_api_payment_and_funding(client, login_as, world):
    world.plan()
    login_as(client, world.committee)
    resp = client.post(f"/api/plans/estates/{world.estate.id}/payments",
                       json={"unit_id": world.u201.id, "amount_fen": 200_000, "method": "wechat",
                             "paid_on": "2026-09-01"})
    assert resp.status_code == 201, resp.get_json()
    resp = client.post(f"/api/plans/estates/{world.estate.id}/payments",
                       json={"unit_id": world.u201.id, "amount_fen": 1, "method": "wechat", "paid_on": "2026-09-01",
                             "extra": 1})
    assert resp.status_code == 422 and resp.get_json()["errors"]["json"] == {"extra": ["Unknown field."]}
    data = client.get(f"/api/plans/estates/{world.estate.id}/funding").get_json()
    assert (data["owed_fen"], data["paid_fen"], data["ratio_pair"], data["ratio"]) == (
        1_100_000, 200_000, [200_000, 1_100_000], "18.18%")
    assert [(b["name"], b["ratio"]) for b in data["buildings"]] == [("1幢", "0.00%"), ("2幢", "100.00%")]


def test_statement_export_neutralises_and_is_exact(client, login_as, world):
    plan = world.plan(items=[("=cmd|' /C calc'!A0", "basic", 100_001, None)])
    login_as(client, world.committee)
    wb = load_workbook(io.BytesIO(client.get(f"/plans/{plan.id}/statements.xlsx").data))
    rows = list(wb["每户分摊"].iter_rows(values_only=True))
    assert rows[0][2] == "'=cmd|' /C calc'!A0(元)"
    # 10% of 1,000.01 = 100.001 -> 10,000 fen; by area 60/40/100: 3,000 / 2,000 / 5,000
    assert [r[2] for r in rows[1:4]] == [30, 20, 50]
    assert rows[4][0] == "合计" and rows[4][3] == 100
    items = list(wb["项目"].iter_rows(values_only=True))
    assert items[1][0] == "'=cmd|' /C calc'!A0" and Decimal(str(items[1][3])) == Decimal("1000.01")


def test_resident_sees_own_statement_and_signs_pledge(client, world, resident_login, db):
    plan = world.plan()
    resident_login(client, world.u102)
    page = client.get("/r/statement").get_data(as_text=True)
    assert '<p class="amount-big" id="owed">3,600.00 元</p>' in page
    assert "1幢-101" not in page and "2幢-101" not in page
    assert "1幢加装电梯（提升，1幢）费用 10,000.00 元，居民承担 70% 即 7,000.00 元" in page
    page = client.get("/r/plan").get_data(as_text=True)
    assert "幸福小区综合改造方案" in page
    resp = client.post("/r/pledge", data={})
    assert resp.status_code == 422
    resp = client.post("/r/pledge", data={"confirm": "1"})
    assert resp.status_code == 302
    pledge = funding_svc.active_pledge(plan, world.u102)
    assert (pledge.amount_fen, pledge.signed_by_owner_id) == (360_000, world.owner(world.u102).id)
    assert "已签署：承诺出资 3,600.00 元" in client.get("/r/pledge").get_data(as_text=True)
    resp = client.post("/r/pledge", data={"action": "withdraw"})
    assert resp.status_code == 302 and funding_svc.active_pledge(plan, world.u102) is None


def test_settlement_page_and_export(client, login_as, world, db):
    plan = world.plan()
    for unit, amount in [(world.u101, 540_000), (world.u102, 360_000), (world.u201, 200_000)]:
        funding_svc.record_payment(world.estate, unit_id=unit.id, amount_fen=amount, method="bank",
                                paid_on=world.now.date(), user=world.committee, now=world.now)
    db.session.commit()
    login_as(client, world.committee)
    costs = {"雨污分流": "10000", "外墙保温": "8000.00", "停车位改造": "10,000", "1幢加装电梯": "11000"}
    data = {f"item_{i.id}": costs[i.name] for i in plan.items}
    resp = client.post(f"/plans/{plan.id}/settlement", data={**data, "finalise": "1"})
    assert resp.status_code == 302
    page = client.get(f"/plans/{plan.id}/settlement").get_data(as_text=True)
    assert '应补缴 <strong id="top-up">600.00</strong> 元，应退还 <strong id="refund">100.00</strong> 元' in page
    wb = load_workbook(io.BytesIO(client.get(f"/plans/{plan.id}/settlement.xlsx").data))
    rows = list(wb.active.iter_rows(values_only=True))
    assert [(r[0], r[4], r[5]) for r in rows[1:4]] == [("1幢-101", 360, "补缴"), ("1幢-102", 240, "补缴"),
                                                       ("2幢-101", -100, "退还")]
    assert rows[4][4] == 500
