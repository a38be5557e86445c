"""Money, exactly: allocation in fen by largest remainder and the contribution rules of seed 001.

Pure Python (no Flask, no SQLAlchemy). Amounts are integer fen, areas `Decimal` m², ratios
`Fraction`. Nothing here uses floats.

The rules, as computed by `compute_contributions`:

1. Residents' part of an item = cost × category percentage (必选 0 %, 基础 10 %, 完善 30 %,
   提升 70 % by default), rounded to the fen **half up** (x.5 fen -> x+1). The subsidy base of the
   item is its cost minus that part, so cost = residents' part + subsidy holds exactly per item.
2. Subsidy cap = cap per m² (400 yuan = 40,000 fen by default) × the title area of **all units
   of the estate**, rounded **down** to the fen (with the default, 400 fen per 0.01 m², it is
   always an exact integer).
3. If the subsidies of all items exceed the cap, the excess (超出部分居民自理) is charged back to
   the items **in proportion to each item's subsidy** (largest remainder, in fen), so an expensive
   building-only item that causes the excess is paid by that building, not by the whole estate.
4. Each item's residents' total (its part + its excess) is divided among the units in the item's
   scope **by title area** with `allocate` (largest remainder), so units' shares add up to the
   item's total exactly.
5. Hardship (困难户): an exempt unit owes nothing, its whole share is covered by the named party
   (街道 / 社区 / 慈善 ...); a partly subsidised unit has min(subsidy, share) covered. The covered
   amount is reported separately; it is not part of what residents owe.

Items outside the subsidy (`ItemIn.mode`): "self_paid" (居民自费: doors and windows, works behind
the meter) is paid 100 % by the units in its scope; "separate" (另行补助: a lift) has its own fixed
subsidy and the rest is paid by the units in its scope. Neither is in the subsidy base nor under the
cap, so they never move what other units pay.

The match rule (`Rule.kind == "match"`, seed 003 Zhuhai): each subsidised item's cost is divided by
area; per unit the government adds `ratio` × what the residents pay, at most `match_limit_fen` per
household: the unit pays s − m with m = min(⌊s × k / (1 + k)⌋, limit) (k the ratio, s the unit's
cost share of subsidised items); m is spread over the unit's items by cost (largest remainder).

Funding sources (`OffsetIn`): estate money that offsets residents' shares, by title area over all
units, or over the units' shares of named items (weights: each unit's share of those items), largest
remainder. A unit's offset never exceeds its share (of the named items): what a unit cannot take is split
again over the others by the same weights; what no unit can take is reported in `offsets_unused`.
Hardship cover applies to what is left after the offsets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

CATEGORY_LABELS = {"required": "必选", "basic": "基础", "improvement": "完善", "upgrade": "提升"}


class MoneyError(ValueError):
    """Invalid money input; the message is Chinese and says what is wrong."""


def allocate(total_fen: int, weights: Sequence[Decimal | int | Fraction]) -> list[int]:
    """Split `total_fen` over `weights` by largest remainder, exactly.

    Each part is floor(total × w / Σw) plus possibly one fen; the fen left over after flooring
    go to the parts with the **largest fractional remainder first, ties to the lower index**.
    So the sum is exactly `total_fen`, each part is within one fen of its exact share (strictly
    less than one fen away), a zero weight gets 0, and the result depends only on the input.
    """
    if isinstance(total_fen, bool) or not isinstance(total_fen, int):
        raise MoneyError(f"分摊金额必须是整数（分），收到 {total_fen!r}")
    if total_fen < 0:
        raise MoneyError(f"分摊金额不能为负数，收到 {total_fen} 分")
    if len(weights) == 0:
        raise MoneyError("没有可分摊的对象（权重列表为空）")
    exact_weights = []
    for index, w in enumerate(weights):
        if isinstance(w, float) or isinstance(w, bool):
            raise MoneyError(f"第 {index + 1} 个权重必须是精确数（Decimal），不能是 {type(w).__name__}")
        fw = Fraction(w)
        if fw < 0:
            raise MoneyError(f"第 {index + 1} 个权重不能为负数：{w}")
        exact_weights.append(fw)
    # Integers over a common denominator: exact, and much faster than Fraction arithmetic.
    denominator = math.lcm(*(w.denominator for w in exact_weights))
    ints = [w.numerator * (denominator // w.denominator) for w in exact_weights]
    weight_sum = sum(ints)
    if weight_sum == 0:
        raise MoneyError("权重之和为零，无法按比例分摊")
    # exact share i = total × ints[i] / weight_sum = parts[i] + rems[i] / weight_sum
    parts, rems = [], []
    for w in ints:
        q, r = divmod(total_fen * w, weight_sum)
        parts.append(q)
        rems.append(r)
    left = total_fen - sum(parts)
    order = sorted(range(len(ints)), key=lambda i: (-rems[i], i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def percent_of_fen(amount_fen: int, pct: int | Fraction | Decimal) -> int:
    """amount × pct / 100, rounded half up to the fen (amounts are never negative here)."""
    if amount_fen < 0:
        raise MoneyError(f"金额不能为负数：{amount_fen} 分")
    value = Fraction(amount_fen) * Fraction(pct) / 100
    return int((value + Fraction(1, 2)).__floor__())


def cap_fen(cap_fen_per_m2: int, area_m2: Decimal) -> int:
    """The subsidy cap for an area, rounded down to the fen."""
    value = Fraction(cap_fen_per_m2) * Fraction(area_m2)
    return int(value.__floor__())


ITEM_MODES = ("subsidised", "self_paid", "separate")


RULE_KINDS = ("category", "match")


@dataclass(frozen=True)
class Rule:
    """Residents' percentage per category and the subsidy cap per m² (in fen); or (kind "match") the
    government matching `match_ratio` × the residents' payment, at most `match_limit_fen` per household."""

    pct: dict[str, int]
    cap_fen_per_m2: int
    kind: str = "category"
    match_ratio: Fraction = Fraction(1)
    match_limit_fen: int = 0

    @classmethod
    def zhuhai(cls) -> Rule:
        """Seed 003: the government matches residents 1:1, at most 5,000 yuan per household."""
        return cls(pct={"required": 0, "basic": 10, "improvement": 30, "upgrade": 70}, cap_fen_per_m2=40000,
                   kind="match", match_ratio=Fraction(1), match_limit_fen=500_000)

    @classmethod
    def seed_001(cls) -> Rule:
        return cls(pct={"required": 0, "basic": 10, "improvement": 30, "upgrade": 70}, cap_fen_per_m2=40000)


