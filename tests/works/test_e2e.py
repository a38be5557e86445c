"""End to end in headless Chromium: the start checklist page with every check failed (button disabled), then
with every check met (button enabled, the application submitted). Screenshots only when asked for:
RAPP_SCREENSHOTS=<dir> writes gate-1-start-all-failed.png and gate-2-start-all-met.png there."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest

from residents_app.db import utcnow
from residents_app.extensions import db as _db
from tests.conftest import Factory, browser_login
from tests.plan_world import PlanWorld
from tests.works.gate_world import all_met, requested_shots_dir


def _shot(page, name):
    where = requested_shots_dir()
    if where:
        page.screenshot(path=os.path.join(where, name), full_page=True)


@pytest.mark.e2e
def test_start_checklist_all_failed_then_all_met(live_server, live_app, browser):
    with live_app.app_context():
        base = utcnow() - timedelta(days=30)
        factory = Factory(_db)
        failing = PlanWorld(factory, _db, base)
        failing.committee.username = "gate_fail"
        failing.plan(management_plan="")
        ready = PlanWorld(factory, _db, base)
        ready.committee.username = "gate_ready"
        plan = ready.plan()
        all_met(ready, plan, base)
        ids = failing.estate.id, ready.estate.id
        _db.session.commit()
        _db.session.remove()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "gate_fail")
    page.goto(f"{live_server}/estates/{ids[0]}/start")
    assert page.locator("#checklist li .unmet").count() == 7
    assert page.locator("#checklist li .met").count() == 0
    assert page.is_disabled("#submit-start")
    assert page.inner_text("#unmet-count").startswith("还有 7 项条件未满足，暂不能提交")
    _shot(page, "gate-1-start-all-failed.png")
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "gate_ready")
    page.goto(f"{live_server}/estates/{ids[1]}/start")
    assert page.locator("#checklist li .met").count() == 7
    assert page.locator("#checklist li .unmet").count() == 0
    assert page.is_enabled("#submit-start")
    assert page.inner_text("#unmet-count") == "全部条件已满足，可以提交。"
    assert page.locator("#publicity-pdf").count() == 1
    _shot(page, "gate-2-start-all-met.png")
    page.click("#submit-start")
    page.wait_for_selector(".flash-success")
    assert page.inner_text("#app-status") == "已提交"
    ctx.close()
