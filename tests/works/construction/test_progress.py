"""Item 3: progress reports with photos seen on the phone; the scheduler reminds once when a report is overdue."""

from __future__ import annotations

import io
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import ValidationFailed
from residents_app.works.construction import progress, services
from residents_app.works.construction.models import ConstructionPhoto
from tests.conftest import login
from tests.works.construction.conftest import png_bytes

BJ = timezone(timedelta(hours=8))


def _post(project, world, at, pct=30):
    return progress.post_report(project, title="第一期", body="外墙脚手架搭设完毕", percent_done=str(pct),
                                photos=[], user=world.committee, now=at)


def test_next_report_due_after_the_interval(project, world):
    # approved Tue 9/1 (Beijing); default interval 14 days
    assert progress.next_report_due(project) == date(2026, 9, 15)
    assert not progress.report_overdue(project, datetime(2026, 9, 15, 23, 59, tzinfo=BJ))
    assert progress.report_overdue(project, datetime(2026, 9, 16, 0, 0, tzinfo=BJ))
    _post(project, world, datetime(2026, 9, 10, 9, 0, tzinfo=BJ))
    assert progress.next_report_due(project) == date(2026, 9, 24)
    services.update_setup(project, report_interval_days="7", complaint_answer_working_days="5",
                          user=world.committee, now=world.now)
    assert progress.next_report_due(project) == date(2026, 9, 17)


def test_scheduler_reminds_once_per_missed_due_date(project, world, db):
    from residents_app.scheduler import jobs

    db.session.commit()
    run = jobs.tick(datetime(2026, 9, 15, 23, 0, tzinfo=BJ), use_advisory_lock=False)
    assert not [a for a in run.actions if a["kind"] == "progress_report_overdue"]
    run = jobs.tick(datetime(2026, 9, 16, 8, 0, tzinfo=BJ), use_advisory_lock=False)
    assert {"kind": "progress_report_overdue", "count": 1} in run.actions
    run = jobs.tick(datetime(2026, 9, 17, 8, 0, tzinfo=BJ), use_advisory_lock=False)
    assert not [a for a in run.actions if a["kind"] == "progress_report_overdue"]
    _post(project, world, datetime(2026, 9, 17, 9, 0, tzinfo=BJ))  # next due 10/1
    db.session.commit()
    assert progress.remind_overdue_reports(datetime(2026, 10, 1, 23, 0, tzinfo=BJ)) == 0
    assert progress.remind_overdue_reports(datetime(2026, 10, 2, 0, 0, tzinfo=BJ)) == 1
    events = db.session.execute(sa.select(AuditEvent.data).where(
        AuditEvent.kind == "construction.progress_overdue").order_by(AuditEvent.seq)).scalars().all()
    assert events == [{"due_on": "2026-09-15"}, {"due_on": "2026-10-01"}]


def test_before_the_interval_no_reminder(project, world, db):
    assert progress.remind_overdue_reports(datetime(2026, 9, 15, 23, 59, tzinfo=BJ)) == 0


def test_report_validated(project, world):
    with pytest.raises(ValidationFailed) as info:
        progress.post_report(project, title="", body="", percent_done="101", photos=[], user=world.committee,
                             now=world.now)
    assert info.value.errors == {"title": ["请填写标题（不超过 200 字）"], "body": ["请填写进度说明"],
                                 "percent_done": ["完成比例须为 0 至 100 的整数"]}


def test_contractor_posts_with_photos_and_resident_sees_them_on_the_phone(project, world, client, resident_login,
                                                                           db, app):
    p = services.add_party(project, kind="contractor", name="宏达建设", contact_name="王工",
                           contact_phone="13800000001", sign_mode="account", username="hongda",
                           password="Hongda-site-2026", user=world.committee, now=world.now)
    d = services.add_party(project, kind="designer", name="市设计院", sign_mode="account", username="design",
                           password="Design-site-2026", user=world.committee, now=world.now)
    db.session.commit()
    login(client, p.user, "Hongda-site-2026")
    resp = client.post(f"/estates/{world.estate.id}/construction/progress", data={
        "title": "第一期通报", "body": "1幢外墙保温完成", "percent_done": "35",
        "photos": [(io.BytesIO(png_bytes()), "a.png"), (io.BytesIO(png_bytes((2400, 1200))), "b.png")]},
        content_type="multipart/form-data")
    assert resp.status_code == 302
    photos = db.session.query(ConstructionPhoto).filter_by(subject_type="progress").order_by(
        ConstructionPhoto.id).all()
    assert [(ph.content_type, ph.width, ph.height) for ph in photos] == [("image/jpeg", 40, 30),
                                                                          ("image/jpeg", 1600, 800)]
    login(client, d.user, "Design-site-2026")  # the designer does not post progress
    assert client.post(f"/estates/{world.estate.id}/construction/progress",
                       data={"title": "x", "body": "y", "percent_done": "1"}).status_code == 404
    rc = app.test_client()
    resident_login(rc, world.u201)
    page = rc.get("/r/construction").get_data(as_text=True)
    assert "第一期通报" in page and "已完成 <strong>35%</strong>" in page
    for ph in photos:
        assert f'/r/construction/photos/{ph.id}"' in page
        got = rc.get(f"/r/construction/photos/{ph.id}")
        assert (got.status_code, got.mimetype) == (200, "image/jpeg")
