"""End to end in headless Chromium: the public board on a phone (and as an A4 print), a resident's
objection through the unit link, the committee's page listing why the publicity cannot end yet,
and the administrator's calendar page."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from residents_app.core.calendar import beijing_date
from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.publicity import services
from tests.conftest import Factory, browser_login

from .conftest import PDF


@pytest.mark.e2e
def test_board_objection_committee_and_calendar_pages(live_server, live_app, phone_page, laptop_page,
                                                      screenshot_dir, tmp_path):
    from residents_app.rounds.links import issue_links

    now = utcnow()
    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="示范小区", buildings={
            "1幢": [("101", "88.50"), ("102", "75.18"), ("103", "92.60")],
            "2幢": [("201", "102.30"), ("202", "118.75"), ("1001", "62.35")]})
        units = {u.label: u for b in estate.buildings for u in b.units}
        units["1幢-102"].is_hardship = True
        units["2幢-1001"].is_hardship = True
        f.user("committee", estate=estate, username="chen")
        f.user("admin", username="root")
        pub = services.post_publicity(
            estate, subject_type="hardship_list", subject_id=estate.id, title="示范小区困难群众名单公示",
            notice_text="经业委会入户核实，拟将下列住户列入困难群众名单，其改造出资由政府补助或减免。",
            posted_on=beijing_date(now), working_days=5, actor="system:test", now=now)
        services.add_document(pub, "困难群众名单.pdf", PDF, actor="system:test", now=now)
        links = dict((u.label, tok) for u, tok in issue_links(estate.id, now))
        resident = units["1幢-101"]
        name, last4 = resident.owners[0].name, resident.owners[0].phone[-4:]
        code, pub_id, last_day, estate_id = estate.code, pub.id, pub.last_day, estate.id
        period = services.period_text(pub)
        _db.session.commit()
        _db.session.remove()

    # The public board on a phone, no login.
    page = phone_page
    page.goto(f"{live_server}/p/{code}")
    card = page.inner_text(f"#publicity-{pub_id}")
    assert period in card and "1幢-102、2幢-1001" in card and name not in page.content()
    page.screenshot(path=os.path.join(screenshot_dir, "publicity-1-board-phone.png"), full_page=True)
    pdf_path = tmp_path / "board.pdf"
    page.pdf(path=str(pdf_path), format="A4", print_background=False)
    info = subprocess.run(["pdfinfo", str(pdf_path)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Page size:\s+59[56](\.\d+)? x 84[12](\.\d+)? pts \(A4\)", info)
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf_path),
                    os.path.join(screenshot_dir, "publicity-2-board-print-a4")], check=True)

    # A resident opens the unit link, confirms identity, raises an objection.
    page.goto(f"{live_server}/v/{links['1幢-101']}")
    page.fill("#name", name)
    page.fill("#phone_last4", last4)
    page.click("#confirm-identity")
    page.wait_for_url(re.compile(r".*/r/home"))
    page.goto(f"{live_server}/r/publicity")
    page.click("text=对此公示提出异议")
    page.fill("#text", "我家 1幢-103 的邻居常年卧病，也应列入名单，请核实。")
    page.screenshot(path=os.path.join(screenshot_dir, "publicity-3-objection-phone.png"), full_page=True)
    page.click("#objection-form button[type=submit]")
    page.wait_for_url(re.compile(r".*/r/objections$"))
    assert "待处理" in page.inner_text("main")

    # The committee sees why the publicity cannot end yet.
    laptop = laptop_page
    browser_login(laptop, live_server, "chen")
    laptop.goto(f"{live_server}/publicity/{pub_id}")
    reasons = laptop.inner_text("#reasons")
    assert f"公示期尚未届满（截至 {last_day:%Y-%m-%d} 24:00）" in reasons
    assert "还有 1 条异议尚未处理" in reasons
    laptop.screenshot(path=os.path.join(screenshot_dir, "publicity-4-committee.png"), full_page=True)
    laptop.goto(f"{live_server}/estates/{estate_id}/publicity")
    assert "示范小区困难群众名单公示" in laptop.inner_text("#publicity-list")
    laptop.screenshot(path=os.path.join(screenshot_dir, "publicity-6-committee-list.png"), full_page=True)

    # The administrator's calendar page (the real clock is in 2026, so 2027 is missing).
    laptop.click("text=退出")
    browser_login(laptop, live_server, "root")
    laptop.goto(f"{live_server}/admin/calendar")
    if beijing_date(utcnow()).year == 2026:
        assert "明年（2027 年）的节假日安排尚未录入" in laptop.inner_text("#warn-next-year")
    laptop.screenshot(path=os.path.join(screenshot_dir, "publicity-5-admin-calendar.png"), full_page=True)


@pytest.mark.e2e
def test_committee_publishes_the_frozen_roll_and_the_board_shows_it(live_server, live_app, laptop_page, phone_page,
                                                                    screenshot_dir):
    from datetime import timedelta

    from residents_app.rounds import services as rounds

    now = utcnow()
    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="名册小区", buildings={"1幢": [("101", "88.50"), ("102", "75.18")],
                                                     "2幢": [("201", "102.30")]})
        user = f.user("committee", estate=estate, username="roll")
        rnd = rounds.create_round(estate.id, rounds.RoundInput(kind="willingness", title="外立面改造意愿征求",
                                                               opens_at=now, closes_at=now + timedelta(days=14)),
                                  now, user)
        rounds.open_round(rnd.id, now, user)
        round_id, code = rnd.id, estate.code
        owner_names = [o.name for b in estate.buildings for u in b.units for o in u.owners]
        _db.session.commit()
        _db.session.remove()

    laptop = laptop_page
    browser_login(laptop, live_server, "roll")
    laptop.goto(f"{live_server}/rounds/{round_id}/roll")
    laptop.click("#publish-roll")
    assert laptop.input_value("#subject") == f"round_roll:{round_id}"
    laptop.fill("#title", "外立面改造表决名册公示")
    laptop.fill("#notice_text", "本次表决的名册已于表决开启时冻结，请各位业主核对房号和产权面积。")
    laptop.click("#post-form button[type=submit]")
    assert "已发布公示：外立面改造表决名册公示" in laptop.content()
    laptop.goto(f"{live_server}/rounds/{round_id}/roll")
    assert "名册公示" in laptop.inner_text("#roll-publicity")
    laptop.screenshot(path=os.path.join(screenshot_dir, "rounds-8-roll-publicity.png"), full_page=True)

    phone_page.goto(f"{live_server}/p/{code}")
    board = phone_page.content()
    assert "1幢-101（88.50 m²）" in board and "表决名册共 3 户，产权面积合计 265.98 m²" in board
    assert not any(name in board for name in owner_names)
    phone_page.screenshot(path=os.path.join(screenshot_dir, "publicity-7-roll-board-phone.png"), full_page=True)
