"""The evaluation's arithmetic (问效评分): a template of aspects and items, each item worth some points (its
weight); named evaluators in groups (resident representatives, community, street office) score items; exact
totals with Fraction, shown rounded half up to two places. Pure: no Flask, no SQLAlchemy.

The rules, stated once:
- An evaluator's score for an item lies in [0, the item's points]; an item an evaluator left blank is missing
  for that evaluator, not zero.
- Within a group an item's score is the mean of the evaluators of that group who scored it.
- Across groups the group means are weighted by the groups' weights, renormalised over the groups that scored
  the item (a group without any score for the item neither helps nor hurts it).
- An item nobody scored counts 0 and is listed in `missing`; an evaluation with missing items is incomplete.
- The total is the exact sum of the item scores; the grade is decided on the exact total, never on the
  rounded figure (89.995 shows "90.00" and is still 良好).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction

GROUPS = ("resident", "community", "street")
GROUP_LABELS = {"resident": "居民代表", "community": "社区", "street": "街道办事处"}
DEFAULT_GROUP_WEIGHTS = {"resident": 50, "community": 20, "street": 30}
# (lowest exact total, grade), highest first
GRADES = ((Fraction(90), "优秀"), (Fraction(80), "良好"), (Fraction(60), "合格"), (Fraction(0), "不合格"))


class TemplateError(ValueError):
    """A template or a score that breaks the rules; `errors` maps a field to a Chinese message."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.errors = errors or {}


@dataclass(frozen=True)
class Item:
    key: str
    aspect: str
    title: str
    points: Decimal


@dataclass(frozen=True)
class Template:
    aspects: tuple[tuple[str, tuple[Item, ...]], ...]

    @property
    def items(self) -> list[Item]:
        return [i for _, items in self.aspects for i in items]

    @property
    def total_points(self) -> Decimal:
        return sum((i.points for i in self.items), Decimal(0))


@dataclass
class Sheet:
    """One named evaluator's scores: item key -> Decimal (absent = not scored)."""

    evaluator: str
    group: str
    scores: dict[str, Decimal]


@dataclass
class Result:
    items: dict[str, Fraction]
    aspects: list[tuple[str, Fraction, Decimal]]  # (aspect, exact score, its points)
    total: Fraction
    total_points: Decimal
    missing: list[str] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        return not self.missing

    @property
    def total_text(self) -> str:
        return two_places(self.total)

    @property
    def grade(self) -> str:
        return grade_of(self.total)


def two_places(value: Fraction | Decimal | int) -> str:
    """Half up to two places, exactly: Fraction(89995, 1000) -> "90.00", Fraction(1, 3) -> "0.33"."""
    f = Fraction(value)
    sign = "-" if f < 0 else ""
    f = abs(f)
    hundredths = (f * 100 * 2 + 1) // 2  # floor(x + 1/2) on exact values
    return f"{sign}{hundredths // 100}.{hundredths % 100:02d}"


def grade_of(total: Fraction) -> str:
    for lowest, label in GRADES:
        if total >= lowest:
            return label
    return GRADES[-1][1]


def parse_points(text, *, field_name: str = "points") -> Decimal:
    """A score or a weight as entered: at most two decimal places, not negative."""
    try:
        value = Decimal(str(text).strip())
    except (InvalidOperation, ValueError):
        raise TemplateError(f"「{text}」不是数字", {field_name: "须为数字"}) from None
    if not value.is_finite() or value < 0:
        raise TemplateError(f"「{text}」须为不小于 0 的数字", {field_name: "不能为负数"})
    if value != value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
        raise TemplateError(f"「{text}」最多两位小数", {field_name: "最多两位小数"})
    return value


