"""End to end in headless Chromium: the street office verifies and signs off a round."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.extensions import db as _db
from tests.conftest import Factory
from tests.voted import build_open_round, build_voted_round


@pytest.fixture
def committed_round(live_app):
    """The same round as `voted_round`, committed for the live server, closed a day ago."""
    with live_app.app_context():
        now = utcnow().replace(microsecond=0) - timedelta(days=8)
        facts = build_voted_round(_db, Factory(_db), now)
        facts.street_username = facts.street.username
        # A second round still in progress, for the dashboards' bars and chart.
        live = utcnow().replace(microsecond=0) - timedelta(hours=5)
        build_open_round(facts, live, live + timedelta(days=3), title="加装电梯意向征求")
        _db.session.commit()
        yield facts
        _db.session.remove()


@pytest.mark.e2e
def test_street_office_verifies_and_signs_off(live_server, live_app, laptop_page, phone_page, committed_round,
                                              screenshot_dir):
    page = laptop_page
    r = committed_round
    page.goto(f"{live_server}/login?next=/district")
    page.fill("input[name=username]", r.street_username)
    page.fill("input[name=password]", "correct-horse-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server}/district")
    assert "待核验" in page.inner_text("#to-verify")
    page.screenshot(path=os.path.join(screenshot_dir, "audit-district.png"), full_page=True)

    page.click("#to-verify a:has-text('外立面及屋面改造意愿征求')")
    page.wait_for_url(f"{live_server}/rounds/{r.id}/verify")
    assert page.inner_text("#verdict") == "表决结果：通过"
    assert "本小区审计日志完好" in page.inner_text("#chain-status")
    conditions = page.inner_text("#conditions")
    assert "389.30 m²（69.91%）" in conditions and "4 户（66.66%）" in conditions
    flags = page.inner_text("#flags")
    assert "纸质票未经第二人确认" in flags and "截止前一小时内改票" in flags and "名册冻结后业主发生变更" in flags
    page.screenshot(path=os.path.join(screenshot_dir, "audit-verify-desk.png"), full_page=True)

    page.check("input[name=decision][value=verified]")
    page.fill("#comment", "双三分之二均已达到，纸质票扫描件与委托书已核对。")
    page.click("#signoff-submit")
    page.wait_for_selector(".flash-success")
    assert page.inner_text(".flash-success") == "已记录核验意见：核验通过（已写入审计日志）"
    assert "核验通过" in page.inner_text(".signoffs")
    page.screenshot(path=os.path.join(screenshot_dir, "audit-signed-off.png"), full_page=True)

    with live_app.app_context():
        from residents_app.audit.models import AuditEvent

        ev = _db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "round.verification")).scalar_one()
        assert ev.data["decision"] == "verified"
        assert ev.data["comment"] == "双三分之二均已达到，纸质票扫描件与委托书已核对。"
        _db.session.remove()

    page.goto(f"{live_server}/estates/{r.estate_id}/dashboard")
    assert "核验通过" in page.inner_text("main")
    assert "已投票 3 / 6 户" in page.inner_text(".round-card")
    assert page.locator(".round-card svg path.turnout").count() == 1
    page.screenshot(path=os.path.join(screenshot_dir, "audit-estate-dashboard.png"), full_page=True)

    # The resident's side: the receipt, on a phone.
    phone_page.goto(f"{live_server}/audit/receipt")
    phone_page.fill("#code", r.receipts["1幢-101"])
    phone_page.click("button[type=submit]")
    phone_page.wait_for_selector("#receipt-headline")
    assert phone_page.inner_text("#receipt-headline").startswith("已按所投计入：同意改造，")
    phone_page.screenshot(path=os.path.join(screenshot_dir, "audit-receipt-phone.png"), full_page=True)

    # The report as the officer downloads it, rendered to images for a look.
    resp = page.request.get(f"{live_server}/rounds/{r.id}/report.pdf")
    assert resp.status == 200 and resp.body().startswith(b"%PDF-")
    pdf_path = os.path.join(screenshot_dir, "audit-report.pdf")
    with open(pdf_path, "wb") as fh:
        fh.write(resp.body())
    subprocess.run(["pdftoppm", "-png", "-r", "70", pdf_path, os.path.join(screenshot_dir, "audit-report")],
                   check=True)
    os.remove(pdf_path)
    assert os.path.exists(os.path.join(screenshot_dir, "audit-report-1.png"))
