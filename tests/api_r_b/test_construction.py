"""The resident API of the construction: complaints with photos (EXIF stripped), mine / public / one, progress
with photo URLs, the project (parties, the site contact, the change log for residents, the timeline), the home's
"complaints" section, other estates' residents seeing nothing of it, and the complaint-answered message."""

from __future__ import annotations

import io

import sqlalchemy as sa
from PIL import Image

from residents_app.audit.models import AuditEvent
from residents_app.notify.models import OutboxMessage
from residents_app.publicity.holidays import load_calendar
from residents_app.works.construction import changes, complaints, progress, services
from residents_app.works.construction.models import Complaint, ConstructionPhoto
from tests.works.construction.conftest import jpeg_with_exif, png_bytes

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _file(project, world, unit, body, kind="complaint", at=None):
    return complaints.file_complaint(project, unit_id=unit.id, owner_id=world.owner(unit).id, kind=kind, body=body,
                                     photos=[], calendar=load_calendar(), now=at or world.now)


def test_no_session_is_401(client, project):
    for method, path in (("get", "/api/r/complaints"), ("post", "/api/r/complaints"),
                         ("get", "/api/r/complaints/public"),
                         ("get", "/api/r/complaints/TS2026-0001"), ("get", "/api/r/progress"),
                         ("get", "/api/r/project"), ("get", "/api/r/photos/1")):
        resp = getattr(client, method)(path)
        assert (resp.status_code, resp.get_json()["code"]) == (401, "identity_required"), path


def test_file_a_complaint_with_a_photo_exif_stripped(client, resident_login, world, project, db, clock):
    resident_login(client, world.u101)
    resp = client.post("/api/r/complaints", data={
        "kind": "complaint", "body": "  夜间 22 点后仍在施工，噪音很大 ",
        "photos": [(io.BytesIO(jpeg_with_exif()), "IMG_0001.jpg")]}, content_type="multipart/form-data")
    assert resp.status_code == 201, resp.get_json()
    c = db.session.execute(sa.select(Complaint)).scalar_one()
    (photo,) = db.session.execute(sa.select(ConstructionPhoto).where(ConstructionPhoto.subject_id == c.id)).scalars()
    # filed Tue 2026-09-01 10:00 Beijing; 5 working days: 9/2, 9/3, 9/4, (weekend), 9/7, 9/8
    assert resp.get_json() == {
        "number": "TS2026-0001", "kind": "complaint", "kind_label": "投诉", "body": "夜间 22 点后仍在施工，噪音很大",
        "state": "open", "state_label": "待答复", "filed_at": "2026-09-01T02:00:00+00:00", "due_on": "2026-09-08",
        "overdue": False, "reply": "", "replied_at": None, "photos": [f"/api/r/photos/{photo.id}"]}
    assert (c.unit_id, c.owner_id) == (world.u101.id, world.owner(world.u101).id)
    got = client.get(f"/api/r/photos/{photo.id}")
    assert (got.status_code, got.mimetype) == (200, "image/jpeg")
    img = Image.open(io.BytesIO(got.data))
    # 3000×2000 turned upright by its orientation tag (6) is 2000×3000; at most 1600 px a side; no EXIF left
    assert (img.format, img.size) == ("JPEG", (1067, 1600))
    assert dict(img.getexif()) == {}
    assert b"SERIAL-12345" not in got.data and b"Exif" not in got.data[:200]
    event = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "construction.complaint_filed")
                               ).scalar_one()
    assert event.data == {"number": "TS2026-0001", "kind": "complaint", "due_on": "2026-09-08", "photos": 1}
    # another unit of the estate may not see the photo of this unit's complaint
    resident_login(client, world.u102)
    assert client.get(f"/api/r/photos/{photo.id}").status_code == 404


