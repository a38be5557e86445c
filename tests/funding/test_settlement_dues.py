"""Issue 15 item 5: settlement carried out: each unit's refund or top-up is a due entry, closed when recorded;
the resident sees the settlement line and its state; XLSX of the open items."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from residents_app.errors import Conflict, ValidationFailed
from residents_app.funding import account
from residents_app.funding import services as funding_svc
from residents_app.funding import settlement as settlement_svc


def finalised(world):
    """Owed 5,400 / 3,600 / 2,000; paid 5,400 / 3,000 / 2,000; the lift's audited cost 9,000 instead of 10,000:
    final 4,980 / 3,320 / 2,000 -> 1幢-101 refund 420.00, 1幢-102 top-up 320.00, 2幢-101 nothing."""
    plan = world.plan()
    for unit, fen in ((world.u101, 540_000), (world.u102, 300_000), (world.u201, 200_000)):
        funding_svc.record_payment(world.estate, unit_id=unit.id, amount_fen=fen, method="bank",
                                   paid_on=world.now.date(), user=world.committee, now=world.now)
    s = settlement_svc.settlement_of(plan, create=True, now=world.now)
    for item in plan.items:
        cost = 900_000 if item.name == "1幢加装电梯" else item.cost_fen
        settlement_svc.set_audited_cost(s, item.id, cost, user=world.committee, now=world.now)
    settlement_svc.finalise_settlement(s, user=world.committee, now=world.now)
    world.db.session.commit()
    return plan, s


def test_finalising_creates_dues_and_recording_closes_them(world, db):
    plan, s = finalised(world)
    dues = settlement_svc.dues_of(s)
    assert [(d.unit.label, d.kind, d.amount_fen, d.state_label) for d in dues] == [
        ("1幢-101", "refund", 42_000, "待退还"), ("1幢-102", "top_up", 32_000, "待补缴")]
    refund, top_up = dues
    settlement_svc.close_due(refund, method="bank", paid_on=world.now.date(), reference="TK01", user=world.committee,
                             now=world.now)
    settlement_svc.close_due(top_up, method="wechat", paid_on=world.now.date(), user=world.committee, now=world.now)
    assert [d.state_label for d in settlement_svc.dues_of(s)] == ["已退还", "已补缴"]
    # after the settlement is carried out every unit has paid exactly its final share
    assert funding_svc.paid_by_unit(world.estate.id) == {world.u101.id: 498_000, world.u102.id: 332_000,
                                                         world.u201.id: 200_000}
    kinds = [(e.kind, e.amount_fen) for e in account.entries_of(world.estate.id)]
    assert kinds[-2:] == [("refund", -42_000), ("top_up", 32_000)]
    with pytest.raises(Conflict):
        settlement_svc.close_due(refund, method="bank", paid_on=world.now.date(), user=world.committee, now=world.now)
    assert settlement_svc.dues_of(s, open_only=True) == []


def test_close_due_validates(world):
    _, s = finalised(world)
    with pytest.raises(ValidationFailed) as info:
        settlement_svc.close_due(settlement_svc.dues_of(s)[0], method="gold", paid_on=None, user=world.committee,
                                 now=world.now)
    assert set(info.value.errors) == {"method", "paid_on"}


def test_resident_sees_settlement_line_and_committee_exports_open_items(client, login_as, resident_login, world, db):
    _, s = finalised(world)
    resident_login(client, world.u102)
    page = client.get("/r/statement").get_data(as_text=True)
    assert "补缴 <strong class=\"money\">320.00</strong> 元" in page
    assert '<span class="state" id="settlement-state">待补缴</span>' in page
    settlement_svc.close_due(settlement_svc.dues_of(s)[1], method="cash", paid_on=world.now.date(),
                             user=world.committee, now=world.now)
    db.session.commit()
    page = client.get("/r/statement").get_data(as_text=True)
    assert '<span class="state" id="settlement-state">已补缴</span>' in page
    resident_login(client, world.u201)
    assert '<p class="big" id="settlement-state">已结清，无需退补</p>' in client.get("/r/statement").get_data(
        as_text=True)
    login_as(client, world.committee)
    plan_id = s.plan_version_id
    assert "待退还" in client.get(f"/plans/{plan_id}/settlement/dues").get_data(as_text=True)
    wb = load_workbook(io.BytesIO(client.get(f"/plans/{plan_id}/settlement/dues.xlsx").data))
    rows = list(wb["待退补"].iter_rows(values_only=True))
    assert rows[0] == ("房号", "处理", "金额(元)", "业主", "联系电话", "状态")
    assert [(r[0], r[1], r[2], r[5]) for r in rows[1:2]] == [("1幢-101", "退还", 420, "待退还")]
    assert rows[2][:3] == ("待退还合计", "1 户", 420) and rows[3][:3] == ("待补缴合计", "0 户", 0)
    resp = client.post(f"/plans/{plan_id}/settlement/dues", data={"due_id": settlement_svc.dues_of(s)[0].id,
                                                                  "method": "bank", "paid_on": "2026-09-01"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert settlement_svc.dues_of(s, open_only=True) == []
