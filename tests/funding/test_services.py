"""Money: statements, the cap, hardship, pledges, payments, settlement, the rule CLI."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, Forbidden, ValidationFailed
from residents_app.funding import services as funding_svc
from residents_app.funding import settlement as settlement_svc
from residents_app.plans import services as plan_svc


def kinds(db, estate_id):
    return list(db.session.execute(sa.select(AuditEvent.kind).where(AuditEvent.chain == estate_id)
                                   .order_by(AuditEvent.seq)).scalars())



def test_statement_split_by_category_and_building_scope(world):
    plan = world.plan()
    c = funding_svc.compute_plan(plan)
    # required 0, basic 100,000, improvement 300,000 over 200 m²; lift 700,000 over 1幢 (100 m²)
    assert [i.resident_fen for i in c.items] == [0, 100_000, 300_000, 700_000]
    assert c.units[world.u101.id].share_fen == 30_000 + 90_000 + 420_000
    assert c.units[world.u102.id].share_fen == 20_000 + 60_000 + 280_000
    assert c.units[world.u201.id].share_fen == 50_000 + 150_000
    assert c.resident_total_fen == 1_100_000
    assert c.cap_fen == 8_000_000 and c.excess_fen == 0

    st = funding_svc.unit_statement(plan, world.u201)
    assert [ln.item.name for ln in st["lines"]] == ["雨污分流", "外墙保温", "停车位改造"]
    assert st["owed_fen"] == 200_000
    assert st["lines"][1].explanation == (
        "外墙保温（基础，全小区）费用 10,000.00 元，居民承担 10% 即 1,000.00 元；共 1,000.00 元按产权面积"
        "分摊给 3 户（共 200.00 m²），本户 100.00 m²，应摊 500.00 元")


def test_cap_above_and_below(world):
    # 200 m² -> cap 8,000,000 fen. Required items are fully subsidised.
    below = world.plan(items=[("雨污分流", "required", 8_000_000, None)])
    c = funding_svc.compute_plan(below)
    assert (c.subsidy_total_fen, c.excess_fen, c.resident_total_fen) == (8_000_000, 0, 0)

    draft = plan_svc.new_version(below, user=world.committee, now=world.now)
    plan_svc.update_item(draft.items[0], name="雨污分流", category="required", cost_fen=8_100_000,
                         user=world.committee, now=world.now)
    plan_svc.add_item(draft, name="1幢屋面", category="basic", cost_fen=1_000_000, building_ids=[world.b1.id],
                      user=world.committee, now=world.now)
    c = funding_svc.compute_plan(draft)
    # subsidies 8,100,000 + 900,000 = 9,000,000 -> excess 1,000,000 by subsidy: 900,000 / 100,000
    assert c.excess_fen == 1_000_000
    assert [i.excess_fen for i in c.items] == [900_000, 100_000]
    assert [i.resident_fen for i in c.items] == [900_000, 200_000]
    assert c.subsidy_total_fen == 8_000_000
    assert c.units[world.u101.id].owed_fen == 270_000 + 120_000
    assert c.units[world.u102.id].owed_fen == 180_000 + 80_000
    assert c.units[world.u201.id].owed_fen == 450_000


def test_contribution_rule_of_the_street_office(world):
    funding_svc.set_contribution_rule(world.office.id, pct={"required": 0, "basic": 20, "improvement": 30,
                                                         "upgrade": 70}, cap_fen_per_m2=40000,
                                   user=world.street, now=world.now)
    plan = world.plan(items=[("外墙", "basic", 1_000_000, None)])
    assert funding_svc.compute_plan(plan).resident_total_fen == 200_000
    with pytest.raises(ValidationFailed) as info:
        funding_svc.set_contribution_rule(world.office.id, pct={"required": 0, "basic": 120, "improvement": 30,
                                                             "upgrade": 70}, cap_fen_per_m2=40000,
                                       user=world.street, now=world.now)
    assert info.value.errors == {"basic": ["基础类居民出资比例必须是 0 到 100 之间的整数"]}


def test_hardship_exemption_shows_who_covers(world):
    funding_svc.set_hardship(world.estate, world.u102, mode="exempt", covered_by="街道", user=world.committee,
                          now=world.now)
    funding_svc.set_hardship(world.estate, world.u201, mode="partial", subsidy_fen=50_000, covered_by="慈善",
                          user=world.committee, now=world.now)
    plan = world.plan()
    st = funding_svc.unit_statement(plan, world.u102)
    assert (st["share_fen"], st["covered_fen"], st["owed_fen"], st["covered_by"]) == (360_000, 360_000, 0, "街道")
    st = funding_svc.unit_statement(plan, world.u201)
    assert (st["share_fen"], st["covered_fen"], st["owed_fen"]) == (200_000, 50_000, 150_000)
    summary = funding_svc.funding_summary(world.estate.id)
    assert summary["owed_fen"] == 540_000 + 0 + 150_000
    assert world.u102.is_hardship is True
    with pytest.raises(ValidationFailed) as info:
        funding_svc.set_hardship(world.estate, world.u101, mode="partial", subsidy_fen=0, covered_by="",
                              user=world.committee, now=world.now)
    assert info.value.errors == {"covered_by": ["请填写承担方（如 街道、社区、慈善），不超过 60 个字"],
                                 "subsidy_fen": ["部分补助的金额必须大于零"]}


def test_pledge_sign_withdraw_window_and_owner(world):
    plan = world.plan(pledge_closes_at=world.later(days=10))
    p = funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.later(hours=1))
    assert (p.amount_fen, p.signed_by_owner_id) == (540_000, world.owner(world.u101).id)
    with pytest.raises(Conflict) as info:
        funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.later(hours=2))
    assert info.value.message == "1幢-101 已签署本版方案的承诺书"
    with pytest.raises(Forbidden):
        funding_svc.sign_pledge(plan, world.u102, world.owner(world.u101), now=world.later(hours=2))
    funding_svc.withdraw_pledge(plan, world.u101, world.owner(world.u101), now=world.later(hours=3))
    assert funding_svc.active_pledge(plan, world.u101) is None
    funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.later(hours=4))
    with pytest.raises(Conflict) as info:
        funding_svc.sign_pledge(plan, world.u102, world.owner(world.u102), now=world.later(days=10))
    assert info.value.code == "pledge_window_closed"
    assert len(funding_svc.pledges_of(plan, include_withdrawn=True)) == 2


def test_close_due_pledge_windows_is_idempotent(world, db):
    plan = world.plan(pledge_closes_at=world.later(days=3))
    assert funding_svc.close_due_pledge_windows(world.later(days=3, seconds=-1)) == 0
    assert funding_svc.close_due_pledge_windows(world.later(days=5)) == 1
    assert plan.pledge_closed_at == world.later(days=3)
    assert funding_svc.close_due_pledge_windows(world.later(days=6)) == 0
    assert kinds(db, world.estate.id).count("plans.pledge_window_closed") == 1


def test_payments_reversal_and_funding_ratio(world, db):
    world.plan()
    pay = funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=540_000, method="bank",
                                  paid_on=date(2026, 9, 1), reference="B001", user=world.committee, now=world.now)
    wrong = funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=300_000, method="cash",
                                    paid_on=date(2026, 9, 1), user=world.committee, now=world.now)
    rev = funding_svc.reverse_payment(wrong, reason="金额录错", user=world.committee, now=world.now)
    assert (rev.amount_fen, rev.reverses_id) == (-300_000, wrong.id)
    funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=250_000, method="cash",
                            paid_on=date(2026, 9, 1), user=world.committee, now=world.now)
    s = funding_svc.funding_summary(world.estate.id)
    # owed 540,000 + 360,000 + 200,000; paid 540,000 + 0 + 250,000 (50,000 over for 2-101, not counted)
    assert (s["owed_fen"], s["paid_fen"], s["counted_fen"]) == (1_100_000, 790_000, 740_000)
    assert s["ratio"] == Fraction(740_000, 1_100_000) and s["ratio_pair"] == (740_000, 1_100_000)
    assert funding_svc.format_ratio(s["ratio"]) == "67.27%"
    b1, b2 = s["buildings"]
    assert (b1["name"], b1["owed_fen"], b1["paid_fen"], b1["owing_units"]) == ("1幢", 900_000, 540_000, 1)
    assert (b2["ratio"], b2["complete"]) == (Fraction(1), True)
    assert [r["unit"].label for r in funding_svc.units_owing(world.estate.id)] == ["1幢-102"]
    with pytest.raises(Conflict) as info:
        funding_svc.reverse_payment(wrong, reason="再冲", user=world.committee, now=world.now)
    assert info.value.message == f"第 {wrong.id} 号记录已被第 {rev.id} 号记录冲正"
    with pytest.raises(Conflict):
        funding_svc.reverse_payment(rev, reason="x", user=world.committee, now=world.now)
    # the ledger is append-only
    pay.amount_fen = 1
    with pytest.raises(Conflict) as info:
        db.session.flush()
    assert info.value.code == "ledger_append_only"


def test_payment_validation(world):
    world.plan()
    with pytest.raises(ValidationFailed) as info:
        funding_svc.record_payment(world.estate, unit_id=999999, amount_fen=-5, method="gold",
                                paid_on=date(2026, 9, 2), user=world.committee, now=world.now)
    assert info.value.errors == {"unit_id": ["该户不属于本小区"],
                                 "amount_fen": ["收款金额必须大于零（冲正请用冲正功能）"],
                                 "method": ["付款方式必须是 现金、银行转账、微信、支付宝 或 其他"],
                                 "paid_on": ["付款日期不能晚于今天"]}


def test_payment_dated_today_in_beijing_is_accepted_after_midnight_there(world):
    """00:30 on 2026-09-02 in Beijing is still 2026-09-01 in UTC: "today" is Beijing's day, both sides of it."""
    from datetime import UTC, datetime

    world.plan()
    just_after_midnight = datetime(2026, 9, 1, 16, 30, tzinfo=UTC)
    pay = funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=100, method="cash",
                                     paid_on=date(2026, 9, 2), user=world.committee, now=just_after_midnight)
    assert pay.paid_on == date(2026, 9, 2)
    with pytest.raises(ValidationFailed) as info:
        funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=100, method="cash",
                                   paid_on=date(2026, 9, 3), user=world.committee, now=just_after_midnight)
    assert info.value.errors == {"paid_on": ["付款日期不能晚于今天"]}


