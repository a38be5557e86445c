"""Rectification items past their due day (Beijing): not overdue on the due day itself, overdue from the next day;
the scheduler reminds the owner once; the acceptance page, the construction page and the timeline flag them."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from unittest import mock

import pytest

from residents_app.audit.models import AuditEvent
from residents_app.errors import ValidationFailed
from residents_app.works.acceptance import overdue, services
from residents_app.works.acceptance.timeline_stages import acceptance_stage
from residents_app.works.construction import services as construction
from residents_app.works.construction.timeline import project_timeline
from tests.conftest import login
from tests.works.construction.conftest import project  # noqa: F401  (fixture)

BJ = timezone(timedelta(hours=8))
DUE = date(2026, 9, 10)  # a Thursday; Friday 9/11 is the next working day
LAST_MINUTE = datetime(2026, 9, 10, 23, 59, tzinfo=BJ)
NEXT_DAY = datetime(2026, 9, 11, 0, 0, tzinfo=BJ)


@pytest.fixture
def setup(project, aw, world, db):  # noqa: F811
    contractor = construction.add_party(project, kind="contractor", name="市政建设公司", sign_mode="account",
                                        username="contractor16", password="Contractor-site-2026",
                                        user=world.committee, now=world.now)
    acc = aw.open()
    issue = services.add_issue(acc, description="3 幢屋面局部渗水", owner="", owner_party_id=contractor.id,
                               due_on=DUE, user=world.committee, now=world.now)
    services.add_issue(acc, description="路灯不亮", owner="市供电公司", due_on=DUE + timedelta(days=1),
                       user=world.committee, now=world.now)
    item = construction.open_rectification(project, source="inspection", source_id=None,
                                           description="2 幢雨水管脱落", owner_party=contractor, due_on=DUE,
                                           user=world.committee, now=world.now)
    db.session.commit()
    return {"acc": acc, "issue": issue, "item": item, "contractor": contractor}


def _events(db, kind):
    return [e.data for e in db.session.query(AuditEvent).filter_by(kind=kind).order_by(AuditEvent.seq)]


def test_owner_party_names_the_issue_and_must_be_of_this_project(setup, world, db):
    assert (setup["issue"].owner, setup["issue"].owner_party_id) == ("市政建设公司", setup["contractor"].id)
    with pytest.raises(ValidationFailed) as info:
        services.add_issue(setup["acc"], description="x", owner="", owner_party_id=999999, due_on=DUE,
                           user=world.committee, now=world.now)
    assert info.value.errors == {"owner_party_id": "该单位不是本项目的参建单位", "owner": "请填写整改责任单位"}


def test_due_day_itself_not_overdue_the_next_day_overdue_and_reminded_once(setup, world, db):
    issue, item = setup["issue"], setup["item"]
    assert not issue.is_overdue(DUE) and issue.is_overdue(DUE + timedelta(days=1))
    assert not item.is_overdue(DUE) and item.is_overdue(DUE + timedelta(days=1))
    assert overdue.remind_overdue_items(LAST_MINUTE) == 0
    assert (issue.reminded_at, item.reminded_at) == (None, None)
    assert overdue.remind_overdue_items(NEXT_DAY) == 2  # the issue due 9/10 and the item; not the one due 9/11
    assert (issue.reminded_at, item.reminded_at) == (NEXT_DAY, NEXT_DAY)
    assert _events(db, "acceptance.issue_overdue") == [
        {"number": 1, "due_on": "2026-09-10", "description": "3 幢屋面局部渗水", "owner": "市政建设公司",
         "owner_party_id": setup["contractor"].id, "owner_account": "contractor16"}]
    assert _events(db, "construction.rectification_overdue") == [
        {"due_on": "2026-09-10", "description": "2 幢雨水管脱落", "owner": "市政建设公司",
         "owner_party_id": setup["contractor"].id, "owner_account": "contractor16"}]
    assert overdue.remind_overdue_items(NEXT_DAY + timedelta(hours=1)) == 0  # once
    later = datetime(2026, 9, 12, 0, 0, tzinfo=BJ)
    assert overdue.remind_overdue_items(later) == 1  # the issue due 9/11, owned by a name only
    assert _events(db, "acceptance.issue_overdue")[-1] == {
        "number": 2, "due_on": "2026-09-11", "description": "路灯不亮", "owner": "市供电公司",
        "owner_party_id": None, "owner_account": None}


def test_closed_items_are_never_reminded(setup, world, db):
    services.close_issue(setup["acc"], setup["issue"].id, note="已修复", user=world.committee, now=world.now)
    construction.close_rectification(construction.project_of(world.estate.id), setup["item"].id,
                                     note="已修复", user=world.committee, now=world.now)
    assert overdue.remind_overdue_items(NEXT_DAY) == 0


def test_scheduler_tick_reminds(setup, db):
    from residents_app.scheduler import jobs

    run = jobs.tick(LAST_MINUTE, use_advisory_lock=False)
    assert not [a for a in run.actions if a["kind"] == "rectifications_overdue"]
    run = jobs.tick(NEXT_DAY, use_advisory_lock=False)
    assert {"kind": "rectifications_overdue", "count": 2} in run.actions
    run = jobs.tick(NEXT_DAY + timedelta(hours=1), use_advisory_lock=False)
    assert not [a for a in run.actions if a["kind"] == "rectifications_overdue"]


def test_timeline_flags_overdue_issues(setup, world):
    assert acceptance_stage(world.estate.id, LAST_MINUTE).overdue == []
    assert acceptance_stage(world.estate.id, NEXT_DAY).overdue == ["1 项验收整改逾期（#1）"]
    stages = {s.key: s for s in project_timeline(world.estate.id, NEXT_DAY)}
    assert (stages["acceptance"].state, stages["acceptance"].overdue) == ("overdue", ["1 项验收整改逾期（#1）"])
    assert "1 项整改逾期" in stages["construction"].overdue
    stages = {s.key: s for s in project_timeline(world.estate.id, LAST_MINUTE)}
    assert stages["acceptance"].state == "current" and "1 项整改逾期" not in stages["construction"].overdue


def test_pages_flag_overdue_items(setup, world, client, db):
    overdue.remind_overdue_items(NEXT_DAY)
    db.session.commit()
    login(client, world.committee)
    acc_url = f"/acceptance/{setup['acc'].id}"
    with mock.patch("residents_app.works.acceptance.views.utcnow", return_value=LAST_MINUTE):
        html = client.get(acc_url).get_data(as_text=True)
    assert "已逾期" not in html
    with mock.patch("residents_app.works.acceptance.views.utcnow", return_value=NEXT_DAY):
        html = client.get(acc_url).get_data(as_text=True)
    assert html.count('class="bad overdue"') == 1 and "已于 2026-09-11 00:00 提醒责任单位" in html
    with mock.patch("residents_app.works.construction.views.utcnow", return_value=NEXT_DAY):
        html = client.get(f"/estates/{world.estate.id}/construction").get_data(as_text=True)
    assert html.count('<span class="overdue">已逾期</span>') == 1 and "已于 2026-09-11 00:00 提醒责任单位" in html
