"""End to end in headless Chromium (phone): a resident's statement with a funding source's offset and the
settlement line, and the finance publicity on the public board. Screenshots go to docs/screenshots/money-*.png
(and a copy to /tmp/i15-*.png)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from datetime import date, timedelta

import pytest

from residents_app.auth.resident import hash_token, new_token
from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.registry.models import UnitLink
from tests.conftest import Factory


def _shot(page, screenshot_dir, name):
    path = os.path.join(screenshot_dir, f"money-{name}.png")
    page.screenshot(path=path, full_page=True)
    shutil.copyfile(path, os.path.join(tempfile.gettempdir(), f"i15-{name}.png"))


@pytest.mark.e2e
def test_resident_statement_offset_settlement_and_finance_board(live_server, live_app, phone_page, screenshot_dir):
    from residents_app.core.calendar import beijing_date
    from residents_app.funding import finance, sources
    from residents_app.funding import services as funding_svc
    from residents_app.funding import settlement as settlement_svc
    from residents_app.plans import services as plan_svc
    from residents_app.rounds.models import Round, RoundResult

    with live_app.app_context():
        f = Factory(_db)
        estate = f.estate(name="示范小区", code="SF15", buildings={
            "1幢": [("101", "88.50"), ("102", "72.35")], "2幢": [("101", "101.15")]})
        committee = f.user("committee", estate=estate, username="chen15")
        now = utcnow()
        today = beijing_date(now)
        last_month = today.replace(day=1) - timedelta(days=1)
        booked = last_month.replace(day=15)
        plan = plan_svc.create_plan(estate, title="示范小区综合改造方案", user=committee, now=now,
                                    management_plan="物业服务，维修资金按年归集。")
        b1 = next(b for b in estate.buildings if b.name == "1幢")
        plan_svc.add_item(plan, name="雨污分流", category="required", cost_fen=6_000_000, user=committee, now=now)
        plan_svc.add_item(plan, name="外墙整治", category="basic", cost_fen=3_000_000, user=committee, now=now)
        plan_svc.add_item(plan, name="1幢加装电梯", category="upgrade", cost_fen=60_000_000, building_ids=[b1.id],
                          funding_mode="separate", fixed_subsidy_fen=20_000_000, user=committee, now=now)
        plan_svc.publish_plan(plan, user=committee, now=now)
        rnd = Round(estate_id=estate.id, kind="general", title="使用专项维修资金", options=[], status="closed",
                    opens_at=now - timedelta(days=20), closes_at=now - timedelta(days=10),
                    closed_at=now - timedelta(days=10))
        _db.session.add(rnd)
        _db.session.flush()
        _db.session.add(RoundResult(round_id=rnd.id, passed=True, tally={}, closed_at=now - timedelta(days=10)))
        src = sources.add_source(estate, kind="maintenance_fund", amount_fen=1_200_000, provider="住房维修资金中心",
                                 decision_round_id=rnd.id, received_on=booked, into_account=True,
                                 user=committee, now=now)
        sources.attach_evidence(src, filename="到账凭证.pdf", data=b"%PDF-1.4\n%\n", user=committee, now=now)
        units = funding_svc.estate_units(estate.id)
        u0 = units[0]
        c = funding_svc.compute_plan(plan)
        for u in (u for u in units if c.units[u.id].owed_fen):
            funding_svc.record_payment(estate, unit_id=u.id, amount_fen=c.units[u.id].owed_fen, method="bank",
                                       paid_on=booked, reference=f"B-{u.id}", user=committee, now=now)
        s = settlement_svc.settlement_of(plan, create=True, now=now)
        for item in plan.items:  # the wall works cost 1,000.00 more at the audit: everyone tops up a little
            cost = item.cost_fen + (100_000 if item.name == "外墙整治" else 0)
            settlement_svc.set_audited_cost(s, item.id, cost, user=committee, now=now)
        settlement_svc.finalise_settlement(s, user=committee, now=now)
        finance.post_finance_publicity(estate, last_month.year, last_month.month, posted_on=today, user=committee,
                                       now=now)
        token = new_token()
        _db.session.add(UnitLink(unit_id=u0.id, token_hash=hash_token(token)))
        owner = u0.owners[0]
        name, last4, code = owner.name, owner.phone[-4:], estate.code
        offset = c.units[u0.id].offset_fen
        _db.session.commit()
        _db.session.remove()

    page = phone_page
    page.goto(f"{live_server}/v/{token}")
    page.fill("#name", name)
    page.fill("#phone_last4", last4)
    page.click("#confirm-identity")
    page.wait_for_url(re.compile(r".*/r/home"))
    page.goto(f"{live_server}/r/statement")
    assert f"{offset // 100:,}.{offset % 100:02d}" in page.inner_text("#offsets")
    assert page.inner_text("#settlement-state") == "待补缴"
    _shot(page, screenshot_dir, "statement")
    page.goto(f"{live_server}/p/{code}")
    text = page.inner_text("body")
    assert f"{last_month.year} 年 {last_month.month} 月财务收支公示" in text
    assert "收入 · 资金来源：12,000.00 元（1 笔）" in text
    _shot(page, screenshot_dir, "finance-board")
    assert date.today()  # the clock is real here: the live server computes with utcnow()
