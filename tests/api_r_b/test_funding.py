"""The resident API of the money: /api/r/statement, /api/r/settlement, /api/r/pledges (sign, withdraw), the home's
"pledges" section. The plan world: 1幢-101 60 m², 1幢-102 40 m², 2幢-101 100 m²; four items of 10,000.00 yuan
(required 0 %, basic 10 %, improvement 30 %, 1幢's lift upgrade 70 %): 1幢-101 owes 300 + 900 + 4,200 = 5,400.00,
1幢-102 200 + 600 + 2,800 = 3,600.00, 2幢-101 500 + 1,500 = 2,000.00."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.funding import services as funding_svc
from residents_app.funding import settlement as settlement_svc
from residents_app.funding.models import Pledge
from residents_app.works.models import StartApplication


def _events(db, kind):
    return db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)
                              ).scalars().all()


def test_no_session_is_401_on_every_money_route(client, world):
    for method, path in (("get", "/api/r/statement"), ("get", "/api/r/settlement"), ("get", "/api/r/pledges"),
                         ("post", "/api/r/pledges"), ("post", "/api/r/pledges/1/withdraw")):
        resp = getattr(client, method)(path, json={} if method == "post" else None)
        assert resp.status_code == 401, path
        assert resp.get_json()["code"] == "identity_required"


def test_statement_to_the_fen(client, resident_login, world, db, clock):
    plan = world.plan()
    funding_svc.set_hardship(world.estate, world.u101, mode="partial", subsidy_fen=10_050, covered_by="街道",
                             user=world.committee, now=world.now)
    funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=100_001, method="wechat",
                               paid_on=world.now.date(), user=world.committee, now=world.now)
    db.session.commit()
    resident_login(client, world.u101)
    data = client.get("/api/r/statement").get_json()
    assert data["plan"] == {"id": plan.id, "number": 1, "title": "幸福小区综合改造方案"}
    assert (data["unit_label"], data["area_m2"]) == ("1幢-101", "60.00")
    assert [(ln["item"], ln["category"], ln["resident_pct"], ln["share"]) for ln in data["lines"]] == [
        ("雨污分流", "required", 0, "0.00"), ("外墙保温", "basic", 10, "300.00"),
        ("停车位改造", "improvement", 30, "900.00"), ("1幢加装电梯", "upgrade", 70, "4200.00")]
    assert data["lines"][1]["explanation"].endswith(
        "共 1,000.00 元按产权面积分摊给 3 户（共 200.00 m²），本户 60.00 m²，应摊 300.00 元")
    # 5,400.00 shared, 100.50 hardship relief by the street office, 1,000.01 paid
    assert (data["share"], data["offset"], data["matched"]) == ("5400.00", "0.00", "0.00")
    assert data["hardship"] == {"mode": "partial", "mode_label": "部分补助", "covered": "100.50", "covered_by": "街道"}
    assert (data["owed"], data["paid"], data["balance"]) == ("5299.50", "1000.01", "4299.49")


def test_statement_without_a_plan_is_a_clear_404(client, resident_login, world):
    resident_login(client, world.u201)
    resp = client.get("/api/r/statement")
    assert resp.status_code == 404
    assert (resp.get_json()["code"], resp.get_json()["message"]) == ("no_plan", "本小区还没有发布改造方案")


def _finalised(world):
    """Paid 5,400 / 3,000 / 2,000; the lift's audited cost 9,000 instead of 10,000: final 4,980 / 3,320 / 2,000."""
    plan = world.plan()
    for unit, fen in ((world.u101, 540_000), (world.u102, 300_000), (world.u201, 200_000)):
        funding_svc.record_payment(world.estate, unit_id=unit.id, amount_fen=fen, method="bank",
                                   paid_on=world.now.date(), user=world.committee, now=world.now)
    s = settlement_svc.settlement_of(plan, create=True, now=world.now)
    for item in plan.items:
        settlement_svc.set_audited_cost(s, item.id, 900_000 if item.name == "1幢加装电梯" else item.cost_fen,
                                        user=world.committee, now=world.now)
    settlement_svc.finalise_settlement(s, user=world.committee, now=world.now)
    world.db.session.commit()
    return plan, s


def test_settlement_line_refund_top_up_and_nothing(client, resident_login, world, db, clock):
    resident_login(client, world.u101)
    resp = client.get("/api/r/settlement")
    assert resp.status_code == 404
    assert (resp.get_json()["code"], resp.get_json()["message"]) == ("no_settlement", "本小区的工程还没有决算定稿")
    plan, s = _finalised(world)
    data = client.get("/api/r/settlement").get_json()
    assert data == {"plan": {"id": plan.id, "number": 1, "title": "幸福小区综合改造方案"},
                    "finalised_at": "2026-09-01T02:00:00+00:00", "planned_owed": "5400.00", "final_owed": "4980.00",
                    "paid": "5400.00", "difference": "-420.00", "kind": "refund", "kind_label": "退还",
                    "amount": "420.00", "state": "open", "state_label": "待退还", "closed_at": None}
    due = settlement_svc.dues_of(s)[0]
    settlement_svc.close_due(due, method="bank", paid_on=world.now.date(), user=world.committee,
                             now=world.later(hours=1))
    db.session.commit()
    data = client.get("/api/r/settlement").get_json()
    assert (data["state"], data["state_label"], data["closed_at"]) == ("closed", "已退还", "2026-09-01T03:00:00+00:00")
    resident_login(client, world.u102)
    data = client.get("/api/r/settlement").get_json()
    assert (data["final_owed"], data["paid"], data["difference"], data["kind"], data["amount"], data["state_label"]
            ) == ("3320.00", "3000.00", "320.00", "top_up", "320.00", "待补缴")
    resident_login(client, world.u201)
    data = client.get("/api/r/settlement").get_json()
    assert (data["final_owed"], data["difference"], data["kind"], data["kind_label"], data["amount"], data["state"],
            data["state_label"]) == ("2000.00", "0.00", None, "无需退补", "0.00", "none", "已结清，无需退补")


