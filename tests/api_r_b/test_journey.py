"""A resident's journey through part B's API only, from the unit's QR token: the identity check
(/api/ballot/<token>/identity), me and home, the statement, a pledge signed, withdrawn and signed again (then
fixed by the start's approval), a complaint with a photo answered by the committee (the message queued), the
progress, the project, and the satisfaction survey answered."""

from __future__ import annotations

import io

import sqlalchemy as sa

from residents_app.auth.resident import hash_token, new_token
from residents_app.notify.models import OutboxMessage
from residents_app.registry.models import UnitLink
from residents_app.rounds import services as rounds
from residents_app.works.construction import complaints
from residents_app.works.construction.models import Complaint
from tests.works.construction.conftest import png_bytes


def test_resident_journey_through_the_api(client, world, db, clock):
    plan = world.plan(pledge_closes_at=world.later(days=7))
    opens = world.later(hours=-1)
    survey = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="satisfaction", title="改造满意度调查", opens_at=opens, closes_at=world.later(days=7)), opens)
    rounds.open_round(survey.id, opens)
    token = new_token()
    db.session.add(UnitLink(unit_id=world.u102.id, token_hash=hash_token(token)))
    db.session.commit()
    owner = world.owner(world.u102)

    assert client.get("/api/r/me").status_code == 401
    resp = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200, resp.get_json()
    me = client.get("/api/r/me").get_json()
    assert (me["unit"]["label"], me["unit"]["area_m2"], me["owner_name"]) == ("1幢-102", "40.00", owner.name)

    # 1幢-102 (40 m²): basic 200.00 + improvement 600.00 + the lift 2,800.00
    st = client.get("/api/r/statement").get_json()
    assert [ln["share"] for ln in st["lines"]] == ["0.00", "200.00", "600.00", "2800.00"]
    assert (st["owed"], st["paid"], st["balance"]) == ("3600.00", "0.00", "3600.00")

    signed = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert signed.status_code == 201, signed.get_json()
    assert signed.get_json()["amount"] == "3600.00"
    withdrawn = client.post(f"/api/r/pledges/{signed.get_json()['id']}/withdraw")
    assert (withdrawn.status_code, withdrawn.get_json()["active"]) == (200, False)
    clock.now = world.later(minutes=5)
    again = client.post("/api/r/pledges", json={"plan_id": plan.id, "confirm": True})
    assert again.status_code == 201
    mine = client.get("/api/r/pledges").get_json()["pledges"]
    assert [(p["active"], p["signed_at"]) for p in mine] == [(True, "2026-09-01T02:05:00+00:00"),
                                                            (False, "2026-09-01T02:00:00+00:00")]

    # the street office approves the start: the money is fixed from now on
    world.approve_start(plan)
    locked = client.post(f"/api/r/pledges/{again.get_json()['id']}/withdraw")
    assert (locked.status_code, locked.get_json()["code"]) == (409, "start_submitted")

    filed = client.post("/api/r/complaints", data={"kind": "complaint", "body": "楼道堆放建材",
                                                   "photos": [(io.BytesIO(png_bytes()), "a.png")]},
                        content_type="multipart/form-data")
    assert filed.status_code == 201
    number = filed.get_json()["number"]
    assert (number, filed.get_json()["due_on"], len(filed.get_json()["photos"])) == ("TS2026-0001", "2026-09-08", 1)
    c = db.session.execute(sa.select(Complaint)).scalar_one()
    complaints.answer_complaint(c, reply="已清理", user=world.committee, now=world.later(hours=2))
    db.session.commit()
    one = client.get(f"/api/r/complaints/{number}").get_json()
    assert (one["state"], one["state_label"], one["reply"], one["replied_at"]) == (
        "answered", "已答复", "已清理", "2026-09-01T04:00:00+00:00")
    (msg,) = db.session.execute(sa.select(OutboxMessage)).scalars()
    assert (msg.unit_id, msg.title) == (world.u102.id, "投诉已答复")

    assert client.get("/api/r/progress").get_json()["reports"] == []
    assert client.get("/api/r/project").get_json()["site_contact"] is None

    ev = client.get("/api/r/evaluation").get_json()
    assert (ev["evaluation"], ev["survey_to_answer"]["round_id"]) == (None, survey.id)
    answered = client.post("/api/r/evaluation/survey", json={"round_id": survey.id, "choice": "agree", "rating": 4})
    assert (answered.status_code, answered.get_json()["choice_label"], answered.get_json()["rating"]) == (
        201, "满意", 4)

    home = client.get("/api/r/home").get_json()["sections"]
    assert home["pledges"]["pledge"]["amount"] == "3600.00"
    assert home["complaints"] == {"open": 0, "total": 1, "latest": [
        {"number": "TS2026-0001", "kind_label": "投诉", "state_label": "已答复", "due_on": "2026-09-08",
         "overdue": False}]}
