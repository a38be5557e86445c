"""End to end in headless Chromium: open a demo QR link, confirm identity, vote, see the receipt,
and see the committee's tally change."""

from __future__ import annotations

import os
import re

import pytest

from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.rounds.demo import extend_demo
from tests.conftest import Factory, browser_login


@pytest.mark.e2e
def test_resident_votes_by_qr_link_and_committee_sees_the_tally_change(live_server, live_app, phone_page,
                                                                       laptop_page, screenshot_dir):
    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="示范小区", buildings={
            "2幢": [("101", "88.50"), ("102", "75.18")], "3幢": [("203", "92.60"), ("204", "102.30")],
            "4幢": [("305", "118.75"), ("306", "62.35")]})
        f.user("committee", estate=estate, username="chen")
        lines = extend_demo(estate, utcnow())
        estate_id = estate.id
        _db.session.commit()
        _db.session.remove()
    demo = next(line for line in lines if "2幢-101" in line)
    token, name, last4 = re.search(r"/v/(\S+)\s+业主 (\S+)\s+手机后4位 (\d{4})", demo).groups()

    laptop = laptop_page
    browser_login(laptop, live_server, "chen")
    laptop.goto(live_server + f"/estates/{estate_id}/rounds")
    laptop.click("text=示范小区老旧小区改造意愿征求")
    before = int(laptop.inner_text("#agree-count"))
    voted_before = int(laptop.inner_text("#voted-count"))

    page = phone_page
    page.goto(f"{live_server}/v/{token}")
    assert page.inner_text("#unit-label") == "2幢-101"
    page.fill("#name", name)
    page.fill("#phone_last4", last4)
    page.screenshot(path=os.path.join(screenshot_dir, "rounds-1-identity.png"), full_page=True)
    page.click("#confirm-identity")
    page.wait_for_url(re.compile(r".*/r/home"))
    page.screenshot(path=os.path.join(screenshot_dir, "rounds-2-home.png"), full_page=True)
    page.click("a.round-link")
    assert "双三分之二" in page.inner_text("details.rule")
    page.check("#choice-agree")
    page.screenshot(path=os.path.join(screenshot_dir, "rounds-3-vote.png"), full_page=True)
    page.click("#next")
    page.check("#item-roof")
    page.check("#item-lift")
    page.click("#next")
    assert page.inner_text("#chosen") == "同意改造"
    page.screenshot(path=os.path.join(screenshot_dir, "rounds-4-confirm.png"), full_page=True)
    page.click("#cast")
    code = page.inner_text("#receipt-code").strip()
    assert re.fullmatch(r"[0-9a-f]{20}", code)
    page.screenshot(path=os.path.join(screenshot_dir, "rounds-5-receipt.png"), full_page=True)
    page.goto(f"{live_server}/receipt?code={code}")
    assert re.fullmatch(r"已计入：同意改造，\d{4}-\d{2}-\d{2} \d{2}:\d{2}", page.inner_text("#receipt-result").strip())

    laptop.reload()
    assert int(laptop.inner_text("#agree-count")) == before + 1
    assert int(laptop.inner_text("#voted-count")) == voted_before + 1
    laptop.screenshot(path=os.path.join(screenshot_dir, "rounds-6-tally.png"), full_page=True)

    laptop.goto(live_server + f"/estates/{estate_id}/links")
    laptop.select_option("#building_id", label="3幢")
    laptop.check("input[name=reissue]")
    laptop.click("#make-sheet")
    assert laptop.locator(".qr-card").count() == 2
    assert laptop.inner_text(".qr-card >> nth=0").startswith("3幢-203")
    laptop.screenshot(path=os.path.join(screenshot_dir, "rounds-7-qr-sheet.png"), full_page=True)
