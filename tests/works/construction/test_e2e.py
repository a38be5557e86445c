"""End to end in headless Chromium: the contractor posts progress with a photo and two change requests; the
committee refuses one and approves the other with the street office; a resident on the phone sees the progress
photo and the change log, files a complaint with a photo, and reads the committee's answer.
Screenshots go to screenshot_dir (docs/screenshots only with --screenshots)."""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest

from residents_app.auth.resident import hash_token, new_token
from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.registry.models import UnitLink
from tests.conftest import Factory, browser_login
from tests.plan_world import PlanWorld
from tests.works.construction.conftest import jpeg_with_exif

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _files(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.e2e
def test_construction_under_residents_watch(live_server, live_app, browser, phone_page, screenshot_dir, tmp_path):
    from residents_app.works.construction import services
    from residents_app.works.models import StartApplication

    with live_app.app_context():
        base = utcnow() - timedelta(days=3)
        world = PlanWorld(Factory(_db), _db, base)
        world.committee.username = "c16"
        world.street.username = "s16"
        plan = world.plan()
        project = StartApplication(estate_id=world.estate.id, plan_version_id=plan.id, status="approved",
                                   submitted_at=base, checklist=[], decided_at=base, comment="")
        _db.session.add(project)
        _db.session.flush()
        services.add_party(project, kind="contractor", name="宏达建设", contact_name="王工",
                           contact_phone="13800000001", is_site_contact=True, sign_mode="account",
                           username="hongda16", password="Hongda-site-2026", user=world.committee, now=base)
        token = new_token()
        unit = world.u101
        _db.session.add(UnitLink(unit_id=unit.id, token_hash=hash_token(token)))
        owner = unit.owners[0]
        name, last4, estate_id = owner.name, owner.phone[-4:], world.estate.id
        _db.session.commit()
        _db.session.remove()
    url = f"{live_server}/estates/{estate_id}/construction"

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "hongda16", "Hongda-site-2026")
    page.goto(url)
    page.fill("#progress-form [name=title]", "第一期进度通报")
    page.fill("#progress-form [name=body]", "1幢外墙保温完成，2幢脚手架搭设中")
    page.fill("#progress-form [name=percent_done]", "35")
    page.set_input_files("#progress-form [name=photos]", _files(tmp_path, "site.jpg", jpeg_with_exif((1200, 900))))
    page.click("#progress-form button")
    page.wait_for_selector(".flash-success")
    for title, effect in (("取消楼道绿化", "绿化 | -5000"), ("增设单元门雨棚", "雨棚 | +800")):
        page.fill("#change-form [name=title]", title)
        page.fill("#change-form [name=reason]", "现场条件变化")
        page.fill("#change-form [name=cost_effect]", effect)
        page.set_input_files("#change-form [name=explanation]", _files(tmp_path, "说明.pdf", PDF))
        page.click("#change-form button")
        page.wait_for_selector(".flash-success")
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "c16")
    page.goto(url)
    page.fill('[data-change="1"] [name=note]', "原则上不允许变更")
    page.click('[data-change="1"] form[action$="/refuse"] button')
    page.wait_for_selector(".flash-success")
    page.click('[data-change="2"] form[action$="/approve"] button')
    page.wait_for_selector(".flash-success")
    assert "业委会已批准，街道未批准" in page.inner_text('[data-change="2"] .change-state')
    ctx.close()
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "s16")
    page.goto(url)
    page.click('[data-change="2"] form[action$="/approve"] button')
    page.wait_for_selector(".flash-success")
    assert page.inner_text('[data-change="2"] .change-state').startswith("已批准")
    ctx.close()

    phone = phone_page
    phone.goto(f"{live_server}/v/{token}")
    phone.fill("#name", name)
    phone.fill("#phone_last4", last4)
    phone.click("#confirm-identity")
    phone.wait_for_url(re.compile(r".*/r/home"))
    phone.click("text=施工进展、投诉咨询")
    phone.wait_for_url(re.compile(r".*/r/construction"))
    assert "现场联络人：王工（宏达建设）" in phone.inner_text("#site-contact")
    assert "已完成 35%" in phone.inner_text("#progress")
    size = phone.eval_on_selector("#progress img.photo", "img => [img.naturalWidth, img.naturalHeight]")
    assert size == [900, 1200]  # turned upright
    changes = phone.inner_text("#changes")
    assert "第 1 号 取消楼道绿化：不予变更" in changes and "第 2 号 增设单元门雨棚：已批准" in changes
    phone.screenshot(path=os.path.join(screenshot_dir, "construction-1-phone-progress.png"), full_page=True)
    phone.fill("#complain [name=body]", "夜间22点后仍在施工，噪音很大")
    phone.set_input_files("#complain [name=photos]", _files(tmp_path, "noise.jpg", jpeg_with_exif((900, 600))))
    phone.click("#complain button")
    phone.wait_for_selector(".flash-success")
    mine = phone.inner_text("#mine")
    number = re.search(r"TS\d{4}-\d{4}", mine).group(0)
    assert "待答复" in mine

    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = ctx.new_page()
    browser_login(page, live_server, "c16")
    page.goto(url)
    page.fill(f'[data-complaint="{number}"] [name=reply]', "已要求施工单位22点后停止施工")
    page.click(f'[data-complaint="{number}"] button')
    page.wait_for_selector(".flash-success")
    page.screenshot(path=os.path.join(screenshot_dir, "construction-3-committee.png"), full_page=True)
    ctx.close()

    phone.goto(f"{live_server}/r/construction")
    mine = phone.inner_text("#mine")
    assert "已答复" in mine and "答复：已要求施工单位22点后停止施工" in mine
    assert number in phone.inner_text("#public") and name not in phone.inner_text("#public")
    phone.screenshot(path=os.path.join(screenshot_dir, "construction-2-phone-complaint-answered.png"),
                     full_page=True)
