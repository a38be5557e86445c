"""Walkthrough per role on the demo estate, in headless Chromium (issue 18).

A resident on a 375×812 phone (scan the link → identity → vote → receipt → home, plan, statement,
pledge, publicity, objection), the committee and the street office on a 1280×900 laptop (their main
pages). Every page visited is checked for what got in the way of a real user:

- no horizontal overflow (``scrollWidth <= innerWidth``);
- no visible error code or raw enum (``[a-z]+_[a-z_]+`` in ``innerText``);
- on the phone, every visible clickable element at least 44×44 px (a checkbox or radio counts by its label);
- contrast at least 4.5:1 (WCAG 2) for buttons and messages;
- no console error, no failed page script, no request to another host.

The taps from opening the scanned link to a cast vote are counted and printed.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from residents_app.db import utcnow
from residents_app.extensions import db as _db

pytestmark = pytest.mark.e2e

RAW_CODE = re.compile(r"\b[a-z]+_[a-z_]+\b")
RAW_ACTOR = re.compile(r"\b(?:user|unit|system):[\w:/]+")  # the log's actor strings, never shown as they are
MIN_TAP_PX = 44
MIN_CONTRAST = 4.5

# One evaluate per page: overflow, raw codes, small tap targets, low-contrast buttons and messages.
PAGE_PROBE = r"""
(phone) => {
  const out = {overflow: null, small: [], lowContrast: [], text: document.body.innerText};
  const de = document.documentElement;
  if (de.scrollWidth > window.innerWidth) out.overflow = [de.scrollWidth, window.innerWidth];
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    const s = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && s.display !== 'none'
      && !el.closest('details:not([open]) > :not(summary)');
  };
  const name = (el) => (el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + ' "' + (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 24) + '"');
  if (phone) {
    const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [role=button]';
    for (const el of document.querySelectorAll(sel)) {
      if (!visible(el)) continue;
      let box = el;
      if (el.matches('input[type=checkbox], input[type=radio]')) {
        box = el.closest('label') || (el.id && document.querySelector(`label[for="${el.id}"]`)) || el;
      }
      const r = box.getBoundingClientRect();
      if (r.width < 43.5 || r.height < 43.5) {
        out.small.push(`${name(el)} ${Math.round(r.width)}×${Math.round(r.height)}`);
      }
    }
  }
  const rgb = (c) => { const m = c.match(/[\d.]+/g); return m ? m.map(Number) : [0, 0, 0, 0]; };
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const msgSel = 'button, input[type=submit], .button, a.round-link, .flash, .errors li, .error, '
    + '.field-error, .notice, .ok, .bad, .muted';
  for (const el of document.querySelectorAll(msgSel)) {
    if (!visible(el) || !(el.innerText || el.value || '').trim()) continue;
    const fg = lum(rgb(getComputedStyle(el).color));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) out.lowContrast.push(`${name(el)} ${ratio.toFixed(2)}:1`);
  }
  return out;
}
"""


class Walk:
    """A page under watch: every visited page is checked, every problem collected with its URL."""

    def __init__(self, page, base: str, phone: bool, shots: str, prefix: str):
        self.page, self.base, self.phone, self.shots, self.prefix = page, base, phone, shots, prefix
        self.problems: list[str] = []
        self.taps = 0
        self.count = 0
        host = urlsplit(base).netloc
        def on_console(msg):
            # A form sent back with its errors is a 422 document: Chromium logs its status, which is no fault
            # of the page (navigations are checked for their status in goto()).
            own_document = msg.text.startswith("Failed to load resource") and msg.location.get("url") == page.url
            if msg.type == "error" and not own_document:
                self.problems.append(f"{page.url}: console: {msg.text} ({msg.location.get('url')})")
        page.on("console", on_console)
        page.on("pageerror", lambda e: self.problems.append(f"{page.url}: script error: {e}"))

        def on_request(req):
            parts = urlsplit(req.url)
            if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
                self.problems.append(f"{page.url}: request to another host: {req.url}")
        page.on("request", on_request)

    def goto(self, path: str, name: str):
        resp = self.page.goto(self.base + path)
        assert resp is not None and resp.status < 400, f"{path}: HTTP {resp and resp.status}"
        self.check(name)

    def tap(self, selector: str):
        self.taps += 1
        self.page.click(selector)

    def fill(self, selector: str, value: str):
        self.taps += 1
        self.page.fill(selector, value)

    def check(self, name: str):
        self.page.wait_for_load_state("load")
        url = self.page.url.replace(self.base, "")
        found = self.page.evaluate(PAGE_PROBE, self.phone)
        if found["overflow"]:
            self.problems.append(f"{url}: horizontal overflow {found['overflow'][0]} > {found['overflow'][1]} px")
        for code in sorted(set(RAW_CODE.findall(found["text"])) | set(RAW_ACTOR.findall(found["text"]))):
            self.problems.append(f"{url}: raw code on the page: {code}")
        self.problems.extend(f"{url}: tap target under 44×44: {s}" for s in found["small"])
        self.problems.extend(f"{url}: contrast under 4.5:1: {s}" for s in found["lowContrast"])
        self.count += 1
        self.page.screenshot(path=os.path.join(self.shots, f"walk-{self.prefix}-{self.count:02d}-{name}.png"),
                             full_page=True)


def _load_demo() -> dict:
    from residents_app.demo import ESTATE_CODE, load_demo
    from residents_app.plans.models import PlanVersion
    from residents_app.publicity.models import Publicity
    from residents_app.registry.models import Estate
    from residents_app.rounds.models import Round

    lines = load_demo(utcnow())
    _db.session.commit()
    estate = _db.session.execute(sa.select(Estate).where(Estate.code == ESTATE_CODE)).scalar_one()
    world = {"estate_id": estate.id, "estate_code": estate.code, "lines": lines}
    world["round_id"] = _db.session.execute(sa.select(Round.id).where(Round.estate_id == estate.id)).scalar()
    world["plan_id"] = _db.session.execute(sa.select(PlanVersion.id).where(PlanVersion.estate_id == estate.id)
                                           .order_by(PlanVersion.id.desc())).scalar()
    world["publicity_id"] = _db.session.execute(sa.select(Publicity.id).where(Publicity.estate_id == estate.id)
                                                ).scalar()
    _db.session.remove()
    return world


@pytest.fixture
def demo(live_server, live_app):
    with live_app.app_context():
        return _load_demo()


def _report(walk: Walk) -> None:
    counted: dict[str, int] = {}
    for p in walk.problems:
        counted[p] = counted.get(p, 0) + 1
    lines = [p if n == 1 else f"{p} (×{n})" for p, n in counted.items()]
    assert not lines, "\n".join([f"{len(walk.problems)} problems:"] + lines)


def test_resident_walkthrough_on_a_phone(demo, live_server, phone_page, screenshot_dir):
    line = next(x for x in demo["lines"] if "/v/" in x)
    token, name, last4 = re.search(r"/v/(\S+)\s+业主 (\S+)\s+手机后4位 (\d{4})", line).groups()
    walk = Walk(phone_page, live_server, phone=True, shots=screenshot_dir, prefix="resident")
    page = phone_page

    # Scanning the code opens the link: no tap yet.
    walk.goto(f"/v/{token}", "identity")
    walk.fill("#name", name)
    walk.fill("#phone_last4", last4)
    walk.tap("#confirm-identity")
    page.wait_for_url(re.compile(r".*/r/home"))
    walk.check("home")
    # The long way (the vote page: choices first, the rule folded below) is checked but not counted...
    walk.goto(page.get_attribute("a.round-link", "href"), "vote")
    assert page.inner_text("#step").startswith("第 1 步 / 共 3 步")
    page.go_back()
    # ...the short one is: a choice on the home card, then the confirmation.
    walk.tap("button.choice-button[value=disagree]")
    walk.check("confirm")
    assert page.inner_text("#chosen") == "不同意改造"
    walk.tap("#cast")
    page.wait_for_selector("#receipt-code")
    print(f"\ntaps from scanning to a cast vote: {walk.taps}")
    walk.check("receipt")
    code = page.inner_text("#receipt-code").strip()

    walk.goto(f"/receipt?code={code}", "receipt-check")
    walk.goto("/r/home", "home-after")
    for path, shot in (("/r/plan", "plan"), ("/r/statement", "statement"), ("/r/pledge", "pledge"),
                       ("/r/publicity", "publicity"), ("/r/objections", "objections"),
                       (f"/p/{demo['estate_code']}", "board")):
        walk.goto(path, shot)
    # A dead link: the resident's words, what to do next, back to the unit's home (never the staff login).
    resp = page.goto(f"{live_server}/r/rounds/999999")
    assert resp.status == 404
    walk.check("not-found")
    assert "请回到本户首页重新进入" in page.inner_text("main")
    assert page.get_attribute("#back-home", "href") == "/r/home"
    _report(walk)
    assert walk.taps == 5  # name, phone, 确认身份, 不同意改造, 确认提交


def _staff_walk(walk: Walk, demo: dict, pages: list[tuple[str, str]]) -> None:
    for path, shot in pages:
        walk.goto(path.format(**demo), shot)


def test_committee_walkthrough_on_a_laptop(demo, live_server, laptop_page, screenshot_dir):
    from tests.conftest import browser_login

    walk = Walk(laptop_page, live_server, phone=False, shots=screenshot_dir, prefix="committee")
    browser_login(laptop_page, live_server, "committee", "demo-committee-2026")
    walk.check("landing")
    _staff_walk(walk, demo, [
        ("/dashboard", "dashboard"), ("/estates/{estate_id}/dashboard", "estate-dashboard"),
        ("/estates/{estate_id}", "estate"), ("/estates/{estate_id}/units", "units"),
        ("/estates/{estate_id}/rounds", "rounds"), ("/rounds/{round_id}", "round"),
        ("/estates/{estate_id}/rounds/new", "round-new"), ("/estates/{estate_id}/links", "links"),
        ("/estates/{estate_id}/publicity", "publicity"), ("/publicity/{publicity_id}", "publicity-detail"),
        ("/estates/{estate_id}/plans", "plans"), ("/plans/{plan_id}", "plan"),
        ("/estates/{estate_id}/funding", "funding"), ("/estates/{estate_id}/sources", "sources"),
        ("/estates/{estate_id}/start", "start"),
    ])
    # A paper ballot without its scan: the same form comes back with the unit and the choice kept.
    walk.goto("/rounds/{round_id}".format(**demo), "round-paper")
    laptop_page.fill("#paper-unit", "3幢-201")
    laptop_page.select_option("#paper-choice", "disagree")
    laptop_page.evaluate("document.querySelector('#scan').removeAttribute('required')")
    laptop_page.click("#paper-submit")
    walk.check("round-paper-error")
    assert laptop_page.input_value("#paper-unit") == "3幢-201"
    assert laptop_page.input_value("#paper-choice") == "disagree"
    assert laptop_page.inner_text("#paper-scan-error").startswith("请选择纸质票扫描件（可接受：")
    _report(walk)


def test_street_office_walkthrough_on_a_laptop(demo, live_server, laptop_page, screenshot_dir):
    from tests.conftest import browser_login

    walk = Walk(laptop_page, live_server, phone=False, shots=screenshot_dir, prefix="street")
    browser_login(laptop_page, live_server, "street", "demo-street-2026")
    walk.check("landing")
    _staff_walk(walk, demo, [
        ("/district", "district"), ("/estates/{estate_id}/dashboard", "estate-dashboard"),
        ("/estates/{estate_id}/rounds", "rounds"), ("/rounds/{round_id}", "round"),
        ("/rounds/{round_id}/verify", "verify"), ("/estates/{estate_id}/publicity", "publicity"),
        ("/estates/{estate_id}/plans", "plans"), ("/estates/{estate_id}/funding", "funding"),
        ("/estates/{estate_id}/start", "start"), ("/street/rule", "rule"),
    ])
    _report(walk)


def test_staff_pages_do_not_overflow_a_phone(demo, live_server, phone_page, screenshot_dir):
    """A committee member opening the staff pages on a phone: no page scrolls sideways (tap sizes and the rest
    are the laptop walkthrough's business)."""
    from tests.conftest import browser_login

    browser_login(phone_page, live_server, "committee", "demo-committee-2026")
    wide = []
    for path in ("/estates/{estate_id}/dashboard", "/estates/{estate_id}/rounds", "/rounds/{round_id}",
                 "/estates/{estate_id}/rounds/new", "/estates/{estate_id}/links", "/estates/{estate_id}/publicity",
                 "/publicity/{publicity_id}", "/estates/{estate_id}/plans", "/plans/{plan_id}",
                 "/estates/{estate_id}/funding", "/estates/{estate_id}/start", "/estates/{estate_id}/units"):
        phone_page.goto(live_server + path.format(**demo))
        width = phone_page.evaluate("document.documentElement.scrollWidth")
        if width > 375:
            wide.append(f"{path}: {width} px")
    assert wide == []


def test_qr_sheet_has_a_print_button_and_the_board_opens_with_its_notices(demo, live_server, laptop_page,
                                                                         phone_page, screenshot_dir):
    from tests.conftest import browser_login

    walk = Walk(laptop_page, live_server, phone=False, shots=screenshot_dir, prefix="sheet")
    browser_login(laptop_page, live_server, "committee", "demo-committee-2026")
    laptop_page.goto(live_server + "/estates/{estate_id}/links".format(**demo))
    laptop_page.select_option("#building_id", label="3幢")
    laptop_page.check("input[name=reissue]")
    laptop_page.click("#make-sheet")
    walk.check("qr-sheet")
    assert laptop_page.is_visible("#print-sheet")
    size = laptop_page.evaluate("parseFloat(getComputedStyle(document.querySelector('.qr-card .howto')).fontSize)")
    assert size >= 15  # 11.5 pt
    _report(walk)

    board = Walk(phone_page, live_server, phone=True, shots=screenshot_dir, prefix="board")
    board.goto(f"/p/{demo['estate_code']}", "board")
    assert not phone_page.is_visible(".board-head figure")
    first = phone_page.locator("h2").first.bounding_box()
    assert first["y"] < 300