@dataclass(frozen=True)
class ItemIn:
    key: int | str
    name: str
    category: str
    cost_fen: int
    unit_keys: tuple  # the units in the item's scope
    mode: str = "subsidised"  # / "self_paid" 居民自费 / "separate" 另行补助
    fixed_subsidy_fen: int = 0  # "separate" only


@dataclass(frozen=True)
class OffsetIn:
    """A funding source's money offsetting residents' shares: by area over all units (item_keys
    empty) or over the units' shares of the named items."""

    key: int | str
    amount_fen: int
    item_keys: tuple = ()


@dataclass(frozen=True)
class UnitIn:
    key: int | str
    area_m2: Decimal
    hardship_mode: str | None = None  # None / "exempt" / "partial"
    hardship_subsidy_fen: int = 0
    hardship_covered_by: str = ""


@dataclass
class ItemOut:
    key: int | str
    name: str
    category: str
    pct: int
    cost_fen: int
    base_resident_fen: int  # cost × pct, half up
    subsidy_before_cap_fen: int
    excess_fen: int  # part of the over-cap excess charged back to this item
    resident_fen: int  # base + excess: what the units in scope pay together
    subsidy_fen: int  # cost − resident
    scope_area_m2: Decimal
    unit_count: int
    mode: str = "subsidised"
    fixed_subsidy_fen: int = 0
    matched_fen: int = 0  # match rule: the government's match on this item


