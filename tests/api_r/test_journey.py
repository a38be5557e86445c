"""A resident's journey through the API only (part A): identity, home, vote, receipt, the board, an objection,
the plan and what changed. The committee's side is set up through the services."""

from __future__ import annotations

from datetime import date

from residents_app.plans import services as plan_svc
from residents_app.publicity import services as pub_svc
from tests.api_r.conftest import T0


def test_identity_home_vote_receipt_object_and_read_the_plan(client, db, clock, estates, make_round, tokens):
    c = estates.committee
    rnd = make_round(title="是否同意改造")
    pub = pub_svc.post_publicity(estates.mine, subject_type="round_roll", subject_id=rnd.id, title="表决名册公示",
                                 notice_text="本次表决的房屋名册", posted_on=date(2026, 9, 29),
                                 actor="user:1:t", now=T0)
    plan = plan_svc.create_plan(estates.mine, title="改造方案", user=c, now=T0)
    plan_svc.add_item(plan, name="外墙", category="basic", cost_fen=2_600_000, user=c, now=T0)
    plan_svc.publish_plan(plan, user=c, now=T0)
    db.session.commit()
    unit = estates.units["1幢-102"]
    owner = unit.owners[0]

    assert client.get("/api/r/home").status_code == 401
    ok = client.post(f"/api/ballot/{tokens['1幢-102']}/identity",
                     json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert ok.status_code == 200
    home = client.get("/api/r/home").get_json()
    assert home["unit"]["label"] == "1幢-102" and home["owner_name"] == owner.name
    assert home["sections"]["open_rounds"] == [{"id": rnd.id, "title": "是否同意改造",
                                                "closes_at": "2026-10-13T10:00:00+08:00", "my_choice": None}]
    assert home["sections"]["notices"] == [{"id": pub.id, "title": "表决名册公示", "last_day": "2026-10-12",
                                            "ends_at": "2026-10-13T00:00:00+08:00"}]

    cast = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree"})
    assert cast.status_code == 201
    code = cast.get_json()["receipt_code"]
    receipt = client.get(f"/api/r/receipts/{code}").get_json()
    assert (receipt["state"], receipt["choice_label"]) == ("recorded_round_open", "同意改造")
    assert client.get("/api/r/home").get_json()["sections"]["open_rounds"][0]["my_choice"] == "agree"

    board = client.get("/api/r/board").get_json()
    assert [n["id"] for n in board] == [pub.id]
    objection = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "本户面积登记有误"})
    assert objection.status_code == 201
    assert [(o["publicity_title"], o["status_label"]) for o in client.get("/api/r/objections").get_json()] == [
        ("表决名册公示", "待处理")]

    [brief] = client.get("/api/r/plans").get_json()
    detail = client.get(f"/api/r/plans/{brief['id']}").get_json()
    # basic: 10 % of 26,000.00 yuan is paid by the residents
    assert (detail["total_cost"], detail["resident_total"], detail["subsidy_total"]) == (
        "26000.00", "2600.00", "23400.00")
    diff = client.get(f"/api/r/plans/{brief['id']}/diff").get_json()
    assert (diff["previous_id"], diff["new_total"]) == (None, "26000.00")
