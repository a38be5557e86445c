"""The money rules, on the pure functions, with exact fen."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from residents_app.core.money import (
    ItemIn,
    MoneyError,
    Rule,
    UnitIn,
    allocate,
    cap_fen,
    compute_contributions,
    percent_of_fen,
    settle,
)

D = Decimal


# ---- allocate: examples ------------------------------------------------------------------------

def test_allocate_ties_go_to_lower_index():
    assert allocate(100, [D(1), D(1), D(1)]) == [34, 33, 33]
    assert allocate(2, [D(1), D(1), D(1)]) == [1, 1, 0]


def test_allocate_largest_remainder_first():
    # exact 5.9 and 4.1: the .9 gets the leftover fen
    assert allocate(10, [D("88.50"), D("61.50")]) == [6, 4]
    # exact 3.25, 3.5, 3.25 -> floors 3,3,3, one fen left -> the 0.5 remainder
    assert allocate(10, [D("32.5"), D("35"), D("32.5")]) == [3, 4, 3]


def test_allocate_zero_total_and_zero_weights():
    assert allocate(0, [D(1), D(2)]) == [0, 0]
    assert allocate(5, [D(0), D(1)]) == [0, 5]
    assert allocate(7, [D("0.01")]) == [7]


@pytest.mark.parametrize("total, weights, message", [
    (10, [], "没有可分摊的对象（权重列表为空）"),
    (10, [D(0), D(0)], "权重之和为零，无法按比例分摊"),
    (10, [D(1), D(-1)], "第 2 个权重不能为负数：-1"),
    (-1, [D(1)], "分摊金额不能为负数，收到 -1 分"),
    (10, [1.5], "第 1 个权重必须是精确数（Decimal），不能是 float"),
    (Decimal("1.5"), [D(1)], "分摊金额必须是整数（分），收到 Decimal('1.5')"),
])
def test_allocate_refuses_bad_input(total, weights, message):
    with pytest.raises(MoneyError) as info:
        allocate(total, weights)
    assert str(info.value) == message


# ---- allocate: properties ----------------------------------------------------------------------

areas = st.decimals(min_value=D("0.00"), max_value=D("9999.99"), places=2, allow_nan=False, allow_infinity=False)
weight_lists = st.lists(areas, min_size=1, max_size=40).filter(lambda ws: sum(ws) > 0)
totals = st.integers(min_value=0, max_value=10**12)


@settings(deadline=None)
@given(totals, weight_lists)
def test_allocate_sum_is_exact(total, weights):
    assert sum(allocate(total, weights)) == total


@settings(deadline=None)
@given(totals, weight_lists)
def test_allocate_each_part_within_one_fen(total, weights):
    w_sum = sum(Fraction(w) for w in weights)
    for part, w in zip(allocate(total, weights), weights, strict=True):
        exact = Fraction(total) * Fraction(w) / w_sum
        assert abs(part - exact) < 1
        assert part >= 0
        if w == 0:
            assert part == 0


@settings(deadline=None)
@given(totals, weight_lists)
def test_allocate_is_deterministic_and_follows_documented_ties(total, weights):
    first = allocate(total, weights)
    assert allocate(total, list(weights)) == first
    w_sum = sum(Fraction(w) for w in weights)
    exact = [Fraction(total) * Fraction(w) / w_sum for w in weights]
    rem = [e - int(e) for e in exact]
    bumped = [i for i, (p, e) in enumerate(zip(first, exact, strict=True)) if p > e]
    kept = [i for i, (p, e) in enumerate(zip(first, exact, strict=True)) if p <= e and rem[i] > 0]
    for b in bumped:
        for k in kept:
            # a bumped part has a larger remainder, or the same remainder and a lower index
            assert rem[b] > rem[k] or (rem[b] == rem[k] and b < k)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=10**9), st.integers(min_value=1, max_value=30))
def test_allocate_equal_weights_differ_by_at_most_one_fen_lower_indices_first(total, n):
    parts = allocate(total, [D(1)] * n)
    assert parts == sorted(parts, reverse=True)
    assert parts[0] - parts[-1] <= 1


# ---- percentages and the cap ---------------------------------------------------------------

def test_percent_rounds_half_up_to_the_fen():
    assert percent_of_fen(12345, 10) == 1235  # 1234.5 -> 1235
    assert percent_of_fen(12344, 10) == 1234  # 1234.4 -> 1234
    assert percent_of_fen(5, 30) == 2  # 1.5 -> 2
    assert percent_of_fen(4, 30) == 1  # 1.2 -> 1
    assert percent_of_fen(100, 0) == 0
    assert percent_of_fen(100, 70) == 70


def test_cap_is_400_yuan_per_m2_rounded_down():
    assert cap_fen(40000, D("88.50")) == 3540000  # 35,400.00 yuan
    assert cap_fen(40000, D("0.01")) == 400
    assert cap_fen(33333, D("0.01")) == 333  # 333.33 -> 333


def unit(key, area, **kw):
    return UnitIn(key=key, area_m2=D(area), **kw)


def test_split_0_10_30_70_below_the_cap():
    units = [unit("A", "60.00"), unit("B", "40.00")]  # cap 4,000,000 fen
    items = [ItemIn(k, k, cat, 1_000_000, ("A", "B"))
             for k, cat in [("i1", "required"), ("i2", "basic"), ("i3", "improvement"), ("i4", "upgrade")]]
    c = compute_contributions(items, units, Rule.seed_001())
    assert [i.base_resident_fen for i in c.items] == [0, 100_000, 300_000, 700_000]
    assert [i.subsidy_fen for i in c.items] == [1_000_000, 900_000, 700_000, 300_000]
    assert c.cap_fen == 4_000_000
    assert c.subsidy_before_cap_fen == 2_900_000
    assert c.excess_fen == 0
    assert c.resident_total_fen == 1_100_000
    assert c.units["A"].share_fen == 660_000
    assert c.units["B"].share_fen == 440_000
    assert [ln.share_fen for ln in c.units["A"].lines] == [0, 60_000, 180_000, 420_000]


def test_cap_exceeded_excess_goes_to_items_by_subsidy_then_units_by_area():
    units = [unit("A", "6.00"), unit("B", "4.00")]  # 10 m² -> cap 400,000 fen
    items = [ItemIn("r", "雨污分流", "required", 300_000, ("A", "B")),
             ItemIn("b", "外墙", "basic", 200_000, ("A", "B"))]
    c = compute_contributions(items, units, Rule.seed_001())
    assert c.subsidy_before_cap_fen == 480_000
    assert c.cap_fen == 400_000
    assert c.excess_fen == 80_000
    # 80,000 × 300/480 and × 180/480
    assert [i.excess_fen for i in c.items] == [50_000, 30_000]
    assert [i.resident_fen for i in c.items] == [50_000, 50_000]
    assert [i.subsidy_fen for i in c.items] == [250_000, 150_000]
    assert c.subsidy_total_fen == c.cap_fen == 400_000
    assert c.units["A"].share_fen == 60_000
    assert c.units["B"].share_fen == 40_000


def test_subsidy_exactly_at_the_cap_has_no_excess_and_one_fen_over_has_one():
    units = [unit("A", "10.00")]  # cap 400,000
    at = compute_contributions([ItemIn("r", "r", "required", 400_000, ("A",))], units, Rule.seed_001())
    assert (at.excess_fen, at.resident_total_fen) == (0, 0)
    over = compute_contributions([ItemIn("r", "r", "required", 400_001, ("A",))], units, Rule.seed_001())
    assert (over.excess_fen, over.resident_total_fen, over.subsidy_total_fen) == (1, 1, 400_000)


def test_building_scoped_item_paid_by_that_building_only():
    units = [unit("1-101", "50.00"), unit("1-102", "50.00"), unit("2-101", "100.00")]
    items = [ItemIn("roof", "屋面防水", "basic", 100_001, ("1-101", "1-102")),
             ItemIn("wall", "外墙", "improvement", 100_000, ("1-101", "1-102", "2-101"))]
    c = compute_contributions(items, units, Rule.seed_001())
    # roof: 10% of 100,001 = 10,000.1 -> 10,000, split 5,000 / 5,000 over building 1
    assert c.items[0].resident_fen == 10_000
    # wall: 30,000 over 200 m²: 7,500 / 7,500 / 15,000
    assert c.units["1-101"].share_fen == 5_000 + 7_500
    assert c.units["1-102"].share_fen == 5_000 + 7_500
    assert c.units["2-101"].share_fen == 15_000
    assert [ln.item_key for ln in c.units["2-101"].lines] == ["wall"]


def test_hardship_exempt_and_partial():
    units = [unit("A", "50.00", hardship_mode="exempt", hardship_covered_by="街道"),
             unit("B", "50.00", hardship_mode="partial", hardship_subsidy_fen=1_000, hardship_covered_by="慈善"),
             unit("C", "50.00", hardship_mode="partial", hardship_subsidy_fen=99_999, hardship_covered_by="社区")]
    c = compute_contributions([ItemIn("u", "加装电梯", "upgrade", 300_000, ("A", "B", "C"))], units,
                              Rule.seed_001())
    assert [c.units[k].share_fen for k in "ABC"] == [70_000, 70_000, 70_000]
    assert [c.units[k].covered_fen for k in "ABC"] == [70_000, 1_000, 70_000]
    assert [c.units[k].owed_fen for k in "ABC"] == [0, 69_000, 0]
    assert c.covered_total_fen == 141_000
    assert c.owed_total_fen == 69_000
    assert c.units["A"].covered_by == "街道"


def test_custom_rule_of_a_street_office():
    rule = Rule(pct={"required": 5, "basic": 20, "improvement": 50, "upgrade": 100}, cap_fen_per_m2=30000)
    c = compute_contributions([ItemIn("x", "x", "basic", 1_000, ("A",))], [unit("A", "1.00")], rule)
    assert (c.items[0].base_resident_fen, c.cap_fen, c.excess_fen) == (200, 30000, 0)


@pytest.mark.parametrize("items, message", [
    ([ItemIn("x", "外墙", "luxury", 1, ("A",))], "项目「外墙」的类别未知：luxury"),
    ([ItemIn("x", "外墙", "basic", 1, ())], "项目「外墙」的范围内没有任何户，无法分摊"),
    ([ItemIn("x", "外墙", "basic", 1, ("Z",))], "项目「外墙」的范围包含未知的户：Z"),
])
def test_contributions_refuse_bad_items(items, message):
    with pytest.raises(MoneyError) as info:
        compute_contributions(items, [unit("A", "1.00")], Rule.seed_001())
    assert str(info.value) == message


@settings(deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["required", "basic", "improvement", "upgrade"]),
                          st.integers(min_value=1, max_value=10**9)), min_size=1, max_size=6),
       st.lists(st.decimals(min_value=D("0.01"), max_value=D("300.00"), places=2), min_size=1, max_size=12))
def test_contributions_always_add_up(item_specs, areas_):
    units = [unit(i, a) for i, a in enumerate(areas_)]
    items = [ItemIn(n, f"项目{n}", cat, cost, tuple(range(len(units)))) for n, (cat, cost) in enumerate(item_specs)]
    c = compute_contributions(items, units, Rule.seed_001())
    assert sum(u.share_fen for u in c.units.values()) == c.resident_total_fen
    assert c.resident_total_fen + c.subsidy_total_fen == c.total_cost_fen
    assert c.subsidy_total_fen <= max(c.cap_fen, 0)
    assert c.subsidy_total_fen == min(c.subsidy_before_cap_fen, c.cap_fen)


def test_settle_refund_and_top_up():
    assert settle({"A": 100, "B": 200}, {"A": 150, "B": 180}) == {"A": -50, "B": 20}
