"""The JSON API: ballot by token, identity, cast, receipt; committee endpoints; one error shape."""

from __future__ import annotations

from residents_app.rounds.models import CurrentBallot


def test_ballot_by_token_identity_cast_and_receipt(client, db, live_round, link_for, units):
    rnd = live_round(item_menu=[{"key": "roof", "label": "屋面防水"}])
    token = link_for()["1幢-102"]
    owner = units["1幢-102"].owners[0]
    before = client.get(f"/api/ballot/{token}").get_json()
    assert before == {"unit": {"label": "1幢-102"}, "identified": False, "rounds": []}
    no_id = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": "agree"})
    assert no_id.status_code == 401
    assert no_id.get_json() == {"code": "identity_required", "status": 401, "message": "请先确认业主身份",
                                "errors": {}}
    wrong = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": "0000"})
    assert wrong.status_code == 422 and wrong.get_json()["code"] == "identity_mismatch"
    unknown = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": "1234",
                                                                 "admin": True})
    assert unknown.status_code == 422 and "admin" in unknown.get_json()["errors"]["json"]
    ok = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert ok.get_json() == {"unit": "1幢-102", "owner_name": owner.name}
    info = client.get(f"/api/ballot/{token}").get_json()
    assert info["identified"] is True and info["unit"]["area_m2"] == "100.00"
    assert [(r["id"], r["my_ballot"]) for r in info["rounds"]] == [(rnd.id, None)]
    assert info["rounds"][0]["rule"]["label"] == "双三分之二（鹿城规则）"
    bad = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": "yes"})
    assert bad.status_code == 422 and bad.get_json()["errors"] == {"choice": "“yes”不是本次表决的选项"}
    cast = client.post(f"/api/ballot/{token}/cast", json={"round_id": rnd.id, "choice": "agree", "items": ["roof"]})
    assert cast.status_code == 201
    body = cast.get_json()
    assert body["choice"] == "agree" and len(body["receipt_code"]) == 20
    receipt = client.get(f"/api/ballot/receipt/{body['receipt_code']}").get_json()
    assert (receipt["counted"], receipt["choice_label"], receipt["status"]) == (True, "同意改造", "counted")
    assert db.session.get(CurrentBallot, (rnd.id, units["1幢-102"].id)).ballot_id == body["ballot_id"]
    gone = client.get("/api/ballot/not-a-token")
    assert gone.status_code == 404 and gone.get_json()["code"] == "link_invalid"


def test_committee_api_rounds_roll_tally_links(client, db, login_as, committee, estate, units, live_round):
    login_as(client, committee)
    created = client.post("/api/rounds", json={
        "estate_id": estate.id, "kind": "general", "matter_item": 9, "title": "是否更换门禁",
        "opens_at": "2026-12-01T09:00:00+08:00", "closes_at": "2026-12-08T09:00:00+08:00",
        "rule_preset": "civil_code_278_ordinary"})
    assert created.status_code == 201
    assert created.get_json()["opens_at"] == "2026-12-01T01:00:00+00:00"
    naive = client.post("/api/rounds", json={"estate_id": estate.id, "kind": "general", "title": "x",
                                             "opens_at": "2026-12-01T09:00:00", "closes_at": "2026-12-08T09:00:00"})
    assert naive.status_code == 422 and set(naive.get_json()["errors"]["json"]) == {"opens_at", "closes_at"}
    extra = client.post("/api/rounds", json={"estate_id": estate.id, "kind": "general", "title": "x", "x": 1,
                                             "opens_at": "2026-12-01T09:00:00Z", "closes_at": "2026-12-08T09:00:00Z"})
    assert extra.status_code == 422 and "x" in extra.get_json()["errors"]["json"]
    rnd = live_round()
    listing = client.get(f"/api/rounds?estate_id={estate.id}").get_json()
    assert [r["title"] for r in listing] == ["是否同意改造", "是否更换门禁"]
    roll = client.get(f"/api/rounds/{rnd.id}/roll").get_json()
    assert [(r["label"], r["area_m2"]) for r in roll][:2] == [("1幢-101", "100.00"), ("1幢-102", "100.00")]
    tally = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert tally["conditions"][0]["margin"] == "266.67" and tally["margin_count"] == 4
    assert tally["non_voters"] == {"1幢": ["101", "102", "103"], "2幢": ["201", "202"]}
    links = client.post(f"/api/rounds/estates/{estate.id}/links", json={}).get_json()
    assert len(links["links"]) == 5 and links["links"][0]["url"].startswith("http://localhost/v/")
    again = client.post(f"/api/rounds/estates/{estate.id}/links", json={"building_id": None})
    assert again.get_json() == {"links": []}
    assert client.get("/api/openapi.json").get_json()["paths"]["/api/ballot/{token}/cast"]["post"]
