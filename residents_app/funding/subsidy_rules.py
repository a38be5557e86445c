"""Subsidy rules as settings of the street office: category percentages with a per-m² cap (seed 001), or the
government matching residents' payments up to a limit per household (seed 003, Zhuhai: 1:1, at most 5,000 yuan).

The street office picks its rule on a page, sees its effect on one of its estates before saving, and every
change is an audit record (`plans.rule_set`).
"""

from __future__ import annotations

from datetime import datetime
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.audit.services import actor_for_user, record
from residents_app.core.money import RULE_KINDS, Rule
from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.funding.models import DEFAULT_CAP_FEN_PER_M2, DEFAULT_RESIDENT_PCT, ContributionRule
from residents_app.funding.services import compute_plan, rule_of_row
from residents_app.plans.models import CATEGORIES, CATEGORY_LABELS
from residents_app.plans.schemas import yuan_to_fen
from residents_app.plans.services import current_plan
from residents_app.registry.models import Estate

RULE_KIND_LABELS = {"category": "按类别比例出资，补助每平方米封顶", "match": "政府按居民出资配套，每户封顶"}


def current_rule(street_office_id: int) -> Rule:
    row = db.session.execute(sa.select(ContributionRule).where(
        ContributionRule.street_office_id == street_office_id)).scalar_one_or_none()
    if row is None:
        return Rule(pct=dict(DEFAULT_RESIDENT_PCT), cap_fen_per_m2=DEFAULT_CAP_FEN_PER_M2)
    return rule_of_row(row)


def estates_of_office(street_office_id: int) -> list[Estate]:
    return list(db.session.execute(sa.select(Estate).where(Estate.street_office_id == street_office_id)
                                   .order_by(Estate.name, Estate.id)).scalars())


def validate_rule(rule: Rule) -> Rule:
    errors = {}
    if rule.kind not in RULE_KINDS:
        errors["kind"] = ["补助规则必须是 按类别比例 或 按居民出资配套"]
    for c in CATEGORIES:
        value = rule.pct.get(c)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            errors[c] = [f"{CATEGORY_LABELS[c]}类居民出资比例必须是 0 到 100 之间的整数"]
    if not isinstance(rule.cap_fen_per_m2, int) or rule.cap_fen_per_m2 < 0:
        errors["cap_fen_per_m2"] = ["每平方米补助上限必须是不小于零的整数（分）"]
    if rule.kind == "match":
        if not 0 < Fraction(rule.match_ratio) <= 10 or (Fraction(rule.match_ratio) * 100).denominator != 1:
            errors["match_ratio_pct"] = ["配套比例必须是 1% 到 1000% 之间的整数百分比（1:1 即 100%）"]
        if not isinstance(rule.match_limit_fen, int) or rule.match_limit_fen <= 0:
            errors["match_limit_fen"] = ["每户配套上限必须大于零"]
    if errors:
        raise ValidationFailed("补助规则有误", errors=errors)
    return rule


def rule_from_form(form) -> Rule:
    """The page's fields (percentages as integers, amounts in yuan) as a Rule; raises ValidationFailed."""
    def pct(name, default):
        raw = (form.get(name) or "").strip()
        if not raw:
            return default
        try:
            return int(raw)
        except ValueError:
            raise ValidationFailed("比例须为整数", errors={name: [f"「{raw}」不是整数"]}) from None

    kind = form.get("kind", "category")
    rule = Rule(pct={c: pct(c, DEFAULT_RESIDENT_PCT[c]) for c in CATEGORIES},
                cap_fen_per_m2=yuan_to_fen(form.get("cap_yuan_per_m2") or "400", "cap_yuan_per_m2", "每平方米补助上限"),
                kind=kind, match_ratio=Fraction(pct("match_ratio_pct", 100), 100),
                match_limit_fen=(yuan_to_fen(form.get("match_limit_yuan") or "0", "match_limit_yuan", "每户配套上限")
                                 if kind == "match" else 0))
    return validate_rule(rule)


def describe(rule: Rule) -> str:
    if rule.kind == "match":
        ratio = Fraction(rule.match_ratio)
        text = "1:1" if ratio == 1 else f"{int(ratio * 100)}%"
        return f"政府按居民出资 {text} 配套，每户最多 {rule.match_limit_fen // 100:,} 元"
    pcts = "，".join(f"{CATEGORY_LABELS[c]} {rule.pct[c]}%" for c in CATEGORIES)
    return f"居民出资：{pcts}；政府补助每平方米不超过 {rule.cap_fen_per_m2 // 100:,} 元"


def preview(estate: Estate, current: Rule, candidate: Rule) -> dict | None:
    """The effect of `candidate` on one estate's current plan, next to the rule in force."""
    plan = current_plan(estate.id)
    if plan is None or not plan.items:
        return {"estate": estate, "plan": None}
    now_c, new_c = compute_plan(plan, rule=current), compute_plan(plan, rule=candidate)
    units = sorted(new_c.units.values(), key=lambda u: -u.owed_fen)
    return {"estate": estate, "plan": plan, "current": now_c, "candidate": new_c,
            "rows": [{"key": u.key, "now": now_c.units[u.key].owed_fen, "new": u.owed_fen} for u in units[:10]]}


def save_rule(street_office_id: int, rule: Rule, *, user, now: datetime) -> ContributionRule:
    rule = validate_rule(rule)
    row = db.session.execute(sa.select(ContributionRule).where(
        ContributionRule.street_office_id == street_office_id)).scalar_one_or_none()
    before = describe(rule_of_row(row)) if row is not None else describe(current_rule(street_office_id))
    if row is None:
        row = ContributionRule(street_office_id=street_office_id)
        db.session.add(row)
    for c in CATEGORIES:
        setattr(row, f"{c}_pct", rule.pct[c])
    row.cap_fen_per_m2 = rule.cap_fen_per_m2
    row.kind = rule.kind
    row.match_ratio_pct = int(Fraction(rule.match_ratio) * 100)
    row.match_limit_fen = rule.match_limit_fen
    row.updated_at = now
    db.session.flush()
    record("plans.rule_set", chain=0, actor=actor_for_user(user), now=now, subject_type="street_office",
           subject_id=street_office_id,
           data={"kind": rule.kind, "pct": {c: rule.pct[c] for c in CATEGORIES}, "cap_fen_per_m2": rule.cap_fen_per_m2,
                 "match_ratio_pct": row.match_ratio_pct, "match_limit_fen": rule.match_limit_fen,
                 "before": before, "after": describe(rule)})
    return row


def history(street_office_id: int) -> list[AuditEvent]:
    return list(db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.kind == "plans.rule_set", AuditEvent.subject_type == "street_office",
        AuditEvent.subject_id == str(street_office_id)).order_by(AuditEvent.seq.desc()).limit(20)).scalars())