def test_pledge_sign_in_the_windows_last_minute_and_not_at_its_close(client, resident_login, world, db, clock):
    closes = world.later(days=2)
    plan = world.plan(pledge_closes_at=closes)
    resident_login(client, world.u102)
    data = client.get("/api/r/pledges").get_json()
    assert data == {"current": {"plan": {"id": plan.id, "number": 1, "title": "幸福小区综合改造方案"},
                                "owed": "3600.00", "window_open": True, "opens_at": "2026-09-01T02:00:00+00:00",
                                "closes_at": "2026-09-03T02:00:00+00:00", "locked": False, "pledge": None},
                    "pledges": []}
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": False})
    assert resp.status_code == 422 and resp.get_json()["errors"] == {"confirm": ["未确认"]}
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True, "amount": "1"})
    assert resp.status_code == 422 and resp.get_json()["errors"]["json"] == {"amount": ["Unknown field."]}
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id + 1000, "confirm": True})
    assert resp.status_code == 409 and resp.get_json()["code"] == "plan_not_current"
    clock.now = closes - timedelta(minutes=1)
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert resp.status_code == 201, resp.get_json()
    signed = resp.get_json()
    pledge = db.session.execute(sa.select(Pledge)).scalar_one()
    assert signed == {"id": pledge.id, "plan": {"id": plan.id, "number": 1, "title": "幸福小区综合改造方案"},
                      "amount": "3600.00", "signed_by": world.owner(world.u102).name,
                      "signed_at": "2026-09-03T01:59:00+00:00", "active": True, "withdrawn_at": None}
    assert pledge.amount_fen == 360_000
    assert [e.data for e in _events(db, "plans.pledge_signed")] == [
        {"plan_version": plan.id, "unit": "1幢-102", "amount_fen": 360_000}]
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert resp.status_code == 409 and resp.get_json()["code"] == "pledge_exists"
    # the window's close: another unit cannot sign any more
    resident_login(client, world.u201)
    clock.now = closes
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert resp.status_code == 409
    assert (resp.get_json()["code"], resp.get_json()["message"]) == ("pledge_window_closed", "现在不在出资承诺签署期内")
    assert client.get("/api/r/pledges").get_json()["current"]["window_open"] is False


def test_pledge_withdraw_rules(client, resident_login, world, db, clock):
    closes = world.later(days=2)
    plan = world.plan(pledge_closes_at=closes)
    p101 = funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.now)
    p102 = funding_svc.sign_pledge(plan, world.u102, world.owner(world.u102), now=world.now)
    db.session.commit()
    resident_login(client, world.u101)
    # another unit's pledge: as if it did not exist
    resp = client.post(f"/api/r/pledges/{p102.id}/withdraw")
    assert resp.status_code == 404 and resp.get_json()["code"] == "no_pledge"
    clock.now = closes - timedelta(minutes=1)
    resp = client.post(f"/api/r/pledges/{p101.id}/withdraw")
    assert resp.status_code == 200
    assert (resp.get_json()["active"], resp.get_json()["withdrawn_at"]) == (False, "2026-09-03T01:59:00+00:00")
    assert [e.data for e in _events(db, "plans.pledge_withdrawn")] == [{"plan_version": plan.id, "unit": "1幢-101"}]
    resp = client.post(f"/api/r/pledges/{p101.id}/withdraw")
    assert resp.status_code == 409 and resp.get_json()["message"] == "该承诺书已撤回"
    data = client.get("/api/r/pledges").get_json()
    assert [(p["id"], p["amount"], p["active"]) for p in data["pledges"]] == [(p101.id, "5400.00", False)]
    # once the start application is submitted the money is fixed: no withdrawal
    db.session.add(StartApplication(estate_id=world.estate.id, plan_version_id=plan.id, status="submitted",
                                    submitted_at=world.now, submitted_by_id=world.committee.id, checklist=[]))
    db.session.commit()
    resident_login(client, world.u102)
    resp = client.post(f"/api/r/pledges/{p102.id}/withdraw")
    assert resp.status_code == 409
    assert (resp.get_json()["code"], resp.get_json()["message"]) == (
        "start_submitted", "启动申请已提交，承诺书不能再撤回")
    assert client.get("/api/r/pledges").get_json()["current"]["locked"] is True


def test_a_resident_of_another_estate_sees_only_their_own(client, resident_login, world, db, other, clock):
    plan = world.plan(pledge_closes_at=world.later(days=2))
    pledge = funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.now)
    db.session.commit()
    (unit,) = other.buildings[0].units
    resident_login(client, unit)
    assert client.get("/api/r/statement").status_code == 404
    assert client.get("/api/r/pledges").get_json() == {"current": None, "pledges": []}
    resp = client.post(f"/api/r/pledges/{pledge.id}/withdraw")
    assert resp.status_code == 404
    resp = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert resp.status_code == 404 and resp.get_json()["code"] == "no_plan"
    assert "pledges" not in client.get("/api/r/home").get_json()["sections"]


def test_home_pledges_section(client, resident_login, world, db, clock):
    plan = world.plan(pledge_closes_at=world.later(days=2))
    funding_svc.sign_pledge(plan, world.u201, world.owner(world.u201), now=world.now)
    db.session.commit()
    resident_login(client, world.u201)
    section = client.get("/api/r/home").get_json()["sections"]["pledges"]
    assert (section["owed"], section["window_open"], section["pledge"]["amount"], section["pledge"]["active"]) == (
        "2000.00", True, "2000.00", True)
