"""The resident's whole journey through the JSON API only, as a WeChat mini-program walks it (issue 17 "Must show"):
WeChat login with a fake wx.login code, the identity check on the unit's QR link, the binding, a later visit that
needs no identity check, the home, a vote and its receipt, an objection to the roll's publicity, the statement, a
pledge, a complaint answered by the committee. The committee's side is set up through the services; the WeChat
endpoints are a local fake that follows jscode2session's documented shapes."""

from __future__ import annotations

import importlib
from datetime import date

import pytest
import sqlalchemy as sa

from residents_app.publicity import services as publicity
from residents_app.rounds import links as links_svc
from residents_app.rounds import services as rounds
from residents_app.works.construction import complaints
from residents_app.works.construction.models import Complaint
from tests.auth.test_wechat import fake_wechat, wechat_app  # noqa: F401  (fixtures: the local WeChat fake)

RESIDENT_API = ("residents_app.rounds.resident_api", "residents_app.publicity.resident_api"
)


@pytest.fixture
def all_clocks(clock, monkeypatch):
    """Part A's resident API modules see the same fixed clock as part B's (clock.now)."""
    for name in RESIDENT_API:
        monkeypatch.setattr(importlib.import_module(name), "utcnow", lambda: clock.now)
    return clock


def test_a_resident_binds_wechat_votes_objects_reads_the_statement_pledges_and_complains(
        app, client, world, db, all_clocks, wechat_app):  # noqa: F811
    wechat = wechat_app
    clock = all_clocks
    plan = world.plan(pledge_closes_at=world.later(days=7))
    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="willingness", title="是否同意改造", opens_at=world.now, closes_at=world.later(days=14)), world.now,
        world.committee)
    rounds.open_round(rnd.id, world.now, world.committee)
    roll = publicity.post_publicity(world.estate, subject_type="round_roll", subject_id=rnd.id, title="表决名册公示",
                                    notice_text="本次表决的房屋名册", posted_on=date(2026, 9, 1),
                                    actor=f"user:{world.committee.id}:t", now=world.now)
    tokens = {u.label: t for u, t in links_svc.issue_links(world.estate.id, world.now)}
    db.session.commit()
    owner = world.owner(world.u102)

    # 1. WeChat login: this openid is bound to nothing yet, so the mini-program asks for the identity check.
    first = client.post("/api/auth/wechat/login", json={"code": wechat.issue_code("o-li")})
    assert first.get_json() == {"signed_in": None, "units": [], "next": "identity"}
    assert client.get("/api/r/home").status_code == 401
    ok = client.post(f"/api/ballot/{tokens['1幢-102']}/identity",
                     json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert ok.status_code == 200, ok.get_json()
    bound = client.post("/api/auth/wechat/bind", json={})
    assert [u["label"] for u in bound.get_json()["units"]] == ["1幢-102"]

    # 2. A later visit (a new mini-program session): the bound WeChat signs in without the identity check.
    phone = app.test_client()
    later = phone.post("/api/auth/wechat/login", json={"code": wechat.issue_code("o-li")}).get_json()
    assert (later["next"], later["signed_in"]["label"]) == ("home", "1幢-102")
    home = phone.get("/api/r/home").get_json()
    assert (home["unit"]["label"], home["unit"]["area_m2"], home["owner_name"]) == ("1幢-102", "40.00", owner.name)
    assert home["sections"]["open_rounds"] == [{"id": rnd.id, "title": "是否同意改造",
                                                "closes_at": "2026-09-15T10:00:00+08:00", "my_choice": None}]

    # 3. Vote, then check the receipt: recorded while the round is open.
    cast = phone.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree"})
    assert cast.status_code == 201, cast.get_json()
    receipt = phone.get(f"/api/r/receipts/{cast.get_json()['receipt_code']}").get_json()
    assert (receipt["state"], receipt["choice_label"]) == ("recorded_round_open", "同意改造")
    assert phone.get(f"/api/r/rounds/{rnd.id}").get_json()["my_ballot"]["choice"] == "agree"

    # 4. Object to the roll's publicity (posted today, 5 working days).
    assert [n["id"] for n in phone.get("/api/r/board").get_json()] == [roll.id]
    objection = phone.post(f"/api/r/publicities/{roll.id}/objections", json={"text": "本户面积应为40.50平方米"})
    assert objection.status_code == 201, objection.get_json()
    assert [(o["publicity_title"], o["status_label"]) for o in phone.get("/api/r/objections").get_json()] == [
        ("表决名册公示", "待处理")]

    # 5. The statement: 1幢-102 (40 m²) pays basic 200.00 + improvement 600.00 + 1幢's lift 2,800.00.
    statement = phone.get("/api/r/statement").get_json()
    assert (statement["owed"], statement["paid"], statement["balance"]) == ("3600.00", "0.00", "3600.00")

    # 6. Pledge that amount.
    pledged = phone.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert (pledged.status_code, pledged.get_json()["amount"]) == (201, "3600.00")

    # 7. The street office approves the start; during the works a complaint, answered by the committee two hours
    #    later; the resident reads the reply.
    world.approve_start(plan)
    clock.now = world.later(minutes=30)
    filed = phone.post("/api/r/complaints", data={"kind": "complaint", "body": "楼道堆放建材影响通行"},
                       content_type="multipart/form-data")
    assert filed.status_code == 201, filed.get_json()
    number = filed.get_json()["number"]
    assert (number, filed.get_json()["due_on"]) == ("TS2026-0001", "2026-09-08")
    complaint = db.session.execute(sa.select(Complaint)).scalar_one()
    complaints.answer_complaint(complaint, reply="已通知施工单位当天清理", user=world.committee,
                                now=world.later(hours=2))
    db.session.commit()
    mine = phone.get(f"/api/r/complaints/{number}").get_json()
    assert (mine["state_label"], mine["reply"]) == ("已答复", "已通知施工单位当天清理")

    sections = phone.get("/api/r/home").get_json()["sections"]
    assert sections["open_rounds"][0]["my_choice"] == "agree"
    assert sections["pledges"]["pledge"]["amount"] == "3600.00"
    assert (sections["complaints"]["open"], sections["complaints"]["total"]) == (0, 1)
