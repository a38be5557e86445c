"""Item 4: complaints and questions from the unit link: number, due day in working days (holidays and make-up
days), reply, state; overdue ones flagged to the street office; own list and an anonymised public list."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta, timezone
from unittest import mock

import pytest

from residents_app.core.calendar import default_calendar
from residents_app.errors import ValidationFailed
from residents_app.publicity.holidays import load_calendar
from residents_app.works.construction import complaints, services
from residents_app.works.construction.models import Complaint, ConstructionPhoto
from tests.conftest import login
from tests.works.construction.conftest import jpeg_with_exif

BJ = timezone(timedelta(hours=8))


def _file(project, world, at, *, unit=None, body="脚手架挡住了楼道", kind="complaint"):
    unit = unit or world.u101
    return complaints.file_complaint(project, unit_id=unit.id, owner_id=world.owner(unit).id, kind=kind, body=body,
                                     photos=[], calendar=load_calendar(), now=at)


def test_due_day_across_national_day_with_make_up_day():
    cal = default_calendar()
    # Tue 9/29: 9/30 (1), 10/1-10/7 rest, 10/8 (2), 10/9 (3), Sat 10/10 make-up (4), Sun 10/11 rest, 10/12 (5)
    assert complaints.answer_due_on(date(2026, 9, 29), 5, cal) == date(2026, 10, 12)
    assert complaints.answer_due_on(date(2026, 9, 30), 1, cal) == date(2026, 10, 8)
    assert complaints.answer_due_on(date(2026, 10, 9), 1, cal) == date(2026, 10, 10)  # the make-up Saturday
    assert complaints.answer_due_on(date(2026, 10, 3), 1, cal) == date(2026, 10, 8)  # filed during the holiday
    # the other make-up day of 国庆 2026, Sunday 9/20: Fri 9/18 + 2 = Sun 9/20 (1), Mon 9/21 (2)
    assert complaints.answer_due_on(date(2026, 9, 18), 2, cal) == date(2026, 9, 21)
    assert complaints.answer_due_on(date(2026, 9, 19), 1, cal) == date(2026, 9, 20)


def test_filed_complaint_gets_number_and_due_day_by_the_beijing_date(project, world):
    a = _file(project, world, datetime(2026, 9, 29, 23, 30, tzinfo=BJ))
    b = _file(project, world, datetime(2026, 9, 30, 0, 30, tzinfo=BJ), kind="question", body="何时停水？")
    assert (a.number, a.due_on, a.state) == ("TS2026-0001", date(2026, 10, 12), "open")
    # filed half an hour later, on Wed 9/30 in Beijing: 10/8, 10/9, 10/10, 10/12, 10/13
    assert (b.number, b.due_on, b.kind_label) == ("TS2026-0002", date(2026, 10, 13), "咨询")
    assert not a.is_overdue(date(2026, 10, 12)) and a.is_overdue(date(2026, 10, 13))


def test_answer_window_follows_the_projects_setting(project, world):
    services.update_setup(project, report_interval_days="14", complaint_answer_working_days="1",
                          user=world.committee, now=world.now)
    c = _file(project, world, datetime(2026, 10, 9, 9, 0, tzinfo=BJ))
    assert c.due_on == date(2026, 10, 10)
    with pytest.raises(ValidationFailed) as info:
        services.update_setup(project, report_interval_days="0", complaint_answer_working_days="31",
                              user=world.committee, now=world.now)
    assert info.value.errors == {"report_interval_days": ["进度通报间隔（天）须为 1 至 90 的整数"],
                                 "complaint_answer_working_days": ["答复时限（工作日）须为 1 至 30 的整数"]}


def test_empty_or_unknown_complaint_refused(project, world):
    with pytest.raises(ValidationFailed) as info:
        _file(project, world, world.now, body="  ", kind="praise")
    assert info.value.errors == {"kind": ["请选择投诉或咨询"], "body": ["请填写内容"]}


def test_resident_files_with_photo_exif_stripped_and_resized(project, world, client, resident_login, db):
    resident_login(client, world.u101)
    with mock.patch("residents_app.works.construction.resident_views.utcnow", return_value=world.now):
        resp = client.post("/r/complaints", data={"kind": "complaint", "body": "夜间施工噪音",
                                                  "photos": [(io.BytesIO(jpeg_with_exif()), "IMG_0001.jpg")]},
                           content_type="multipart/form-data")
    assert resp.status_code == 302
    c = db.session.query(Complaint).one()
    assert (c.number, c.unit_id) == ("TS2026-0001", world.u101.id)
    (photo,) = db.session.query(ConstructionPhoto).filter_by(subject_type="complaint", subject_id=c.id).all()
    from PIL import Image

    img = Image.open(io.BytesIO(photo.data))
    # 3000×2000 with orientation 6 is upright 2000×3000; at most 1600 px a side
    assert (img.format, img.size, (photo.width, photo.height)) == ("JPEG", (1067, 1600), (1067, 1600))
    assert dict(img.getexif()) == {}
    assert b"SERIAL-12345" not in photo.data and b"Exif" not in photo.data[:200]
    with mock.patch("residents_app.works.construction.resident_views.utcnow", return_value=world.now):
        page = client.get("/r/construction").get_data(as_text=True)
    assert "TS2026-0001" in page and "应于 2026-09-08 前答复" in page  # Tue 9/1 + 5 working days
    assert client.get(f"/r/construction/photos/{photo.id}").status_code == 200


def test_not_an_image_refused_without_500(project, world, client, resident_login, db):
    resident_login(client, world.u101)
    resp = client.post("/r/complaints", data={"kind": "complaint", "body": "x",
                                              "photos": [(io.BytesIO(b"GIF89a not really"), "a.jpg")]},
                       content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"photos": ["照片只接受 JPEG 或 PNG"]}
    assert db.session.query(Complaint).count() == 0


def test_own_list_public_list_anonymised_and_photos_private(project, world, client, resident_login, db, app):
    c = _file(project, world, world.now, body="楼道堆放建材")
    (photo,) = services.attach_photos(world.estate.id, "complaint", c.id, [jpeg_with_exif((300, 200))], world.now)
    db.session.commit()
    other = app.test_client()
    resident_login(other, world.u201)
    page = other.get("/r/construction").get_data(as_text=True)
    public = page.split('id="public"')[1]
    mine = page.split('id="mine"')[1].split('id="public"')[0]
    assert "TS2026-0001" in public and "楼道堆放建材" in public
    assert world.owner(world.u101).name not in page and "1幢-101" not in page
    assert "您还没有提交过。" in mine
    assert other.get(f"/r/construction/photos/{photo.id}").status_code == 404
    resident_login(client, world.u101)
    assert "TS2026-0001" in client.get("/r/construction").get_data(as_text=True).split('id="mine"')[1]
    assert client.get(f"/r/construction/photos/{photo.id}").status_code == 200


def test_committee_answers_and_resident_sees_reply(project, world, client, resident_login, db, app):
    c = _file(project, world, world.now)
    db.session.commit()
    login(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/construction/complaints/{c.id}/answer",
                       data={"reply": "已要求施工单位当日清理"})
    assert resp.status_code == 302
    db.session.refresh(c)
    assert (c.state, c.reply, c.replied_by_id) == ("answered", "已要求施工单位当日清理", world.committee.id)
    rc = app.test_client()
    resident_login(rc, world.u101)
    assert "答复：已要求施工单位当日清理" in rc.get("/r/construction").get_data(as_text=True)
    again = client.post(f"/estates/{world.estate.id}/construction/complaints/{c.id}/answer",
                        data={"reply": "x"}, headers={"Accept": "application/json"})
    assert (again.status_code, again.get_json()["code"]) == (409, "complaint_answered")


def test_overdue_flagged_to_street_office_once(project, world, factory, client, db):
    c = _file(project, world, datetime(2026, 9, 29, 10, 0, tzinfo=BJ))  # due 10/12
    answered = _file(project, world, datetime(2026, 9, 29, 10, 0, tzinfo=BJ), body="已答复的")
    complaints.answer_complaint(answered, reply="好", user=world.committee, now=world.now)
    assert complaints.flag_overdue_complaints(datetime(2026, 10, 12, 23, 59, tzinfo=BJ)) == 0
    at = datetime(2026, 10, 13, 0, 0, tzinfo=BJ)
    assert complaints.flag_overdue_complaints(at) == 1
    assert complaints.flag_overdue_complaints(at + timedelta(hours=1)) == 0  # once
    assert c.flagged_at == at.astimezone(UTC)
    db.session.commit()
    login(client, world.street)
    with mock.patch("residents_app.works.construction.views.utcnow", return_value=at):
        page = client.get("/construction/overdue").get_data(as_text=True)
    assert "TS2026-0001" in page and "TS2026-0002" not in page
    stranger = factory.user("street", office=factory.street_office())
    db.session.commit()
    login(client, stranger)
    with mock.patch("residents_app.works.construction.views.utcnow", return_value=at):
        page = client.get("/construction/overdue").get_data(as_text=True)
    assert "TS2026-0001" not in page


def test_scheduler_tick_flags_overdue_complaints(project, world, db):
    from residents_app.scheduler import jobs

    _file(project, world, datetime(2026, 9, 29, 10, 0, tzinfo=BJ))
    db.session.commit()
    run = jobs.tick(datetime(2026, 10, 13, 9, 0, tzinfo=BJ), use_advisory_lock=False)
    assert {"kind": "complaints_overdue", "count": 1} in run.actions
    run = jobs.tick(datetime(2026, 10, 13, 10, 0, tzinfo=BJ), use_advisory_lock=False)
    assert not [a for a in run.actions if a["kind"] == "complaints_overdue"]


def test_api_lists_complaints_with_due_day_and_flag(project, world, client, db):
    _file(project, world, datetime(2026, 9, 29, 10, 0, tzinfo=BJ))
    complaints.flag_overdue_complaints(datetime(2026, 10, 13, 0, 0, tzinfo=BJ))
    db.session.commit()
    login(client, world.street)
    with mock.patch("residents_app.works.construction.api.utcnow",
                    return_value=datetime(2026, 10, 13, 9, 0, tzinfo=BJ)):
        got = client.get(f"/api/construction/estates/{world.estate.id}/complaints").get_json()
    assert got == {"complaints": [{"number": "TS2026-0001", "kind": "complaint", "state": "open",
                                   "filed_at": "2026-09-29T02:00:00+00:00", "due_on": "2026-10-12",
                                   "overdue": True, "flagged": True}]}
