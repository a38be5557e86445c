"""End to end in headless Chromium (issue 14, finding 1): a second browser holding a unit's link locks itself
out with wrong answers; the owner's browser still confirms identity and votes; the committee unlocks the link."""

from __future__ import annotations

import re

import pytest

from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.rounds.demo import extend_demo
from tests.conftest import Factory, browser_login

LOCKED = "验证失败次数过多，本设备已暂停验证 15 分钟。请稍后再试，或联系业委会解锁"


@pytest.mark.e2e
def test_a_stranger_locks_only_their_own_browser_and_the_owner_still_votes(live_server, live_app, browser,
                                                                           phone_page, laptop_page):
    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="示范小区", buildings={"2幢": [("101", "88.50"), ("102", "75.18")],
                                                   "3幢": [("203", "92.60")], "4幢": [("305", "118.75")]})
        f.user("committee", estate=estate, username="chen")
        lines = extend_demo(estate, utcnow())
        estate_id = estate.id
        unit_id = next(u.id for b in estate.buildings for u in b.units if u.label == "2幢-101")
        _db.session.commit()
        _db.session.remove()
    demo = next(line for line in lines if "2幢-101" in line)
    token, name, last4 = re.search(r"/v/(\S+)\s+业主 (\S+)\s+手机后4位 (\d{4})", demo).groups()
    wrong = "0000" if last4 != "0000" else "1111"

    stranger_ctx = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    try:
        stranger = stranger_ctx.new_page()
        stranger.goto(f"{live_server}/v/{token}")
        messages = []
        for _ in range(5):
            stranger.fill("#name", name)
            stranger.fill("#phone_last4", wrong)
            stranger.click("#confirm-identity")
            messages.append(stranger.inner_text("#identity-error").strip())
        assert messages == [f"姓名或手机号后 4 位与本户登记信息不符，还可以再试 {n} 次" for n in (4, 3, 2, 1)] + [
            "姓名或手机号后 4 位与本户登记信息不符。" + LOCKED]
        # Locked: even the right answer is refused on this browser.
        stranger.fill("#name", name)
        stranger.fill("#phone_last4", last4)
        stranger.click("#confirm-identity")
        assert stranger.inner_text("#identity-error").strip() == LOCKED
        assert "/v/" in stranger.url

        # The owner's phone (same address, its own browser) confirms identity and votes.
        page = phone_page
        page.goto(f"{live_server}/v/{token}")
        page.fill("#name", name)
        page.fill("#phone_last4", last4)
        page.click("#confirm-identity")
        page.wait_for_url(re.compile(r".*/r/home"))
        page.click("a.round-link")
        page.check("#choice-agree")
        page.click("#next")
        page.check("#item-roof")
        page.click("#next")
        assert page.inner_text("#chosen") == "同意改造"
        page.click("#cast")
        assert re.fullmatch(r"[0-9a-f]{20}", page.inner_text("#receipt-code").strip())

        # The committee sees the lock and lifts it (a CSRF-protected form); the stranger's browser may try again.
        laptop = laptop_page
        browser_login(laptop, live_server, "chen")
        laptop.goto(f"{live_server}/estates/{estate_id}/links")
        assert "1 台设备已锁定" in laptop.inner_text(f"#locks-{unit_id}")
        laptop.click(f"#unlock-{unit_id}")
        assert "2幢-101 的二维码已解除验证锁定（清除 5 次失败记录）" in laptop.inner_text("body")
        stranger.fill("#name", name)
        stranger.fill("#phone_last4", wrong)
        stranger.click("#confirm-identity")
        again = stranger.inner_text("#identity-error").strip()
        assert again == "姓名或手机号后 4 位与本户登记信息不符，还可以再试 4 次"
    finally:
        stranger_ctx.close()
