"""Issue 15 item 1: items outside the subsidy (居民自费, 另行补助) are neither in the subsidy base nor under
the cap, and only the units in their scope pay for them."""

from __future__ import annotations

import pytest

from residents_app.core.money import ItemIn, Rule, UnitIn, compute_contributions
from residents_app.errors import ValidationFailed
from residents_app.funding import services as funding_svc
from residents_app.plans import services as plan_svc


def _plan(world, lift_mode=None, fixed=0):
    """Estate of 200 m² (1幢 60 + 40, 2幢-101 100): estate-wide works 80,000 yuan (必选) and, optionally,
    a 100,000-yuan lift for building 1 only."""
    plan = world.plan(items=[("雨污分流", "required", 8_000_000, None)], publish=False)
    if lift_mode is not None:
        plan_svc.add_item(plan, name="1幢加装电梯", category="upgrade", cost_fen=10_000_000,
                          building_ids=[world.b1.id], funding_mode=lift_mode, fixed_subsidy_fen=fixed,
                          user=world.committee, now=world.now)
    return plan


def test_lift_as_subsidised_upgrade_makes_building_2_pay_toward_the_cap(world):
    """The old behaviour, still what a lift entered as an ordinary 提升 item gives: 10,909.09 yuan."""
    c = funding_svc.compute_plan(_plan(world, "subsidised"))
    assert c.excess_fen == 3_000_000
    assert c.units[world.u201.id].owed_fen == 1_090_909


def test_lift_with_its_own_subsidy_leaves_building_2_as_without_the_lift(world):
    without = funding_svc.compute_plan(_plan(world))
    assert without.units[world.u201.id].owed_fen == 0
    lift_plan = _plan(world, "separate", fixed=3_000_000)
    with_lift = funding_svc.compute_plan(lift_plan)
    assert with_lift.units[world.u201.id].owed_fen == without.units[world.u201.id].owed_fen == 0
    lift = with_lift.items[1]
    assert (lift.mode, lift.fixed_subsidy_fen, lift.resident_fen, lift.subsidy_fen) == (
        "separate", 3_000_000, 7_000_000, 3_000_000)
    # neither in the subsidy base nor under the cap: the works' subsidy alone meets the cap exactly
    assert (with_lift.subsidy_before_cap_fen, with_lift.cap_fen, with_lift.excess_fen) == (8_000_000, 8_000_000, 0)
    assert with_lift.units[world.u101.id].owed_fen == 4_200_000
    assert with_lift.units[world.u102.id].owed_fen == 2_800_000
    st = funding_svc.unit_statement(lift_plan, world.u101)
    assert st["lines"][1].explanation == (
        "1幢加装电梯（另行补助，1幢）费用 100,000.00 元，另行补助 30,000.00 元，不计入补助基数，居民承担 70,000.00 元；"
        "共 70,000.00 元按产权面积分摊给 2 户（共 100.00 m²），本户 60.00 m²，应摊 42,000.00 元")


def test_self_paid_item_is_paid_in_full_by_its_scope_only(world):
    plan = _plan(world)
    plan_svc.add_item(plan, name="1幢门窗更换", category="basic", cost_fen=500_001, building_ids=[world.b1.id],
                      funding_mode="self_paid", user=world.committee, now=world.now)
    c = funding_svc.compute_plan(plan)
    assert [i.resident_fen for i in c.items] == [0, 500_001]
    assert c.items[1].subsidy_fen == 0 and c.subsidy_before_cap_fen == 8_000_000 and c.excess_fen == 0
    assert (c.units[world.u101.id].owed_fen, c.units[world.u102.id].owed_fen) == (300_001, 200_000)
    assert c.units[world.u201.id].owed_fen == 0


def test_funding_mode_is_validated_and_copied_to_a_new_version(world):
    plan = _plan(world)
    with pytest.raises(ValidationFailed) as info:
        plan_svc.add_item(plan, name="电梯", category="upgrade", cost_fen=100, funding_mode="separate",
                          fixed_subsidy_fen=101, user=world.committee, now=world.now)
    assert info.value.errors == {"fixed_subsidy_fen": ["另行补助金额不能超过项目费用"]}
    with pytest.raises(ValidationFailed):
        plan_svc.add_item(plan, name="电梯", category="upgrade", cost_fen=100, funding_mode="gift",
                          user=world.committee, now=world.now)
    plan_svc.add_item(plan, name="电梯", category="upgrade", cost_fen=100, funding_mode="separate",
                      fixed_subsidy_fen=40, building_ids=[world.b1.id], user=world.committee, now=world.now)
    plan_svc.publish_plan(plan, user=world.committee, now=world.now)
    draft = plan_svc.new_version(plan, user=world.committee, now=world.now)
    assert [(i.funding_mode, i.fixed_subsidy_fen) for i in draft.items] == [("subsidised", 0), ("separate", 40)]


def test_core_outside_items_never_touch_the_cap():
    units = [UnitIn("a", "60.00"), UnitIn("b", "40.00"), UnitIn("c", "100.00")]
    items = [ItemIn(1, "雨污分流", "required", 8_000_000, ("a", "b", "c")),
             ItemIn(2, "电梯", "upgrade", 10_000_000, ("a", "b"), mode="separate", fixed_subsidy_fen=2_500_000),
             ItemIn(3, "表后", "basic", 333, ("c",), mode="self_paid")]
    c = compute_contributions(items, units, Rule.seed_001())
    assert c.excess_fen == 0
    assert {k: u.owed_fen for k, u in c.units.items()} == {"a": 4_500_000, "b": 3_000_000, "c": 333}
