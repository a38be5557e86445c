"""End to end in headless Chromium: the committee's plan, funding and start pages on a laptop, and a
resident who opens the unit link, reads the statement and signs the pledge on a phone. Screenshots
go to docs/screenshots/plans-*.png."""

from __future__ import annotations

import os
import re
from datetime import date

import pytest

from residents_app.auth.resident import hash_token, new_token
from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.registry.models import UnitLink
from tests.conftest import Factory, browser_login


@pytest.mark.e2e
def test_plan_pages_and_resident_pledge(live_server, live_app, phone_page, laptop_page, screenshot_dir):
    from residents_app.funding import services as funding_svc
    from residents_app.plans import services as plan_svc

    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="示范小区", buildings={
            "1幢": [("101", "88.50"), ("102", "75.18")], "2幢": [("201", "92.60"), ("202", "102.30")]})
        committee = f.user("committee", estate=estate, username="chen")
        now = utcnow()
        plan = plan_svc.create_plan(estate, title="示范小区综合改造方案", user=committee, now=now,
                                    management_plan="物业服务，维修资金按年归集。")
        b1 = next(b for b in estate.buildings if b.name == "1幢")
        for name, cat, cost, bids in [("雨污分流", "required", 30_000_000, None),
                                      ("外墙整治", "basic", 12_000_000, None),
                                      ("停车位", "improvement", 3_000_000, None),
                                      ("1幢加装电梯", "upgrade", 60_000_000, [b1.id])]:
            plan_svc.add_item(plan, name=name, category=cat, cost_fen=cost, building_ids=bids, user=committee, now=now)
        plan_svc.publish_plan(plan, user=committee, now=now)
        units = funding_svc.estate_units(estate.id)
        u0 = units[0]
        c = funding_svc.compute_plan(plan)
        funding_svc.record_payment(estate, unit_id=units[2].id, amount_fen=c.units[units[2].id].owed_fen,
                                method="bank", paid_on=date.today(), reference="B-001", user=committee, now=now)
        token = new_token()
        _db.session.add(UnitLink(unit_id=u0.id, token_hash=hash_token(token)))
        owner = u0.owners[0]
        name, last4 = owner.name, owner.phone[-4:]
        estate_id, plan_id, owed = estate.id, plan.id, c.units[u0.id].owed_fen
        _db.session.commit()
        _db.session.remove()

    laptop = laptop_page
    browser_login(laptop, live_server, "chen")
    laptop.goto(f"{live_server}/plans/{plan_id}")
    assert laptop.inner_text("#plan-status") == "已发布"
    laptop.screenshot(path=os.path.join(screenshot_dir, "plans-1-plan.png"), full_page=True)
    laptop.goto(f"{live_server}/estates/{estate_id}/funding")
    laptop.fill("#amount_yuan", "100.00")
    laptop.fill("#reference", "W-7")
    laptop.click("#add-payment button[type=submit]")
    laptop.wait_for_selector(".flash-success")
    assert "已记账" in laptop.inner_text(".flash-success")
    laptop.screenshot(path=os.path.join(screenshot_dir, "plans-2-funding.png"), full_page=True)
    laptop.goto(f"{live_server}/estates/{estate_id}/start")
    assert "✘ 未满足" in laptop.inner_text("li[data-key=plan_vote]")
    laptop.screenshot(path=os.path.join(screenshot_dir, "plans-3-start.png"), full_page=True)

    page = phone_page
    page.goto(f"{live_server}/v/{token}")
    page.fill("#name", name)
    page.fill("#phone_last4", last4)
    page.click("#confirm-identity")
    page.wait_for_url(re.compile(r".*/r/home"))
    page.goto(f"{live_server}/r/plan")
    page.screenshot(path=os.path.join(screenshot_dir, "plans-4-resident-plan.png"), full_page=True)
    page.goto(f"{live_server}/r/statement")
    assert page.inner_text("#owed") == f"{owed // 100:,}.{owed % 100:02d} 元"
    page.screenshot(path=os.path.join(screenshot_dir, "plans-5-statement.png"), full_page=True)
    page.goto(f"{live_server}/r/pledge")
    page.check("#confirm")
    page.click("#sign")
    page.wait_for_selector("#pledge-state")
    assert page.inner_text("#pledge-state") == f"已签署：承诺出资 {owed // 100:,}.{owed % 100:02d} 元"
    page.screenshot(path=os.path.join(screenshot_dir, "plans-6-pledge.png"), full_page=True)
