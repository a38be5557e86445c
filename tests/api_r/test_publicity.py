"""/api/r/board, /api/r/board/<id>, objections (file, list, withdraw), the home section notices."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from residents_app.publicity import services as pub_svc
from residents_app.publicity.models import Objection
from tests.api_r.conftest import T0

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
ENDS = datetime(2026, 10, 12, 16, 0, tzinfo=UTC)  # 2026-10-12 24:00 Beijing: 5 working days after 09-29


def post(estate, *, posted_on=date(2026, 9, 29), title="困难群众名单公示", subject_type="hardship_list",
         subject_id=None):
    """A notice entered on its posting day (10:00 Beijing), or today (T0) for one posted ahead."""
    entered = min(T0, datetime(posted_on.year, posted_on.month, posted_on.day, 2, 0, tzinfo=UTC))
    return pub_svc.post_publicity(estate, subject_type=subject_type, subject_id=subject_id or estate.id,
                                  title=title, notice_text="经业委会审核，以下住户列入困难群众名单。",
                                  posted_on=posted_on, working_days=5, actor="user:1:t", now=entered)


def test_board_newest_first_with_window_documents_and_detail(client, db, clock, estates, make_round, identify):
    estates.units["2幢-201"].is_hardship = True
    roll_round = make_round(title="加装电梯")
    older = post(estates.mine, posted_on=date(2026, 9, 25), title="表决名册公示", subject_type="round_roll",
                 subject_id=roll_round.id)
    current = post(estates.mine)
    doc = pub_svc.add_document(current, "名单.pdf", PDF, actor="user:1:t", now=T0)
    ahead = post(estates.mine, posted_on=date(2026, 10, 9), title="尚未张贴", subject_type="round_roll",
                 subject_id=make_round(title="外墙").id)
    theirs = post(estates.other, title="乙小区公示")
    db.session.commit()
    identify(client, estates.units["1幢-101"])
    board = client.get("/api/r/board").get_json()
    assert [(n["id"], n["title"], n["status"], n["status_label"], n["posted_on"], n["objections_open"])
            for n in board] == [(current.id, "困难群众名单公示", "posted", "公示中", "2026-09-29", True),
                                (older.id, "表决名册公示", "posted", "公示中", "2026-09-25", True)]
    first = board[0]
    assert (first["last_day"], first["working_days"], first["ends_at"], first["period"]) == (
        "2026-10-12", 5, "2026-10-12T16:00:00+00:00", "公示期：2026-09-30 至 2026-10-12（5个工作日）")
    assert first["documents"] == [{"filename": "名单.pdf", "content_type": "application/pdf",
                                   "size_bytes": len(PDF),
                                   "url": f"http://localhost/p/{estates.mine.code}/documents/{doc.token}"}]
    download = client.get(first["documents"][0]["url"].removeprefix("http://localhost"))
    assert (download.status_code, download.data) == (200, PDF)
    detail = client.get(f"/api/r/board/{current.id}").get_json()
    assert (detail["notice_text"], detail["unit_list_title"], detail["unit_labels"], detail["changes"]) == (
        "经业委会审核，以下住户列入困难群众名单。", "困难群众房号名单", ["2幢-201"], [])
    assert detail["subject_label"] == "困难群众名单" and detail["documents"] == first["documents"]
    roll = client.get(f"/api/r/board/{older.id}").get_json()
    assert (roll["unit_labels"], roll["subject_type"]) == (
        ["1幢-101（100.00 m²）", "1幢-102（100.00 m²）", "2幢-201（60.00 m²）"], "round_roll")
    for pid in (theirs.id, 999_999):
        resp = client.get(f"/api/r/board/{pid}")
        assert (resp.status_code, resp.get_json()) == (404, {"code": "publicity_not_found", "status": 404,
                                                            "message": "找不到该公示", "errors": {}})
    assert client.get(f"/api/r/board/{ahead.id}").status_code == 404  # posted ahead: not on the board yet
    home = client.get("/api/r/home").get_json()["sections"]["notices"]
    assert home == [{"id": current.id, "title": "困难群众名单公示", "last_day": "2026-10-12",
                     "ends_at": "2026-10-13T00:00:00+08:00"},
                    {"id": older.id, "title": "表决名册公示", "last_day": "2026-10-09",
                     "ends_at": "2026-10-10T00:00:00+08:00"}]  # 09-28, 29, 30, (holidays) 10-08, 09


def test_objection_during_the_window_answered_withdrawn_and_closed(client, db, clock, estates, identify):
    pub = post(estates.mine)
    theirs = post(estates.other)
    db.session.commit()
    owner = identify(client, estates.units["1幢-101"])
    empty = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": ""})
    assert empty.status_code == 422 and list(empty.get_json()["errors"]["json"]) == ["text"]
    extra = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "x", "photo": "a"})
    assert extra.status_code == 422 and list(extra.get_json()["errors"]["json"]) == ["photo"]
    clock.now = T0 + timedelta(hours=1)
    resp = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "  名单漏了3幢的困难户  "})
    assert resp.status_code == 201
    obj = db.session.get(Objection, resp.get_json()["id"])
    assert (obj.unit_id, obj.owner_id, obj.text) == (estates.units["1幢-101"].id, owner.id, "名单漏了3幢的困难户")
    assert resp.get_json() == {"id": obj.id, "publicity_id": pub.id, "publicity_title": "困难群众名单公示",
                               "text": "名单漏了3幢的困难户", "raised_at": "2026-09-29T03:00:00+00:00",
                               "status": "open", "status_label": "待处理", "answer": "", "resolved_at": None,
                               "can_withdraw": True}
    second = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "另一条"}).get_json()
    pub_svc.mediate(obj, outcome="answered", notes="电话沟通", answer="3幢不在本小区范围内。", actor="user:1:t",
                    now=T0 + timedelta(days=1))
    db.session.commit()
    withdrawn = client.post(f"/api/r/objections/{second['id']}/withdraw")
    assert (withdrawn.status_code, withdrawn.get_json()["status"]) == (200, "withdrawn")
    again = client.post(f"/api/r/objections/{second['id']}/withdraw")
    assert (again.status_code, again.get_json()["code"]) == (409, "objection_resolved")
    mine = client.get("/api/r/objections").get_json()
    assert [(o["id"], o["status"], o["status_label"], o["answer"], o["resolved_at"], o["can_withdraw"])
            for o in mine] == [
        (second["id"], "withdrawn", "已撤回", "", "2026-09-29T03:00:00+00:00", False),
        (obj.id, "answered", "已答复", "3幢不在本小区范围内。", "2026-09-30T02:00:00+00:00", False)]
    # the last instant of the period is in, 24:00 of the last day is out
    clock.now = ENDS - timedelta(seconds=1)
    assert client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "最后一刻"}).status_code == 201
    clock.now = ENDS
    late = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "晚了"})
    assert (late.status_code, late.get_json()) == (409, {"code": "publicity_closed", "status": 409,
                                                        "message": "该公示已结束，不能再提出异议", "errors": {}})
    assert "notices" not in client.get("/api/r/home").get_json()["sections"]
    for pid in (theirs.id, 999_999):
        resp = client.post(f"/api/r/publicities/{pid}/objections", json={"text": "别的小区"})
        assert (resp.status_code, resp.get_json()["code"]) == (404, "publicity_not_found")
    other_unit_objection = Objection(publicity_id=pub.id, estate_id=pub.estate_id, unit_id=estates.units["1幢-102"].id,
                                     owner_id=estates.units["1幢-102"].owners[0].id, text="邻居", raised_at=T0)
    db.session.add(other_unit_objection)
    db.session.commit()
    resp = client.post(f"/api/r/objections/{other_unit_objection.id}/withdraw")
    assert (resp.status_code, resp.get_json()["code"]) == (404, "objection_not_found")
    assert len(client.get("/api/r/objections").get_json()) == 3


def test_objection_before_the_posting_day_is_409(client, db, clock, estates, identify):
    pub = post(estates.mine, posted_on=date(2026, 10, 9))
    db.session.commit()
    identify(client, estates.units["1幢-101"])
    resp = client.post(f"/api/r/publicities/{pub.id}/objections", json={"text": "太早"})
    assert (resp.status_code, resp.get_json()["code"], resp.get_json()["message"]) == (
        409, "publicity_not_started", "该公示尚未开始")
