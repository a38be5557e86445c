"""The threshold engine: exact, pure (no Flask, no SQLAlchemy), never a float.

Definitions (DOMAIN.md, "Voting rules"):

- Figures are counted over the round's scope (whole estate, or the named buildings).
- Areas are handled as integer hundredths of m² (Decimal("153.20") <-> 15320).
- Ratios are compared by cross-multiplication: agree * q >= total * p ("以上", bound included)
  or agree * q > total * p ("过半数", strict).
- Counting mode `household`: one unit = one household, whatever its owners.
- Counting mode `person` (法释〔2009〕7号 art. 9): one exclusive unit counts as one person, and the same
  buyer of several units counts once. The buyer of a unit is its whole owner set, so units whose owner
  sets are identical are one person, co-owners of one unit are one person, and chains do not merge
  (A+B own X, B+C own Y: two persons). Units without a registered owner count as a person of their
  own. A person's area is the sum of their units' areas.
  A person whose units voted differently: the person has *participated* when at least one of their
  units has a counted ballot, and *agrees* only when every one of their units in scope agrees
  (a unit that disagrees, abstains or has not voted keeps the person from agreeing). Area conditions
  always count each unit's own ballot, so an owner's split vote moves exactly the areas concerned.
- Abstaining and not voting count as not agreeing.
- Margin of an unmet condition: the smallest number of further agreeing households / persons, and
  separately the smallest additional agreeing area (in 0.01 m² steps), that would meet it, everything
  else unchanged. For conditions over the total (Lucheng, turnout) the denominator is fixed; for
  conditions over the participants (art. 278: 3/4 or more than half of those who voted) the further
  agreeing voters also join the denominator, so need = min k with (x + k) * q >= p * (V + k).
- can_still_pass: the outcome if every unit that has not voted yet agreed (cast ballots unchanged).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

AGREE = "agree"
COUNTING_MODES = ("household", "person")
COUNTING_MODE_LABELS = {"household": "按户计", "person": "按业主人数计（一人多户计一人）"}


@dataclass(frozen=True)
class RollEntry:
    unit_id: int
    building_id: int
    area: Decimal
    owner_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class Condition:
    """One condition of a preset: numerator / denominator compared with the bound p/q."""

    key: str          # turnout_area, turnout_count, agree_area, agree_count
    measure: str      # area / count
    numerator: str    # voted / agree
    denominator: str  # total / voted
    bound: Fraction
    strict: bool
    label: str


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    description: str
    conditions: tuple[Condition, ...]


def _c(key, measure, numerator, denominator, bound, strict, label):
    return Condition(key, measure, numerator, denominator, Fraction(bound), strict, label)


# Civil Code art. 278: both kinds of matter first need turnout of 2/3 of the area and of the owners.
_CIVIL_CODE_TURNOUT = (
    _c("turnout_area", "area", "voted", "total", Fraction(2, 3), False, "参与面积 ≥ 总面积的 2/3"),
    _c("turnout_count", "count", "voted", "total", Fraction(2, 3), False, "参与人数 ≥ 总人数的 2/3"),
)

PRESETS: dict[str, Preset] = {
    "lucheng_double_two_thirds": Preset(
        "lucheng_double_two_thirds", "双三分之二（鹿城规则）",
        "同意的业主所占专有部分面积达到总面积的三分之二以上，且同意的户数达到总户数的三分之二以上。"
        "未投票和弃权都不算同意。",
        (
            _c("agree_area", "area", "agree", "total", Fraction(2, 3), False, "同意面积 ≥ 总面积的 2/3"),
            _c("agree_count", "count", "agree", "total", Fraction(2, 3), False, "同意户数 ≥ 总户数的 2/3"),
        ),
    ),
    "civil_code_278_major": Preset(
        "civil_code_278_major", "民法典第278条（重大事项）",
        "参与表决的业主所占面积和人数都达到总数的三分之二以上；并经参与表决面积的四分之三以上、"
        "参与表决人数的四分之三以上同意。",
        (
            *_CIVIL_CODE_TURNOUT,
            _c("agree_area", "area", "agree", "voted", Fraction(3, 4), False, "同意面积 ≥ 参与面积的 3/4"),
            _c("agree_count", "count", "agree", "voted", Fraction(3, 4), False, "同意人数 ≥ 参与人数的 3/4"),
        ),
    ),
    "civil_code_278_ordinary": Preset(
        "civil_code_278_ordinary", "民法典第278条（一般事项）",
        "参与表决的业主所占面积和人数都达到总数的三分之二以上；并经参与表决面积过半数、"
        "参与表决人数过半数同意（恰好一半不通过）。",
        (
            *_CIVIL_CODE_TURNOUT,
            _c("agree_area", "area", "agree", "voted", Fraction(1, 2), True, "同意面积 > 参与面积的 1/2"),
            _c("agree_count", "count", "agree", "voted", Fraction(1, 2), True, "同意人数 > 参与人数的 1/2"),
        ),
    ),
}


@dataclass(frozen=True)
class Figures:
    """Counts (households or persons) and areas (integer hundredths of m²) over one scope."""

    total_count: int
    total_area: int
    voted_count: int
    voted_area: int
    agree_count: int
    agree_area: int
    # If every unit without a ballot agreed: who would agree (cast ballots unchanged).
    potential_agree_count: int
    potential_agree_area: int


@dataclass
class ConditionResult:
    key: str
    label: str
    measure: str
    value: int            # count, or area in hundredths
    denominator: int      # count, or area in hundredths
    bound: Fraction
    strict: bool
    met: bool
    margin: int           # further agreeing (or participating) count / hundredths needed; 0 when met


@dataclass
class Tally:
    preset: str
    counting_mode: str
    figures: Figures
    conditions: list[ConditionResult]
    passed: bool
    can_still_pass: bool
    buildings: list[dict] = field(default_factory=list)

    @property
    def margin_count(self) -> int:
        return max((c.margin for c in self.conditions if c.measure == "count"), default=0)

    @property
    def margin_area(self) -> int:
        return max((c.margin for c in self.conditions if c.measure == "area"), default=0)

    def to_dict(self) -> dict:
        f = self.figures
        return {
            "preset": self.preset,
            "counting_mode": self.counting_mode,
            "passed": self.passed,
            "can_still_pass": self.can_still_pass,
            "figures": {
                "total_count": f.total_count, "total_area": area_str(f.total_area),
                "voted_count": f.voted_count, "voted_area": area_str(f.voted_area),
                "agree_count": f.agree_count, "agree_area": area_str(f.agree_area),
            },
            "conditions": [
                {
                    "key": c.key, "label": c.label, "measure": c.measure,
                    "value": c.value if c.measure == "count" else area_str(c.value),
                    "denominator": c.denominator if c.measure == "count" else area_str(c.denominator),
                    "bound": f"{c.bound.numerator}/{c.bound.denominator}",
                    "strict": c.strict,
                    "required": required_str(c),
                    "met": c.met,
                    "margin": c.margin if c.measure == "count" else area_str(c.margin),
                }
                for c in self.conditions
            ],
            "margin_count": self.margin_count,
            "margin_area": area_str(self.margin_area),
            "buildings": self.buildings,
        }


def to_hundredths(area: Decimal | str | int) -> int:
    scaled = Decimal(area) * 100
    if scaled != scaled.to_integral_value():
        raise ValueError(f"面积 {area} 超过两位小数")
    return int(scaled)


def area_str(hundredths: int) -> str:
    """Hundredths of a m² as "123.45" (exact: integer arithmetic for an int, as Decimal formats it)."""
    if type(hundredths) is int:  # the common case, many times per tally: no Decimal needed
        whole, cents = divmod(-hundredths if hundredths < 0 else hundredths, 100)
        return f"{'-' if hundredths < 0 else ''}{whole}.{cents:02d}"
    return f"{Decimal(hundredths).scaleb(-2):.2f}"


def minimum_value(c: ConditionResult) -> int:
    """The smallest figure meeting the condition with the current denominator (exact integer)."""
    p, q = c.bound.numerator, c.bound.denominator
    if c.strict:
        return (p * c.denominator) // q + 1
    return _ceil_div(p * c.denominator, q)


def required_str(c: ConditionResult) -> str:
    """The bound as an exact fraction of the denominator, e.g. "≥ 2/3 × 300.00 m²（至少 200.00 m²）"."""
    sign = ">" if c.strict else "≥"
    frac = f"{c.bound.numerator}/{c.bound.denominator}"
    if c.measure == "area":
        return f"{sign} {frac} × {area_str(c.denominator)} m²（至少 {area_str(minimum_value(c))} m²）"
    return f"{sign} {frac} × {c.denominator}（至少 {minimum_value(c)}）"


def _meets(value: int, denominator: int, bound: Fraction, strict: bool) -> bool:
    if denominator <= 0:
        return False  # nothing to decide over: never "passed"
    left, right = value * bound.denominator, denominator * bound.numerator
    return left > right if strict else left >= right


def _ceil_div(a: int, b: int) -> int:
    return -((-a) // b)


def _margin(value: int, denominator: int, bound: Fraction, strict: bool, over_voted: bool) -> int:
    """Smallest k >= 0 such that the condition holds with `k` more (agreeing / participating) units."""
    p, q = bound.numerator, bound.denominator
    if over_voted:
        # (x + k) q  >=  p (V + k)   <=>   k (q - p)  >=  p V - x q      (q > p since bound < 1)
        need = p * denominator - value * q
        if strict:
            k = need // (q - p) + 1 if need >= 0 else 0
        else:
            k = max(0, _ceil_div(need, q - p))
        if denominator + k <= 0:
            k = max(k, 1)  # nobody voted: one agreeing voter makes the denominator positive
        return k
    if denominator <= 0:
        return 0
    need = p * denominator - value * q
    if strict:
        return need // q + 1 if need >= 0 else 0
    return max(0, _ceil_div(need, q))


def evaluate(preset_key: str, counting_mode: str, figures: Figures, buildings: list[dict] | None = None) -> Tally:
    """Apply a preset to figures already counted (the SQL tally path and the pure path share this)."""
    preset = PRESETS[preset_key]
    results = []
    for cond in preset.conditions:
        results.append(_condition(cond, figures, counting_mode))
    passed = all(r.met for r in results)
    f = figures
    potential = Figures(f.total_count, f.total_area, f.total_count, f.total_area,
                        f.potential_agree_count, f.potential_agree_area,
                        f.potential_agree_count, f.potential_agree_area)
    can_still_pass = all(_condition(c, potential, counting_mode).met for c in preset.conditions)
    return Tally(preset_key, counting_mode, figures, results, passed, can_still_pass, buildings or [])


def _condition(cond: Condition, f: Figures, counting_mode: str) -> ConditionResult:
    area = cond.measure == "area"
    value = {"voted": f.voted_area if area else f.voted_count,
             "agree": f.agree_area if area else f.agree_count}[cond.numerator]
    denominator = {"total": f.total_area if area else f.total_count,
                   "voted": f.voted_area if area else f.voted_count}[cond.denominator]
    met = _meets(value, denominator, cond.bound, cond.strict)
    margin = 0 if met else _margin(value, denominator, cond.bound, cond.strict, cond.denominator == "voted")
    label = cond.label
    if cond.measure == "count" and counting_mode == "household":
        label = label.replace("人数", "户数")
    if cond.measure == "count" and counting_mode == "person":
        label = label.replace("户数", "人数")
    return ConditionResult(cond.key, label, cond.measure, value, denominator, cond.bound, cond.strict, met, margin)


def in_scope(entries: Iterable[RollEntry], scope_building_ids: Iterable[int] | None) -> list[RollEntry]:
    scope = set(scope_building_ids or ())
    return [e for e in entries if not scope or e.building_id in scope]


def persons(entries: Iterable[RollEntry]) -> list[list[RollEntry]]:
    """Group units into persons: units with the identical (non-empty) owner set are one person.

    A unit without a registered owner is a person of its own. Overlapping owner sets do not merge:
    the law counts buyers of units, not everyone connected through co-ownership.
    """
    groups: dict[object, list[RollEntry]] = {}
    for e in entries:
        key = frozenset(e.owner_ids) if e.owner_ids else ("unit", e.unit_id)
        groups.setdefault(key, []).append(e)
    return list(groups.values())


def figures_for(entries: list[RollEntry], ballots: Mapping[int, str], counting_mode: str) -> Figures:
    if counting_mode not in COUNTING_MODES:
        raise ValueError(f"未知的计数方式：{counting_mode}")
    total_area = voted_area = agree_area = unvoted_area = 0
    for e in entries:
        a = to_hundredths(e.area)
        total_area += a
        choice = ballots.get(e.unit_id)
        if choice is not None:
            voted_area += a
            if choice == AGREE:
                agree_area += a
        else:
            unvoted_area += a
    if counting_mode == "household":
        total = len(entries)
        voted = sum(1 for e in entries if e.unit_id in ballots)
        agree = sum(1 for e in entries if ballots.get(e.unit_id) == AGREE)
        potential = agree + (total - voted)
    else:
        groups = persons(entries)
        total = len(groups)
        voted = sum(1 for g in groups if any(e.unit_id in ballots for e in g))
        agree = sum(1 for g in groups if all(ballots.get(e.unit_id) == AGREE for e in g))
        potential = sum(1 for g in groups if all(ballots.get(e.unit_id, AGREE) == AGREE for e in g))
    return Figures(total, total_area, voted, voted_area, agree, agree_area, potential, agree_area + unvoted_area)


def building_breakdown(entries: list[RollEntry], ballots: Mapping[int, str]) -> list[dict]:
    """Per building: households and areas by choice (always per unit: a building has units, not persons)."""
    rows: dict[int, dict] = {}
    for e in entries:
        row = rows.setdefault(e.building_id, {"building_id": e.building_id, "total_count": 0, "total_area": 0,
                                              "voted_count": 0, "voted_area": 0, "agree_count": 0,
                                              "agree_area": 0})
        a = to_hundredths(e.area)
        row["total_count"] += 1
        row["total_area"] += a
        choice = ballots.get(e.unit_id)
        if choice is not None:
            row["voted_count"] += 1
            row["voted_area"] += a
            if choice == AGREE:
                row["agree_count"] += 1
                row["agree_area"] += a
    return [finish_building_row(rows[k]) for k in sorted(rows)]


_TWO_THIRDS = Fraction(2, 3)


def finish_building_row(row: dict) -> dict:
    """Areas as strings, plus whether the building alone reaches 2/3 of its area and households."""
    out = dict(row)
    out["agree_area_two_thirds"] = _meets(row["agree_area"], row["total_area"], _TWO_THIRDS, False)
    out["agree_count_two_thirds"] = _meets(row["agree_count"], row["total_count"], _TWO_THIRDS, False)
    for k in ("total_area", "voted_area", "agree_area"):
        out[k] = area_str(row[k])
    return out


def tally(entries: Iterable[RollEntry], ballots: Mapping[int, str], preset_key: str,
          counting_mode: str = "household", scope_building_ids: Iterable[int] | None = None) -> Tally:
    """The whole engine on plain data: roll entries, counted ballots (unit id -> choice), a preset."""
    if preset_key not in PRESETS:
        raise ValueError(f"未知的表决规则：{preset_key}")
    scoped = in_scope(entries, scope_building_ids)
    unit_ids = {e.unit_id for e in scoped}
    counted = {u: c for u, c in ballots.items() if u in unit_ids}
    figures = figures_for(scoped, counted, counting_mode)
    return evaluate(preset_key, counting_mode, figures, building_breakdown(scoped, counted))
