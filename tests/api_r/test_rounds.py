"""/api/r/rounds, /api/r/rounds/<id>, cast, /api/r/receipts/<code>, the home section open_rounds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from residents_app.rounds import ballots
from residents_app.rounds import services as round_svc
from residents_app.rounds.models import Ballot, CurrentBallot
from tests.api_r.conftest import T0

RESIDENT_ROUTES = [("get", "/api/r/me"), ("get", "/api/r/home"), ("get", "/api/r/rounds"),
                   ("get", "/api/r/rounds/1"), ("post", "/api/r/rounds/1/cast"),
                   ("get", "/api/r/receipts/0123456789abcdef0123"), ("get", "/api/r/board"),
                   ("get", "/api/r/board/1"), ("post", "/api/r/publicities/1/objections"),
                   ("get", "/api/r/objections"), ("post", "/api/r/objections/1/withdraw"), ("get", "/api/r/plans"),
                   ("get", "/api/r/plans/1"), ("get", "/api/r/plans/1/diff")]


@pytest.mark.parametrize(("method", "path"), RESIDENT_ROUTES)
def test_no_session_is_401_identity_required(client, db, method, path):
    resp = getattr(client, method)(path, json={"choice": "agree", "text": "x"} if method == "post" else None)
    assert resp.status_code == 401
    assert resp.get_json() == {"code": "identity_required", "status": 401, "errors": {},
                               "message": "请先扫描本户二维码并确认业主身份，或用已绑定的微信登录"}


def _vote(rnd, unit, choice, now, items=None):
    ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, now, items=items)


def test_list_shows_open_rounds_with_my_ballot_then_closed_with_outcome(client, db, clock, estates, make_round,
                                                                        identify):
    u = estates.units
    # closed 2026-09-15: all three agree -> passed; closed 2026-09-10: only 201 votes -> not passed
    early = make_round(title="更换门禁", opens_at=T0 - timedelta(days=20), days=1)
    late = make_round(title="屋面防水", opens_at=T0 - timedelta(days=15), days=1)
    for unit in u.values():
        _vote(late, unit, "agree", T0 - timedelta(days=15))
    _vote(early, u["2幢-201"], "disagree", T0 - timedelta(days=20))
    assert round_svc.close_round(early.id, T0 - timedelta(days=19)) is True
    assert round_svc.close_round(late.id, T0 - timedelta(days=14)) is True
    soon = make_round(title="加装电梯", days=3)
    later = make_round(title="外墙改造", days=10)
    make_round(title="草稿不可见", open_it=False)
    make_round(estate=estates.other, title="乙小区的表决")
    _vote(later, u["1幢-101"], "disagree", T0)
    db.session.commit()
    identify(client, u["1幢-101"])
    resp = client.get("/api/r/rounds")
    assert resp.status_code == 200
    body = resp.get_json()
    assert [(r["id"], r["title"], r["status"], r["status_label"], r["accepts_ballots"], r["outcome_label"])
            for r in body] == [
        (soon.id, "加装电梯", "open", "投票中", True, None),
        (later.id, "外墙改造", "open", "投票中", True, None),
        (late.id, "屋面防水", "closed", "已结束", False, "结果：通过"),
        (early.id, "更换门禁", "closed", "已结束", False, "结果：未通过"),
    ]
    assert [(r["my_ballot"] or {}).get("choice") for r in body] == [None, "disagree", "agree", None]
    mine = body[1]["my_ballot"]
    receipt = db.session.get(CurrentBallot, (later.id, u["1幢-101"].id))
    assert mine == {"choice": "disagree", "choice_label": "不同意改造", "items": [], "channel": "online",
                    "cast_at": "2026-09-29T02:00:00+00:00",
                    "receipt_code": db.session.get(Ballot, receipt.ballot_id).receipt_code}
    assert (body[0]["opens_at"], body[0]["closes_at"]) == ("2026-09-29T02:00:00+00:00", "2026-10-02T02:00:00+00:00")
    assert {r["kind_label"] for r in body} == {"改造意愿征求（改不改）"} and all(r["on_roll"] for r in body)


def test_detail_question_rule_menu_roll_and_live_results(client, db, clock, estates, make_round, identify):
    u = estates.units
    rnd = make_round(title="是否同意改造", description="拟改造屋面和外墙",
                     item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"}])
    _vote(rnd, u["1幢-102"], "agree", T0, items=["roof"])
    db.session.commit()
    identify(client, u["1幢-101"])
    body = client.get(f"/api/r/rounds/{rnd.id}").get_json()
    assert body["description"] == "拟改造屋面和外墙"
    assert body["options"] == [{"key": "agree", "label": "同意改造"}, {"key": "disagree", "label": "不同意改造"},
                               {"key": "abstain", "label": "弃权"}]
    assert body["item_menu"] == [{"key": "roof", "label": "屋面防水", "category": "基础"}]
    assert body["rule"]["label"] == "双三分之二（鹿城规则）" and body["rule"]["counting"] == "按户计"
    assert body["rule"]["matter"].startswith("本事项属于")
    assert (body["on_roll"], body["my_ballot"], body["results_visibility"]) == (True, None, "live")
    assert body["results"] == {"final": False, "passed": None, "label": "实时统计（表决尚未结束）", "figures": {
        "total_count": 3, "total_area": "260.00", "voted_count": 1, "voted_area": "100.00",
        "agree_count": 1, "agree_area": "100.00"}}


def test_hidden_results_until_the_close(client, db, clock, estates, make_round, identify):
    u = estates.units
    rnd = make_round(results_visibility="hidden", days=1)
    _vote(rnd, u["1幢-102"], "agree", T0)
    _vote(rnd, u["2幢-201"], "agree", T0)
    db.session.commit()
    identify(client, u["1幢-101"])
    assert client.get(f"/api/r/rounds/{rnd.id}").get_json()["results"] is None
    assert round_svc.close_round(rnd.id, T0 + timedelta(days=1)) is True
    db.session.commit()
    clock.now = T0 + timedelta(days=1)
    body = client.get(f"/api/r/rounds/{rnd.id}").get_json()
    # 2 of 3 households but 160.00 of 260.00 m² took part: less than two thirds of the area
    assert (body["status"], body["outcome_label"]) == ("closed", "结果：未通过")
    assert body["results"] == {"final": True, "passed": False, "label": "结果：未通过", "figures": {
        "total_count": 3, "total_area": "260.00", "voted_count": 2, "voted_area": "160.00",
        "agree_count": 2, "agree_area": "160.00"}}


def test_another_estates_round_a_draft_and_an_unknown_id_are_404(client, db, clock, estates, make_round, identify):
    theirs = make_round(estate=estates.other)
    draft = make_round(open_it=False)
    identify(client, estates.units["1幢-101"])
    for round_id in (theirs.id, draft.id, 999_999):
        for resp in (client.get(f"/api/r/rounds/{round_id}"),
                     client.post(f"/api/r/rounds/{round_id}/cast", json={"choice": "agree"})):
            assert resp.status_code == 404
            assert resp.get_json() == {"code": "round_not_found", "status": 404, "message": "找不到该表决",
                                       "errors": {}}
    assert db.session.query(Ballot).count() == 0


def test_cast_change_receipt_and_home(client, db, clock, estates, make_round, identify):
    u = estates.units
    rnd = make_round(title="加装电梯", item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"}])
    identify(client, u["1幢-101"])
    home = client.get("/api/r/home").get_json()
    assert home["sections"]["open_rounds"] == [
        {"id": rnd.id, "title": "加装电梯", "closes_at": "2026-10-13T10:00:00+08:00", "my_choice": None}]
    bad = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "yes"})
    assert (bad.status_code, bad.get_json()) == (422, {"code": "invalid_choice", "status": 422,
                                                      "message": "请选择一个有效的选项",
                                                      "errors": {"choice": "“yes”不是本次表决的选项"}})
    items_bad = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree", "items": ["lift"]})
    assert (items_bad.status_code, items_bad.get_json()["errors"]) == (422, {"items": "未知的改造项目：lift"})
    extra = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree", "round_id": rnd.id})
    assert extra.status_code == 422 and list(extra.get_json()["errors"]["json"]) == ["round_id"]
    first = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree", "items": ["roof"]})
    assert first.status_code == 201
    body = first.get_json()
    ballot = db.session.get(Ballot, body["ballot_id"])
    assert body == {"ballot_id": ballot.id, "round_id": rnd.id, "choice": "agree", "channel": "online",
                    "cast_at": "2026-09-29T02:00:00+00:00", "receipt_code": ballot.receipt_code}
    assert (ballot.unit_id, ballot.items, ballot.status) == (u["1幢-101"].id, ["roof"], "counted")
    assert len(ballot.receipt_code) == 20
    clock.now = T0 + timedelta(hours=1)
    second = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "disagree"}).get_json()
    assert second["receipt_code"] != body["receipt_code"]
    assert db.session.get(CurrentBallot, (rnd.id, u["1幢-101"].id)).ballot_id == second["ballot_id"]
    detail = client.get(f"/api/r/rounds/{rnd.id}").get_json()
    assert detail["my_ballot"] == {"choice": "disagree", "choice_label": "不同意改造", "items": [],
                                   "channel": "online", "cast_at": "2026-09-29T03:00:00+00:00",
                                   "receipt_code": second["receipt_code"]}
    assert client.get("/api/r/home").get_json()["sections"]["open_rounds"][0]["my_choice"] == "disagree"
    # the receipt: recorded while the round is open; the first one is superseded once it is closed
    r = client.get(f"/api/r/receipts/{second['receipt_code']}").get_json()
    assert (r["state"], r["headline"], r["round_title"], r["estate_name"], r["choice_label"], r["round_closed"]) == (
        "recorded_round_open", "您的投票已记入审计日志", "加装电梯", estates.mine.name, "不同意改造", False)
    assert round_svc.close_round(rnd.id, T0 + timedelta(days=14)) is True
    db.session.commit()
    clock.now = T0 + timedelta(days=14)
    old = client.get(f"/api/r/receipts/{body['receipt_code'].upper()}").get_json()
    assert (old["state"], old["headline"]) == ("superseded", "该次投票已被本户后来的投票替代")
    now_counted = client.get(f"/api/r/receipts/{second['receipt_code']}").get_json()
    assert (now_counted["state"], now_counted["round_closed"]) == ("counted_as_cast", True)
    assert "open_rounds" not in client.get("/api/r/home").get_json()["sections"]


def test_cast_on_a_closed_round_or_after_the_close_is_409(client, db, clock, estates, make_round, identify):
    closed = make_round(opens_at=T0 - timedelta(days=3), days=1)
    assert round_svc.close_round(closed.id, T0 - timedelta(days=2)) is True
    due = make_round(days=1)  # still "open" until the scheduler closes it
    db.session.commit()
    identify(client, estates.units["1幢-101"])
    clock.now = T0 + timedelta(days=1)  # exactly closes_at: no longer accepted
    for rnd in (closed, due):
        resp = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree"})
        assert resp.status_code == 409
        assert resp.get_json() == {"code": "vote_window_closed", "status": 409,
                                   "message": "投票已截止，不能再投票或修改", "errors": {}}
    clock.now = T0 + timedelta(days=1) - timedelta(seconds=1)
    assert client.post(f"/api/r/rounds/{due.id}/cast", json={"choice": "agree"}).status_code == 201


def test_a_unit_not_on_the_roll_sees_the_round_but_cannot_vote(client, db, clock, estates, make_round, identify):
    rnd = make_round(title="2幢加装电梯", scope_building_ids=[estates.b2.id])
    identify(client, estates.units["1幢-101"])
    detail = client.get(f"/api/r/rounds/{rnd.id}").get_json()
    assert (detail["on_roll"], detail["results"]["figures"]["total_count"]) == (False, 1)
    resp = client.post(f"/api/r/rounds/{rnd.id}/cast", json={"choice": "agree"})
    assert resp.status_code == 404
    assert resp.get_json() == {"code": "unit_not_in_roll", "status": 404, "message": "本户不在该表决的名册范围内",
                               "errors": {}}
    assert "open_rounds" not in client.get("/api/r/home").get_json()["sections"]


def test_receipts_of_another_estate_or_malformed(client, db, clock, estates, make_round, identify):
    theirs = make_round(estate=estates.other)
    ballot = ballots.cast_ballot(theirs.id, estates.other_unit.id, estates.other_unit.owners[0].id, "agree", T0)
    db.session.commit()
    identify(client, estates.units["1幢-101"])
    resp = client.get(f"/api/r/receipts/{ballot.receipt_code}")
    assert (resp.status_code, resp.get_json()["code"]) == (404, "receipt_not_found")
    assert resp.get_json()["message"] == "没有找到该回执码对应的投票记录，请核对回执码"
    unknown = client.get("/api/r/receipts/0123456789abcdef0123")
    assert (unknown.status_code, unknown.get_json()["code"]) == (404, "receipt_not_found")
    bad = client.get("/api/r/receipts/xyz")
    assert bad.status_code == 404
    assert bad.get_json() == {"code": "receipt_not_found", "status": 404, "errors": {"code": "回执码格式不正确"},
                              "message": "回执码应为 20 位，由数字 0-9 和字母 a-f 组成，请核对后重新输入"}