def test_complaint_input_checked(client, resident_login, world, project, db, clock):
    resident_login(client, world.u101)
    resp = client.post("/api/r/complaints", data={"kind": "praise", "body": " "}, content_type="multipart/form-data")
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"kind": ["请选择投诉或咨询"], "body": ["请填写内容"]}
    resp = client.post("/api/r/complaints", data={"kind": "question", "body": "x", "unit_id": "3"},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and resp.get_json()["errors"]["files"] == {"unit_id": ["Unknown field."]}
    seven = [(io.BytesIO(png_bytes()), f"{i}.png") for i in range(7)]
    resp = client.post("/api/r/complaints", data={"kind": "question", "body": "x", "photos": seven},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and resp.get_json()["errors"] == {"photos": ["最多 6 张"]}
    resp = client.post("/api/r/complaints", data={"kind": "question", "body": "x",
                                                  "photos": [(io.BytesIO(b"GIF89a....."), "a.gif")]},
                       content_type="multipart/form-data")
    assert resp.status_code == 422 and resp.get_json()["code"] == "upload_wrong_type"
    assert db.session.execute(sa.select(sa.func.count(Complaint.id))).scalar_one() == 0


def test_mine_public_and_one(client, resident_login, world, project, db, clock):
    a = _file(project, world, world.u101, "脚手架挡住了楼道")
    b = _file(project, world, world.u102, "何时停水？", kind="question", at=world.later(hours=1))
    complaints.answer_complaint(b, reply="9 月 3 日 9:00-12:00 停水", user=world.committee, now=world.later(days=1))
    db.session.commit()
    resident_login(client, world.u101)
    clock.now = world.later(days=8)  # 9/9 Beijing: a (due 9/8) is overdue
    mine = client.get("/api/r/complaints").get_json()
    assert [(c["number"], c["state"], c["due_on"], c["overdue"]) for c in mine] == [
        ("TS2026-0001", "open", "2026-09-08", True)]
    public = client.get("/api/r/complaints/public").get_json()
    assert public == [
        {"number": "TS2026-0002", "kind_label": "咨询", "body": "何时停水？", "state_label": "已答复",
         "filed_at": "2026-09-01T03:00:00+00:00", "due_on": "2026-09-08", "reply": "9 月 3 日 9:00-12:00 停水",
         "replied_at": "2026-09-02T02:00:00+00:00"},
        {"number": "TS2026-0001", "kind_label": "投诉", "body": "脚手架挡住了楼道", "state_label": "待答复",
         "filed_at": "2026-09-01T02:00:00+00:00", "due_on": "2026-09-08", "reply": "", "replied_at": None}]
    assert client.get("/api/r/complaints/TS2026-0001").get_json()["body"] == "脚手架挡住了楼道"
    # another unit's complaint, by its number: as if it did not exist
    resp = client.get("/api/r/complaints/TS2026-0002")
    assert (resp.status_code, resp.get_json()["code"]) == (404, "no_complaint")
    home = client.get("/api/r/home").get_json()["sections"]["complaints"]
    assert home == {"open": 1, "total": 1, "latest": [
        {"number": "TS2026-0001", "kind_label": "投诉", "state_label": "待答复", "due_on": "2026-09-08",
         "overdue": True}]}
    assert a.number == "TS2026-0001"


def test_progress_and_project(client, resident_login, world, project, db, clock):
    resident_login(client, world.u201)
    assert client.get("/api/r/progress").get_json() == {"next_report_due": "2026-09-15", "reports": []}
    services.add_party(project, kind="contractor", name="宏达建设", contact_name="王工", contact_phone="13800000001",
                       is_site_contact=True, user=world.committee, now=world.now)
    services.add_party(project, kind="builder", name="幸福街道城建中心", contact_name="李主任",
                       contact_phone="13900000002", user=world.committee, now=world.now)
    r = progress.post_report(project, title="第一期", body="外墙脚手架搭设完毕", percent_done="35",
                             photos=[png_bytes()], user=world.committee, now=world.later(days=3))
    refused = changes.submit_change(project, title="增设雨棚", reason="原设计遗漏单元门雨棚",
                                    cost_effect=changes.parse_cost_effect("外墙保温 | +12000.50\n雨污分流 | -300"),
                                    moves_residents=False, explanation=PDF, explanation_filename="说明.pdf",
                                    user=world.committee, now=world.now)
    changes.refuse_change(refused, note="原则上不允许变更", user=world.committee, now=world.later(days=1))
    changes.submit_change(project, title="雨水管改线", reason="与燃气管冲突",
                          cost_effect=changes.parse_cost_effect("雨污分流 | -1200"), moves_residents=False,
                          explanation=PDF, explanation_filename="说明.pdf", user=world.committee, now=world.now)
    db.session.commit()
    (photo,) = services.photos_of("progress", [r.id])[r.id]
    assert client.get("/api/r/progress").get_json() == {"next_report_due": "2026-09-18", "reports": [
        {"id": r.id, "title": "第一期", "body": "外墙脚手架搭设完毕", "percent_done": 35,
         "posted_at": "2026-09-04T02:00:00+00:00", "photos": [f"/api/r/photos/{photo.id}"]}]}
    got = client.get(f"/api/r/photos/{photo.id}")
    assert (got.status_code, got.mimetype, Image.open(io.BytesIO(got.data)).size) == (200, "image/jpeg", (40, 30))
    clock.now = world.later(days=5)
    data = client.get("/api/r/project").get_json()
    assert data["site_contact"] == {"kind": "contractor", "kind_label": "施工单位", "name": "宏达建设",
                                    "contact_name": "王工", "contact_phone": "13800000001"}
    # parties in their fixed order; only the site contact's phone is shown
    assert data["parties"] == [{"kind": "builder", "kind_label": "建设单位", "name": "幸福街道城建中心"},
                               {"kind": "contractor", "kind_label": "施工单位", "name": "宏达建设"}]
    assert (data["estate_name"], data["started_on"], data["complaint_answer_working_days"]) == (
        world.estate.name, "2026-09-01", 5)
    assert data["changes"] == [{"number": 1, "title": "增设雨棚", "state": "refused", "state_label": "不予变更",
                                "reason": "原设计遗漏单元门雨棚", "decision_note": "原则上不允许变更",
                                "cost_change": "11700.50", "decided_at": "2026-09-02T02:00:00+00:00"}]
    assert data["pending_changes"] == 1
    stages = {s["key"]: (s["state"], s["on"], s["note"]) for s in data["timeline"]}
    assert [s["key"] for s in data["timeline"]] == ["willingness", "plan", "vote", "publicity", "start",
                                                     "construction", "acceptance", "settlement", "handover",
                                                     "evaluation"]
    assert stages["plan"] == ("done", "2026-09-01", "第 1 版")
    assert stages["start"] == ("done", "2026-09-01", "")
    assert stages["construction"] == ("current", "2026-09-01", "进度 35%")


def test_no_project_and_another_estate(client, resident_login, world, project, db, other, clock):
    c = _file(project, world, world.u101, "脚手架挡住了楼道")
    db.session.commit()
    (photo_unit,) = other.buildings[0].units
    resident_login(client, photo_unit)
    for path in ("/api/r/progress", "/api/r/project"):
        resp = client.get(path)
        assert (resp.status_code, resp.get_json()["code"], resp.get_json()["message"]) == (
            404, "no_project", "本小区的项目还没有获批启动"), path
    resp = client.post("/api/r/complaints", data={"kind": "complaint", "body": "x"}, content_type="multipart/form-data")
    assert (resp.status_code, resp.get_json()["code"]) == (404, "no_project")
    assert client.get("/api/r/complaints").get_json() == []
    assert client.get("/api/r/complaints/public").get_json() == []
    assert client.get(f"/api/r/complaints/{c.number}").status_code == 404
    assert "complaints" not in client.get("/api/r/home").get_json()["sections"]


def test_answering_queues_one_message_to_the_complainant(app, world, project, db, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://gaizao.example.cn")
    c = _file(project, world, world.u102, "夜间  22 点后仍在施工，噪音很大，影响休息")
    # answered at 21:30 Beijing: in quiet hours, the message waits for 08:00
    at = world.now.replace(hour=13, minute=30)
    complaints.answer_complaint(c, reply="已要求施工单位 22:00 后停工", user=world.committee, now=at)
    db.session.commit()
    (msg,) = db.session.execute(sa.select(OutboxMessage)).scalars()
    assert (msg.dedupe_key, msg.unit_id, msg.estate_id, msg.state, msg.title) == (
        f"complaint:{c.id}:answered", world.u102.id, world.estate.id, "pending", "投诉已答复")
    assert msg.text == (f"【{world.estate.name}】您家（1幢-102）关于“TS2026-0001 夜间 22 点后仍在施工，噪音很大，影响…”"
                        "的投诉已有答复：已要求施工单位 22:00 后停工 详情：https://gaizao.example.cn/r/home")
    assert msg.next_attempt_at == world.now.replace(day=2, hour=0, minute=0)
    assert complaints.queue_answer_notice(c, at) is None  # once per complaint
    assert db.session.execute(sa.select(sa.func.count(OutboxMessage.id))).scalar_one() == 1


def test_with_csrf_on_the_photo_upload_takes_the_token_of_api_r_me(csrf_app, client, resident_login, world, project,
                                                                    db, clock):
    """A multipart upload is not JSON: with WTF_CSRF_ENABLED it needs the X-CSRFToken that /api/r/me hands out."""
    resident_login(client, world.u101)
    form = {"kind": "question", "body": "何时停水？"}
    resp = client.post("/api/r/complaints", data=form, content_type="multipart/form-data")
    assert (resp.status_code, resp.get_json()["code"]) == (400, "csrf_failed")
    token = client.get("/api/r/me").headers["X-CSRFToken"]
    resp = client.post("/api/r/complaints", data=form, content_type="multipart/form-data",
                       headers={"X-CSRFToken": token, "Referer": "http://localhost/"})
    assert (resp.status_code, resp.get_json()["number"]) == (201, "TS2026-0001")
    # the mini-program's pages (Referer https://servicewechat.com/...) once it is a trusted origin
    old = csrf_app.config["TRUSTED_ORIGINS"]
    csrf_app.config["TRUSTED_ORIGINS"] = ("https://servicewechat.com",)
    try:
        resp = client.post("/api/r/complaints", data=form, content_type="multipart/form-data",
                           headers={"X-CSRFToken": token, "Referer": "https://servicewechat.com/wx0123/3/page"})
        assert (resp.status_code, resp.get_json()["number"]) == (201, "TS2026-0002")
    finally:
        csrf_app.config["TRUSTED_ORIGINS"] = old
