"""Issue 15 item 3: subsidy rules as settings: the Zhuhai match (1:1, at most 5,000 yuan per household), picked by
the street office on a page with a preview on one estate, the change logged."""

from __future__ import annotations

from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.core.money import ItemIn, Rule, UnitIn, compute_contributions, match_amount
from residents_app.funding import services as funding_svc
from residents_app.funding import subsidy_rules


def test_zhuhai_match_on_a_household_paying_6000_and_one_paying_3000():
    rule = Rule.zhuhai()
    assert (rule.kind, rule.match_ratio, rule.match_limit_fen) == ("match", Fraction(1), 500_000)
    assert match_amount(600_000, rule) == 500_000
    assert match_amount(300_000, rule) == 300_000
    # cost shares 11,000 and 6,000 yuan (110 and 60 m² of one 17,000-yuan item)
    units = [UnitIn("a", "110.00"), UnitIn("b", "60.00")]
    c = compute_contributions([ItemIn(1, "外墙", "basic", 1_700_000, ("a", "b"))], units, rule)
    assert (c.units["a"].owed_fen, c.units["a"].matched_fen) == (600_000, 500_000)
    assert (c.units["b"].owed_fen, c.units["b"].matched_fen) == (300_000, 300_000)
    assert (c.items[0].resident_fen, c.items[0].subsidy_fen, c.subsidy_total_fen) == (900_000, 800_000, 800_000)
    assert c.excess_fen == 0


def test_match_rule_leaves_items_outside_the_subsidy_alone_and_splits_the_match_over_items():
    units = [UnitIn("a", "50"), UnitIn("b", "50")]
    items = [ItemIn(1, "外墙", "basic", 1_000_001, ("a", "b")), ItemIn(2, "屋面", "upgrade", 333, ("a", "b")),
             ItemIn(3, "门窗", "basic", 100_000, ("a",), mode="self_paid")]
    c = compute_contributions(items, units, Rule.zhuhai())
    # a: cost shares 500,001 + 167 = 500,168 -> match 250,084; b: 500,000 + 166 -> match 250,083
    assert (c.units["a"].matched_fen, c.units["b"].matched_fen) == (250_084, 250_083)
    assert (c.units["a"].owed_fen, c.units["b"].owed_fen) == (250_084 + 100_000, 250_083)
    assert sum(i.resident_fen for i in c.items) + c.subsidy_total_fen == c.total_cost_fen
    assert c.items[2].subsidy_fen == 0


def test_street_office_previews_then_saves_the_zhuhai_rule(client, login_as, world, db):
    world.plan()
    login_as(client, world.street)
    form = {"kind": "match", "match_ratio_pct": "100", "match_limit_yuan": "5000", "estate_id": str(world.estate.id)}
    page = client.get("/street/rule", query_string=form).get_data(as_text=True)
    assert "政府按居民出资 1:1 配套，每户最多 5,000 元" in page
    # seed-001 rule: residents pay 11,000.00; matched: 10,000 + 5,000 + 10,000 = 25,000.00
    assert '<td class="num" id="new-owed">25,000.00</td>' in page
    assert "11,000.00" in page
    assert funding_svc.compute_plan(world.plan(publish=False)).owed_total_fen == 1_100_000  # nothing saved yet
    resp = client.post("/street/rule", data={**form, "save": "1"})
    assert resp.status_code == 302
    db.session.expire_all()
    plan = world.plan(publish=False)
    c = funding_svc.compute_plan(plan)
    assert [c.units[u.id].owed_fen for u in world.units] == [1_000_000, 500_000, 1_000_000]
    st = funding_svc.unit_statement(plan, world.u201)
    assert st["matched_fen"] == 500_000
    assert st["lines"][0].explanation == (
        "雨污分流（必选，全小区）费用 10,000.00 元，政府按居民出资配套 3,666.67 元，居民承担 6,333.33 元；"
        "费用按产权面积分摊给 3 户（共 200.00 m²），本户 100.00 m² 分摊 5,000.00 元，政府配套 1,666.67 元，"
        "应摊 3,333.33 元")
    ev = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "plans.rule_set")).scalars().all()[-1]
    assert ev.data["before"] == "居民出资：必选 0%，基础 10%，完善 30%，提升 70%；政府补助每平方米不超过 400 元"
    assert ev.data["after"] == "政府按居民出资 1:1 配套，每户最多 5,000 元"
    page = client.get("/street/rule").get_data(as_text=True)
    assert "政府按居民出资 1:1 配套，每户最多 5,000 元" in page and '<a href="/street/rule">补助规则</a>' in page


def test_rule_page_refuses_bad_input_and_other_roles(client, login_as, world):
    login_as(client, world.street)
    resp = client.post("/street/rule", data={"kind": "match", "match_ratio_pct": "0", "match_limit_yuan": "0",
                                             "save": "1"})
    assert resp.status_code == 422
    assert subsidy_rules.current_rule(world.office.id).kind == "category"
    client.get("/logout")
    login_as(client, world.committee)
    assert client.get("/street/rule").status_code == 404