def template_from_data(data: list[dict]) -> Template:
    """[{"aspect": "...", "items": [{"key": "1.1", "title": "...", "points": "1.5"}, ...]}, ...]"""
    if not isinstance(data, list) or not data:
        raise TemplateError("评价模板至少要有一个方面", {"aspects": "为空"})
    aspects, keys = [], set()
    for a in data:
        name = str(a.get("aspect", "")).strip()
        if not name:
            raise TemplateError("每个方面都要有名称", {"aspect": "为空"})
        items = []
        for i in a.get("items") or []:
            key, title = str(i.get("key", "")).strip(), str(i.get("title", "")).strip()
            if not key or not title:
                raise TemplateError(f"「{name}」中有评价项目缺少编号或内容", {"item": name})
            if key in keys:
                raise TemplateError(f"评价项目编号 {key} 重复", {"key": key})
            keys.add(key)
            points = parse_points(i.get("points"), field_name=key)
            if points == 0:
                raise TemplateError(f"评价项目 {key} 的分值须大于 0", {key: "分值为 0"})
            items.append(Item(key=key, aspect=name, title=title, points=points))
        if not items:
            raise TemplateError(f"「{name}」没有评价项目", {"aspect": name})
        aspects.append((name, tuple(items)))
    return Template(aspects=tuple(aspects))


def template_to_data(t: Template) -> list[dict]:
    return [{"aspect": name, "items": [{"key": i.key, "title": i.title, "points": str(i.points)} for i in items]}
            for name, items in t.aspects]


def template_from_lines(text: str) -> Template:
    """The street office's editing form: one item a line, "方面 | 编号 | 内容 | 分值"."""
    aspects: dict[str, list[dict]] = {}
    for n, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4:
            raise TemplateError(f"第 {n} 行须为「方面 | 编号 | 内容 | 分值」", {f"line{n}": line[:60]})
        aspect, key, title, points = parts
        aspects.setdefault(aspect, []).append({"key": key, "title": title, "points": points})
    return template_from_data([{"aspect": a, "items": items} for a, items in aspects.items()])


def template_to_lines(t: Template) -> str:
    return "\n".join(f"{i.aspect} | {i.key} | {i.title} | {i.points}" for i in t.items)


def check_sheet(t: Template, scores: dict[str, object]) -> dict[str, Decimal]:
    """Validate one evaluator's raw scores (item key -> text; blank = not scored) against the template."""
    by_key = {i.key: i for i in t.items}
    out: dict[str, Decimal] = {}
    for key, raw in scores.items():
        if key not in by_key:
            raise TemplateError(f"模板中没有评价项目 {key}", {key: "未知项目"})
        if raw is None or str(raw).strip() == "":
            continue
        value = parse_points(raw, field_name=key)
        if value > by_key[key].points:
            raise TemplateError(f"评价项目 {key} 的得分 {value} 超过其分值 {by_key[key].points}",
                                {key: f"不超过 {by_key[key].points}"})
        out[key] = value
    return out


def check_group_weights(weights: dict[str, object]) -> dict[str, int]:
    out = {}
    for g in GROUPS:
        try:
            w = int(str(weights.get(g, 0)).strip())
        except ValueError:
            raise TemplateError(f"{GROUP_LABELS[g]}的权重须为整数", {g: "须为整数"}) from None
        if w < 0:
            raise TemplateError(f"{GROUP_LABELS[g]}的权重不能为负", {g: "不能为负"})
        out[g] = w
    if sum(out.values()) != 100:
        raise TemplateError(f"各方权重之和须为 100（现为 {sum(out.values())}）", {"weights": "之和须为 100"})
    return out


def score(t: Template, sheets: list[Sheet], group_weights: dict[str, int]) -> Result:
    items: dict[str, Fraction] = {}
    missing: list[str] = []
    for item in t.items:
        weighted, weight_sum = Fraction(0), 0
        for g in GROUPS:
            given = [s.scores[item.key] for s in sheets if s.group == g and item.key in s.scores]
            w = group_weights.get(g, 0)
            if not given or w == 0:
                continue
            weighted += w * Fraction(sum(given, Decimal(0))) / len(given)
            weight_sum += w
        if weight_sum == 0:
            missing.append(item.key)
            items[item.key] = Fraction(0)
        else:
            items[item.key] = weighted / weight_sum
    aspects = [(name, sum((items[i.key] for i in its), Fraction(0)), sum((i.points for i in its), Decimal(0)))
               for name, its in t.aspects]
    return Result(items=items, aspects=aspects, total=sum(items.values(), Fraction(0)),
                  total_points=t.total_points, missing=missing)