def test_settlement_with_refunds_and_top_ups(world, db):
    plan = world.plan()
    for unit, amount in [(world.u101, 540_000), (world.u102, 360_000), (world.u201, 200_000)]:
        funding_svc.record_payment(world.estate, unit_id=unit.id, amount_fen=amount, method="bank",
                                paid_on=date(2026, 9, 1), user=world.committee, now=world.now)
    s = settlement_svc.settlement_of(plan, create=True, now=world.now)
    costs = {"雨污分流": 1_000_000, "外墙保温": 800_000, "停车位改造": 1_000_000, "1幢加装电梯": 1_100_000}
    for item in plan.items:
        settlement_svc.set_audited_cost(s, item.id, costs[item.name], user=world.committee, now=world.now)
    preview = settlement_svc.settlement_preview(s)
    rows = {r["unit"].label: r for r in preview["rows"]}
    # facade 80,000 (30/20/... by area: 24,000 / 16,000 / 40,000), parking 300,000, lift 770,000 on 1幢
    assert rows["1幢-101"]["final_owed_fen"] == 24_000 + 90_000 + 462_000
    assert rows["1幢-102"]["final_owed_fen"] == 16_000 + 60_000 + 308_000
    assert rows["2幢-101"]["final_owed_fen"] == 40_000 + 150_000
    assert [rows[k]["difference_fen"] for k in ("1幢-101", "1幢-102", "2幢-101")] == [36_000, 24_000, -10_000]
    assert (preview["top_up_fen"], preview["refund_fen"], preview["difference_fen"]) == (60_000, 10_000, 50_000)
    assert preview["final_owed_fen"] - preview["paid_fen"] == preview["difference_fen"]
    settlement_svc.finalise_settlement(s, user=world.committee, now=world.now)
    assert sum(line.difference_fen for line in s.unit_lines) == 50_000
    with pytest.raises(Conflict):
        settlement_svc.set_audited_cost(s, plan.items[0].id, 1, user=world.committee, now=world.now)
    assert "plans.settlement_finalised" in kinds(db, world.estate.id)