@dataclass(slots=True)
class UnitLine:
    item_key: int | str
    share_fen: int
    area_m2: Decimal
    scope_area_m2: Decimal
    matched_fen: int = 0  # match rule: the government's match taken off this line


@dataclass
class UnitOut:
    key: int | str
    area_m2: Decimal
    lines: list[UnitLine] = field(default_factory=list)
    share_fen: int = 0  # before hardship
    covered_fen: int = 0  # hardship cover
    covered_by: str = ""
    hardship_mode: str | None = None
    owed_fen: int = 0  # what the residents of the unit pay
    offset_fen: int = 0  # funding sources (all of them)
    offsets: dict = field(default_factory=dict)  # source key -> fen
    matched_fen: int = 0  # match rule: the government's match for this household


@dataclass
class Contributions:
    items: list[ItemOut]
    units: dict
    total_cost_fen: int
    subsidy_before_cap_fen: int
    cap_fen: int
    estate_area_m2: Decimal
    excess_fen: int
    resident_total_fen: int
    subsidy_total_fen: int
    covered_total_fen: int
    owed_total_fen: int
    offset_total_fen: int = 0
    offsets_used: dict = field(default_factory=dict)  # source key -> fen used
    offsets_unused: dict = field(default_factory=dict)  # source key -> fen that found no share
    rule_kind: str = "category"


