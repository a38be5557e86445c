"""Issue 17 item 5, what this branch adds or pins down: the complaint answered (queued when the committee answers on
its page, sent after the quiet hours) and the publicity posted notice, each with its exact Chinese text and link.
The other reminders (round opening, 48 h / 24 h before close, objection answered, pledge window closing,
settlement due) are queued by the scheduler and tested in tests/scheduler/test_reminder_templates.py."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from residents_app.notify.models import OutboxMessage
from residents_app.publicity import services as pub_services
from residents_app.publicity.holidays import load_calendar
from residents_app.scheduler import jobs
from residents_app.works.construction import complaints
from residents_app.works.construction import views as construction_views
from tests.conftest import login

LINK = " 详情：https://gaizao.example.cn/r/home"


def test_complaint_answered_on_the_page_is_queued_then_sent_after_quiet_hours(app, client, world, project, db,
                                                                              monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://gaizao.example.cn/")
    c = complaints.file_complaint(project, unit_id=world.u201.id, owner_id=world.owner(world.u201).id,
                                  kind="question", body="何时停水？", photos=[], calendar=load_calendar(),
                                  now=world.now)
    db.session.commit()
    answered_at = datetime(2026, 9, 2, 13, 30, tzinfo=UTC)  # 21:30 Beijing
    monkeypatch.setattr(construction_views, "utcnow", lambda: answered_at)
    login(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/construction/complaints/{c.id}/answer",
                       data={"reply": "9 月 3 日 9:00-12:00 停水"})
    assert resp.status_code == 302
    (msg,) = db.session.execute(sa.select(OutboxMessage)).scalars()
    assert (msg.unit_id, msg.title, msg.state, msg.dedupe_key) == (world.u201.id, "投诉已答复", "pending",
                                                                   f"complaint:{c.id}:answered")
    assert msg.text == (f"【{world.estate.name}】您家（2幢-101）关于“TS2026-0001 何时停水？”的投诉已有答复："
                        "9 月 3 日 9:00-12:00 停水" + LINK)
    assert msg.next_attempt_at == datetime(2026, 9, 3, 0, 0, tzinfo=UTC)  # 08:00 Beijing
    assert jobs.send_outbox(datetime(2026, 9, 2, 23, 59, tzinfo=UTC)).summary == {"sent": 0, "failed": 0, "retry": 0}
    assert jobs.send_outbox(datetime(2026, 9, 3, 0, 0, tzinfo=UTC)).summary == {"sent": 1, "failed": 0, "retry": 0}
    db.session.refresh(msg)
    assert (msg.state, msg.sent_at) == ("sent", datetime(2026, 9, 3, 0, 0, tzinfo=UTC))
    # answering twice is refused; nothing more is queued
    again = client.post(f"/estates/{world.estate.id}/construction/complaints/{c.id}/answer",
                        data={"reply": "再答一次"}, headers={"Accept": "application/json"})
    assert (again.status_code, again.get_json()["code"]) == (409, "complaint_answered")
    assert db.session.execute(sa.select(sa.func.count(OutboxMessage.id))).scalar_one() == 1


def test_publicity_posted_notice_exact_text(app, factory, db, monkeypatch):
    monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://gaizao.example.cn")
    estate = factory.estate(buildings={"1幢": [("101", "100.00"), ("102", "80.00")]})
    now = datetime(2026, 11, 2, 2, tzinfo=UTC)  # Mon 10:00 Beijing
    pub = pub_services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                      title="困难群众名单公示", notice_text="n", posted_on=date(2026, 11, 2),
                                      actor="a", now=now)
    db.session.commit()
    run = jobs.tick(now)
    assert run.actions == [{"kind": "publicity_notice_queued", "id": pub.id, "due": None}]
    msgs = db.session.execute(sa.select(OutboxMessage).order_by(OutboxMessage.unit_id)).scalars().all()
    u101, u102 = sorted(estate.buildings[0].units, key=lambda u: u.number)
    assert [(m.unit_id, m.title) for m in msgs] == [(u101.id, "公示开始"), (u102.id, "公示开始")]
    # five working days from the day after posting: Tue 11/3 to Mon 11/9 (the weekend does not count)
    assert msgs[0].text == (f"【{estate.name}】困难群众名单公示 正在公示。"
                            "公示期：2026-11-03 至 2026-11-09（5个工作日）。"
                            "请到小区公示栏或扫码查看；如有异议，请在 2026-11-09 24:00 前提出。" + LINK)
    assert msgs[0].dedupe_key == f"publicity:{pub.id}:posted:2026-11-02:unit:{u101.id}"
    assert jobs.tick(now).actions == []  # once