def test_settlement_refuses_missing_items(world):
    plan = world.plan()
    s = settlement_svc.settlement_of(plan, create=True, now=world.now)
    settlement_svc.set_audited_cost(s, plan.items[0].id, 900_000, user=world.committee, now=world.now)
    with pytest.raises(Conflict) as info:
        settlement_svc.finalise_settlement(s, user=world.committee, now=world.now)
    assert info.value.message == "还有项目没有填写审计决算金额：外墙保温、停车位改造、1幢加装电梯"


def test_cli_sets_the_rule_of_a_street_office(app, world, db):
    from residents_app.funding.cli import rule_cmd

    runner = app.test_cli_runner()
    result = runner.invoke(rule_cmd, [world.office.code, "--basic", "15", "--cap-yuan-per-m2", "300"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{world.office.name}：必选 0%，基础 15%，完善 30%，提升 70%，补助上限 300 元/m²"
    rule = funding_svc.rule_for_estate(world.estate)
    assert (rule.pct["basic"], rule.cap_fen_per_m2) == (15, 30000)
    result = runner.invoke(rule_cmd, [world.office.code, "--upgrade", "101"])
    assert result.exit_code == 1
    assert "提升类居民出资比例必须是 0 到 100 之间的整数" in result.output
    assert runner.invoke(rule_cmd, ["NOPE"]).output.strip() == "Error: 找不到街道代码 NOPE"