def _int_weights(units: Sequence[UnitIn]) -> dict:
    """Each unit's area as an integer over one common denominator (exact; computed once per estate)."""
    fr = {u.key: Fraction(u.area_m2) for u in units}
    for u in units:
        if fr[u.key] <= 0:
            raise MoneyError(f"户 {u.key} 的产权面积必须大于零")
    den = math.lcm(*(f.denominator for f in fr.values())) if fr else 1
    return {k: f.numerator * (den // f.denominator) for k, f in fr.items()}


def _allocate_ints(total_fen: int, ints: Sequence[int], weight_sum: int) -> list[int]:
    """`allocate` on integer weights already checked (the hot path of a large estate)."""
    prods = [total_fen * w for w in ints]
    parts = [p // weight_sum for p in prods]
    left = total_fen - sum(parts)
    if left:
        rems = [p % weight_sum for p in prods]
        # largest remainder first, ties to the lower index (the sort is stable, also in reverse)
        for i in sorted(range(len(ints)), key=rems.__getitem__, reverse=True)[:left]:
            parts[i] += 1
    return parts


def match_amount(paid_fen: int, rule: Rule) -> int:
    """The match rule: what the government adds to a household's payment (ratio × paid, at most the limit)."""
    if paid_fen < 0:
        raise MoneyError(f"金额不能为负数：{paid_fen} 分")
    return min(int((Fraction(paid_fen) * Fraction(rule.match_ratio)).__floor__()), rule.match_limit_fen)


def _match_of_share(share_fen: int, rule: Rule) -> int:
    """The match on a household whose cost share is `share_fen`: m with share = paid + m, m = min(k × paid, limit)."""
    k = Fraction(rule.match_ratio)
    return min(int((share_fen * k / (1 + k)).__floor__()), rule.match_limit_fen)


def _check_items(items: Sequence[ItemIn], by_key: dict, rule: Rule) -> None:
    for item in items:
        if item.mode not in ITEM_MODES:
            raise MoneyError(f"项目「{item.name}」的出资方式未知：{item.mode}")
        if item.mode == "subsidised" and item.category not in rule.pct:
            raise MoneyError(f"项目「{item.name}」的类别未知：{item.category}")
        if item.cost_fen < 0:
            raise MoneyError(f"项目「{item.name}」的费用不能为负数")
        if item.mode == "separate" and not 0 <= item.fixed_subsidy_fen <= item.cost_fen:
            raise MoneyError(f"项目「{item.name}」的另行补助金额必须在 0 到项目费用之间")
        if not item.unit_keys:
            raise MoneyError(f"项目「{item.name}」的范围内没有任何户，无法分摊")
        missing = [k for k in item.unit_keys if k not in by_key]
        if missing:
            raise MoneyError(f"项目「{item.name}」的范围包含未知的户：{missing[0]}")


def compute_contributions(items: Sequence[ItemIn], units: Sequence[UnitIn], rule: Rule,
                          offsets: Sequence[OffsetIn] = ()) -> Contributions:
    """Every item's split and every unit's share; `units` are all units of the estate."""
    by_key = {u.key: u for u in units}
    if len(by_key) != len(units):
        raise MoneyError("户的编号重复")
    weights = _int_weights(units)
    if rule.kind not in RULE_KINDS:
        raise MoneyError(f"补助规则未知：{rule.kind}")
    _check_items(items, by_key, rule)
    estate_area = sum((Decimal(u.area_m2) for u in units), Decimal("0"))
    match = rule.kind == "match"
    base = []
    for item in items:
        if item.mode == "self_paid":
            pct, resident = 100, item.cost_fen
        elif item.mode == "separate":
            pct, resident = 0, item.cost_fen - item.fixed_subsidy_fen
        elif match:
            pct, resident = 0, item.cost_fen  # the match is per household, below
        else:
            pct = rule.pct[item.category]
            resident = percent_of_fen(item.cost_fen, pct)
        subsidy = item.cost_fen - resident if item.mode == "subsidised" and not match else 0
        base.append((item, pct, resident, subsidy))
    subsidy_before = sum(b[3] for b in base)
    cap = rule.match_limit_fen * len(units) if match else cap_fen(rule.cap_fen_per_m2, estate_area)
    excess = 0 if match else max(0, subsidy_before - cap)
    excess_parts = allocate(excess, [b[3] for b in base]) if excess else [0] * len(base)

    unit_out = {u.key: UnitOut(key=u.key, area_m2=Decimal(u.area_m2)) for u in units}
    scope_cache: dict = {}
    item_out = []
    for (item, pct, resident, subsidy), extra in zip(base, excess_parts, strict=True):
        scope_keys = tuple(item.unit_keys)
        cached = scope_cache.get(scope_keys)
        if cached is None:
            ints = [weights[k] for k in scope_keys]
            area = sum((Decimal(by_key[k].area_m2) for k in scope_keys), Decimal("0"))
            cached = scope_cache[scope_keys] = (ints, sum(ints), area, [unit_out[k] for k in scope_keys])
        ints, weight_sum, scope_area, outs = cached
        total = resident + extra
        shares = _allocate_ints(total, ints, weight_sum)
        key = item.key
        for out, share in zip(outs, shares, strict=True):
            out.lines.append(UnitLine(key, share, out.area_m2, scope_area))
            out.share_fen += share
        item_out.append(ItemOut(
            key=item.key, name=item.name, category=item.category, pct=pct, cost_fen=item.cost_fen,
            base_resident_fen=resident, subsidy_before_cap_fen=subsidy, excess_fen=extra,
            resident_fen=total, subsidy_fen=item.cost_fen - total, scope_area_m2=scope_area,
            unit_count=len(scope_keys), mode=item.mode,
            fixed_subsidy_fen=item.fixed_subsidy_fen if item.mode == "separate" else 0))
    if match:
        _apply_match(item_out, unit_out, rule)
    used, unused = _apply_offsets(offsets, item_out, unit_out, units, weights)
    _apply_hardship(units, unit_out)

    resident_total = sum(i.resident_fen for i in item_out)
    return Contributions(
        items=item_out, units=unit_out, total_cost_fen=sum(i.cost_fen for i in item_out),
        subsidy_before_cap_fen=subsidy_before, cap_fen=cap, estate_area_m2=estate_area, excess_fen=excess,
        resident_total_fen=resident_total, subsidy_total_fen=sum(i.subsidy_fen for i in item_out),
        covered_total_fen=sum(u.covered_fen for u in unit_out.values()),
        owed_total_fen=sum(u.owed_fen for u in unit_out.values()),
        offset_total_fen=sum(u.offset_fen for u in unit_out.values()), offsets_used=used, offsets_unused=unused,
        rule_kind=rule.kind)


def _apply_match(item_out: list[ItemOut], unit_out: dict, rule: Rule) -> None:
    """Match rule: per household, the government's match on its subsidised cost share, spread over its items."""
    subsidised = {i.key: i for i in item_out if i.mode == "subsidised"}
    for out in unit_out.values():
        lines = [ln for ln in out.lines if ln.item_key in subsidised]
        cost_share = sum(ln.share_fen for ln in lines)
        if not cost_share:
            continue
        m = _match_of_share(cost_share, rule)
        parts = allocate(m, [ln.share_fen for ln in lines])
        for ln, part in zip(lines, parts, strict=True):
            ln.share_fen -= part
            ln.matched_fen = part
            subsidised[ln.item_key].matched_fen += part
        out.matched_fen = m
        out.share_fen -= m
    for i in subsidised.values():
        i.resident_fen -= i.matched_fen
        i.base_resident_fen = i.resident_fen
        i.subsidy_fen = i.matched_fen
        i.subsidy_before_cap_fen = i.matched_fen


def _fill(amount: int, keys: list, weights: dict, room: dict) -> tuple[dict, int]:
    """Split `amount` over `keys` by `weights`, never more than a key's `room`: what a full key cannot take is
    split again over the others, by the same weights, until nothing is left or no key has room."""
    parts = dict.fromkeys(keys, 0)
    left = amount
    active = [k for k in keys if room[k] > 0 and weights[k] > 0]
    while left > 0 and active:
        alloc = allocate(left, [weights[k] for k in active])
        for k, p in zip(active, alloc, strict=True):
            give = min(p, room[k] - parts[k])
            parts[k] += give
            left -= give
        active = [k for k in active if room[k] - parts[k] > 0]
    return parts, left


def _apply_offsets(offsets: Sequence[OffsetIn], item_out: list[ItemOut], unit_out: dict,
                   units: Sequence[UnitIn], weights: dict) -> tuple[dict, dict]:
    used, unused = {}, {}
    keys = [u.key for u in units]
    for off in offsets:
        if off.amount_fen < 0:
            raise MoneyError(f"资金来源 {off.key} 的金额不能为负数")
        room = {k: unit_out[k].share_fen - unit_out[k].offset_fen for k in keys}
        if off.item_keys:
            named = set(off.item_keys)
            w = {k: sum(ln.share_fen for ln in unit_out[k].lines if ln.item_key in named) for k in keys}
            room = {k: min(room[k], w[k]) for k in keys}
        else:
            w = weights
        parts, left = _fill(off.amount_fen, keys, w, room)
        for k, part in parts.items():
            if part:
                out = unit_out[k]
                out.offset_fen += part
                out.offsets[off.key] = out.offsets.get(off.key, 0) + part
        used[off.key] = used.get(off.key, 0) + off.amount_fen - left
        unused[off.key] = unused.get(off.key, 0) + left
    return used, unused


def _apply_hardship(units: Sequence[UnitIn], unit_out: dict) -> None:
    for u in units:
        out = unit_out[u.key]
        rest = out.share_fen - out.offset_fen
        if u.hardship_mode == "exempt":
            out.covered_fen = rest
        elif u.hardship_mode == "partial":
            if u.hardship_subsidy_fen < 0:
                raise MoneyError(f"户 {u.key} 的困难补助金额不能为负数")
            out.covered_fen = min(u.hardship_subsidy_fen, rest)
        elif u.hardship_mode is not None:
            raise MoneyError(f"户 {u.key} 的困难减免方式未知：{u.hardship_mode}")
        out.hardship_mode = u.hardship_mode
        out.covered_by = u.hardship_covered_by if u.hardship_mode else ""
        out.owed_fen = rest - out.covered_fen


def settle(final_owed: dict, paid: dict) -> dict:
    """多退少补: per unit, final owed − paid (positive: top-up to collect; negative: refund)."""
    keys = set(final_owed) | set(paid)
    return {k: final_owed.get(k, 0) - paid.get(k, 0) for k in keys}
