"""Money use cases: contribution rules, statements, hardship treatment, pledges, payments and the
funding summary. Each takes `now`, flushes, never commits, raises DomainError.

How the money is computed is documented in `residents_app/core/money.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.core.money import (
    Contributions,
    ItemIn,
    OffsetIn,
    Rule,
    UnitIn,
    compute_contributions,
)
from residents_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding.account import book_payment
from residents_app.funding.account_models import AccountEntry, FundingSource
from residents_app.funding.models import (
    DEFAULT_CAP_FEN_PER_M2,
    DEFAULT_RESIDENT_PCT,
    HARDSHIP_MODES,
    PAYMENT_METHODS,
    ContributionRule,
    HardshipTreatment,
    Payment,
    Pledge,
    money_locked,
)
from residents_app.funding.owed import contributions_of, owed_by_unit, owed_of_unit
from residents_app.plans import services as plan_svc
from residents_app.plans.models import (
    CATEGORIES,
    CATEGORY_LABELS,
    PlanItem,
    PlanVersion,
)
from residents_app.plans.services import MAX_COST_FEN, current_plan
from residents_app.registry.models import Building, Estate, Unit


def unit_actor(unit: Unit, owner) -> str:
    return f"unit:{unit.id}/owner:{owner.id}"


def rule_for_estate(estate: Estate) -> Rule:
    """The street office's rule, or the seed-001 defaults (0/10/30/70 %, 400 yuan/m²)."""
    row = db.session.execute(
        sa.select(ContributionRule).where(ContributionRule.street_office_id == estate.street_office_id)
    ).scalar_one_or_none()
    if row is None:
        return Rule(pct=dict(DEFAULT_RESIDENT_PCT), cap_fen_per_m2=DEFAULT_CAP_FEN_PER_M2)
    return rule_of_row(row)


def rule_of_row(row: ContributionRule) -> Rule:
    return Rule(pct=row.pct_by_category(), cap_fen_per_m2=row.cap_fen_per_m2, kind=row.kind or "category",
                match_ratio=Fraction(row.match_ratio_pct if row.match_ratio_pct is not None else 100, 100),
                match_limit_fen=row.match_limit_fen or 0)


def set_contribution_rule(street_office_id: int, *, pct: dict[str, int], cap_fen_per_m2: int, user,
                          now: datetime) -> ContributionRule:
    errors = {}
    for c in CATEGORIES:
        value = pct.get(c)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 100:
            errors[c] = [f"{CATEGORY_LABELS[c]}类居民出资比例必须是 0 到 100 之间的整数"]
    if not isinstance(cap_fen_per_m2, int) or cap_fen_per_m2 < 0:
        errors["cap_fen_per_m2"] = ["每平方米补助上限必须是不小于零的整数（分）"]
    if errors:
        raise ValidationFailed("出资规则有误", errors=errors)
    row = db.session.execute(
        sa.select(ContributionRule).where(ContributionRule.street_office_id == street_office_id)
    ).scalar_one_or_none()
    if row is None:
        row = ContributionRule(street_office_id=street_office_id)
        db.session.add(row)
    for c in CATEGORIES:
        setattr(row, f"{c}_pct", pct[c])
    row.cap_fen_per_m2 = cap_fen_per_m2
    row.kind = "category"
    row.updated_at = now
    db.session.flush()
    record("plans.rule_set", chain=0, actor=actor_for_user(user), now=now, subject_type="street_office",
           subject_id=street_office_id, data={"pct": {c: pct[c] for c in CATEGORIES},
                                              "cap_fen_per_m2": cap_fen_per_m2})
    return row


def estate_units(estate_id: int) -> list[Unit]:
    return list(db.session.execute(
        sa.select(Unit).join(Building).where(Unit.estate_id == estate_id).order_by(Building.name, Unit.number)
    ).scalars())


def hardship_by_unit(estate_id: int) -> dict[int, HardshipTreatment]:
    rows = db.session.execute(
        sa.select(HardshipTreatment).where(HardshipTreatment.estate_id == estate_id)).scalars()
    return {h.unit_id: h for h in rows}


def _keys_of(by_building: dict, building_ids: set) -> set:
    return {k for b in building_ids for k in by_building.get(b, ())}


def offsets_for_plan(plan: PlanVersion) -> list[OffsetIn]:
    """The funding sources of the estate that count (evidence attached, decision in place), as offsets."""
    from residents_app.funding.sources import source_counts

    by_name = {i.name: i.id for i in plan.items}
    out = []
    rows = db.session.execute(sa.select(FundingSource).where(
        FundingSource.estate_id == plan.estate_id, FundingSource.withdrawn_at.is_(None)).order_by(FundingSource.id))
    for src in rows.scalars():
        if not source_counts(src):
            continue
        keys = tuple(by_name[n] for n in (src.item_names or []) if n in by_name)
        if src.item_names and not keys:
            continue  # its items are not in this version
        out.append(OffsetIn(key=src.id, amount_fen=src.amount_fen, item_keys=keys))
    return out


def compute_plan(plan: PlanVersion, *, costs: dict[int, int] | None = None, rule: Rule | None = None
                 ) -> Contributions:
    """The contributions of a version; `costs` (item id -> fen) replaces costs (settlement); `rule` replaces the
    street office's rule (preview of a new rule)."""
    # Columns only (not Unit objects): a large estate's statements are computed often; same order as estate_units.
    units = db.session.execute(
        sa.select(Unit.id, Unit.building_id, Unit.title_area_m2).join(Building).where(Unit.estate_id == plan.estate_id)
        .order_by(Building.name, Unit.number)).all()
    hardship = hardship_by_unit(plan.estate_id)
    unit_in = []
    for u in units:
        h = hardship.get(u.id)
        unit_in.append(UnitIn(key=u.id, area_m2=u.title_area_m2, hardship_mode=h.mode if h else None,
                              hardship_subsidy_fen=h.subsidy_fen if h else 0,
                              hardship_covered_by=h.covered_by if h else ""))
    all_keys = tuple(u.id for u in units)
    by_building: dict[int, list[int]] = {}
    for u in units:
        by_building.setdefault(u.building_id, []).append(u.id)
    items_in = []
    for item in plan.items:
        if item.scope == "estate":
            keys = all_keys
        else:
            inside = _keys_of(by_building, {b.id for b in item.buildings})
            keys = tuple(k for k in all_keys if k in inside)
        cost = costs.get(item.id, item.cost_fen) if costs is not None else item.cost_fen
        mode = item.funding_mode or "subsidised"
        items_in.append(ItemIn(key=item.id, name=item.name, category=item.category, cost_fen=cost,
                               unit_keys=keys, mode=mode,
                               fixed_subsidy_fen=min(item.fixed_subsidy_fen or 0, cost) if mode == "separate" else 0))
    return compute_contributions(items_in, unit_in, rule or rule_for_estate(plan.estate),
                                 offsets_for_plan(plan))


@dataclass
class StatementLine:
    item: PlanItem
    share_fen: int
    item_resident_fen: int
    pct: int
    excess_fen: int
    area_m2: object
    scope_area_m2: object
    explanation: str


def unit_statement(plan: PlanVersion, unit: Unit, contributions: Contributions | None = None) -> dict:
    """A unit's share of each item in its scope, with how it was computed (Chinese). Without `contributions`,
    the unit's saved row and the version's saved figures (funding/owed.py), not the whole estate computed."""
    c = contributions or contributions_of(plan, [unit.id])
    out = c.units[unit.id]
    items = {i.id: i for i in plan.items}
    item_out = {i.key: i for i in c.items}
    lines = []
    for ln in out.lines:
        io = item_out[ln.item_key]
        item = items[ln.item_key]
        text = _line_head(item, io, c.rule_kind)
        if io.excess_fen:
            text += f"，另加超出补助上限部分 {_yuan(io.excess_fen)} 元"
        if io.mode == "subsidised" and c.rule_kind == "match":
            text += (f"；费用按产权面积分摊给 {io.unit_count} 户（共 {io.scope_area_m2:.2f} m²），本户 "
                     f"{ln.area_m2:.2f} m² 分摊 {_yuan(ln.share_fen + ln.matched_fen)} 元，政府配套 "
                     f"{_yuan(ln.matched_fen)} 元，应摊 {_yuan(ln.share_fen)} 元")
        else:
            text += (f"；共 {_yuan(io.resident_fen)} 元按产权面积分摊给 {io.unit_count} 户"
                     f"（共 {io.scope_area_m2:.2f} m²），本户 {ln.area_m2:.2f} m²，应摊 {_yuan(ln.share_fen)} 元")
        lines.append(StatementLine(item=item, share_fen=ln.share_fen, item_resident_fen=io.resident_fen,
                                   pct=io.pct, excess_fen=io.excess_fen, area_m2=ln.area_m2,
                                   scope_area_m2=io.scope_area_m2, explanation=text))
    offsets = []
    if out.offsets:
        sources = {s.id: s for s in db.session.execute(
            sa.select(FundingSource).where(FundingSource.id.in_(list(out.offsets)))).scalars()}
        for k, v in out.offsets.items():
            src = sources[k]
            who = f"（{src.provider}）" if src.provider else ""
            used = _yuan(c.offsets_used.get(k, 0))
            offsets.append({"source": src, "fen": v, "explanation": (
                f"{src.kind_label}{who} {used} 元，{src.target_label}，本户抵扣 {_yuan(v)} 元")})
    return {"plan": plan, "unit": unit, "lines": lines, "share_fen": out.share_fen,
            "offset_fen": out.offset_fen, "offsets": offsets, "matched_fen": out.matched_fen,
            "covered_fen": out.covered_fen, "covered_by": out.covered_by, "hardship_mode": out.hardship_mode,
            "owed_fen": out.owed_fen, "cap_fen": c.cap_fen, "excess_fen": c.excess_fen}


def _line_head(item: PlanItem, io, rule_kind: str) -> str:
    if io.mode == "self_paid":
        return (f"{item.name}（居民自费，{item.scope_label}）费用 {_yuan(io.cost_fen)} 元，不计入补助基数，"
                f"居民承担 100% 即 {_yuan(io.base_resident_fen)} 元")
    if io.mode == "separate":
        return (f"{item.name}（另行补助，{item.scope_label}）费用 {_yuan(io.cost_fen)} 元，另行补助 "
                f"{_yuan(io.fixed_subsidy_fen)} 元，不计入补助基数，居民承担 {_yuan(io.base_resident_fen)} 元")
    if rule_kind == "match":
        return (f"{item.name}（{item.category_label}，{item.scope_label}）费用 {_yuan(io.cost_fen)} 元，"
                f"政府按居民出资配套 {_yuan(io.matched_fen)} 元，居民承担 {_yuan(io.base_resident_fen)} 元")
    return (f"{item.name}（{item.category_label}，{item.scope_label}）费用 {_yuan(io.cost_fen)} 元，"
            f"居民承担 {io.pct}% 即 {_yuan(io.base_resident_fen)} 元")


def _yuan(fen: int) -> str:
    from residents_app.formatting import format_yuan

    return format_yuan(fen)


def set_hardship(estate: Estate, unit: Unit, *, mode: str, covered_by: str, subsidy_fen: int = 0,
                 note: str = "", user, now: datetime) -> HardshipTreatment:
    if unit.estate_id != estate.id:
        raise NotFound("找不到该户")
    errors = {}
    if mode not in HARDSHIP_MODES:
        errors["mode"] = ["减免方式必须是 全额减免 或 部分补助"]
    covered_by = (covered_by or "").strip()
    if not covered_by or len(covered_by) > 60:
        errors["covered_by"] = ["请填写承担方（如 街道、社区、慈善），不超过 60 个字"]
    if mode == "partial" and (not isinstance(subsidy_fen, int) or subsidy_fen <= 0):
        errors["subsidy_fen"] = ["部分补助的金额必须大于零"]
    if errors:
        raise ValidationFailed(f"{unit.label} 的困难户减免有误", errors=errors)
    _ensure_money_not_locked(estate.id, "修改困难户减免")
    row = hardship_by_unit(estate.id).get(unit.id)
    if row is None:
        row = HardshipTreatment(estate_id=estate.id, unit_id=unit.id, created_at=now)
        db.session.add(row)
    row.mode, row.covered_by, row.note = mode, covered_by, (note or "").strip()
    row.subsidy_fen = subsidy_fen if mode == "partial" else 0
    unit.is_hardship = True
    db.session.flush()
    record("plans.hardship_set", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="unit",
           subject_id=unit.id, data={"unit": unit.label, "mode": mode, "subsidy_fen": row.subsidy_fen,
                                     "covered_by": covered_by})
    return row


def clear_hardship(estate: Estate, unit: Unit, *, user, now: datetime) -> None:
    row = hardship_by_unit(estate.id).get(unit.id)
    if row is None:
        raise NotFound(f"{unit.label} 没有困难户减免")
    _ensure_money_not_locked(estate.id, "取消困难户减免")
    db.session.delete(row)
    unit.is_hardship = False
    db.session.flush()
    record("plans.hardship_cleared", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="unit",
           subject_id=unit.id, data={"unit": unit.label})


def _ensure_money_not_locked(estate_id: int, what: str) -> None:
    plan = current_plan(estate_id)
    if plan is not None and money_locked(plan):
        raise Conflict(f"启动申请已提交，不能再{what}", code="start_submitted")



def active_pledge(plan: PlanVersion, unit: Unit) -> Pledge | None:
    return db.session.execute(
        sa.select(Pledge).where(Pledge.plan_version_id == plan.id, Pledge.unit_id == unit.id,
                                Pledge.withdrawn_at.is_(None))).scalar_one_or_none()


def sign_pledge(plan: PlanVersion, unit: Unit, owner, *, now: datetime) -> Pledge:
    if unit.estate_id != plan.estate_id:
        raise NotFound("找不到该方案")
    if not any(o.owner_id == owner.id for o in unit.ownerships):
        raise Forbidden("只有本户业主可以签署承诺书")
    if plan.status != "published":
        raise Conflict(f"方案第 {plan.number} 版{plan.status_label}，不能签署承诺书", code="plan_not_current")
    if not plan.pledge_window_open(now):
        raise Conflict("现在不在出资承诺签署期内", code="pledge_window_closed")
    if money_locked(plan):
        raise Conflict("启动申请已提交，承诺书不能再变更", code="start_submitted")
    if active_pledge(plan, unit) is not None:
        raise Conflict(f"{unit.label} 已签署本版方案的承诺书", code="pledge_exists")
    amount = owed_of_unit(plan, unit.id)
    pledge = Pledge(plan_version_id=plan.id, unit_id=unit.id, amount_fen=amount, signed_by_owner_id=owner.id,
                    signed_at=now)
    db.session.add(pledge)
    db.session.flush()
    record("plans.pledge_signed", chain=plan.estate_id, actor=unit_actor(unit, owner), now=now,
           subject_type="pledge", subject_id=pledge.id,
           data={"plan_version": plan.id, "unit": unit.label, "amount_fen": amount})
    return pledge


def withdraw_pledge(plan: PlanVersion, unit: Unit, owner, *, now: datetime) -> Pledge:
    if not any(o.owner_id == owner.id for o in unit.ownerships):
        raise Forbidden("只有本户业主可以撤回承诺书")
    pledge = active_pledge(plan, unit)
    if pledge is None:
        raise Conflict(f"{unit.label} 没有可撤回的承诺书", code="no_pledge")
    if money_locked(plan):
        raise Conflict("启动申请已提交，承诺书不能再撤回", code="start_submitted")
    pledge.withdrawn_at = now
    pledge.withdrawn_by_owner_id = owner.id
    db.session.flush()
    record("plans.pledge_withdrawn", chain=plan.estate_id, actor=unit_actor(unit, owner), now=now,
           subject_type="pledge", subject_id=pledge.id, data={"plan_version": plan.id, "unit": unit.label})
    return pledge


def pledges_of(plan: PlanVersion, *, include_withdrawn: bool = False) -> list[Pledge]:
    q = sa.select(Pledge).where(Pledge.plan_version_id == plan.id).order_by(Pledge.signed_at, Pledge.id)
    if not include_withdrawn:
        q = q.where(Pledge.withdrawn_at.is_(None))
    return list(db.session.execute(q).scalars())


def close_due_pledge_windows(now: datetime) -> int:
    """Mark every pledge window past its closing time as closed; returns how many were closed now.

    Idempotent: a closed window is never closed twice; running late closes at the scheduled time.
    """
    due = db.session.execute(
        sa.select(PlanVersion).where(PlanVersion.pledge_closes_at.is_not(None),
                                     PlanVersion.pledge_closes_at <= now,
                                     PlanVersion.pledge_closed_at.is_(None))
        # FOR UPDATE: a second scheduler waits, then re-checks the WHERE and skips what was closed.
        .order_by(PlanVersion.pledge_closes_at, PlanVersion.id).with_for_update()).scalars().all()
    for plan in due:
        plan.pledge_closed_at = plan.pledge_closes_at
        signed = db.session.execute(
            sa.select(sa.func.count()).select_from(Pledge)
            .where(Pledge.plan_version_id == plan.id, Pledge.withdrawn_at.is_(None))).scalar()
        record("plans.pledge_window_closed", chain=plan.estate_id, actor="system:scheduler", now=now,
               subject_type="plan_version", subject_id=plan.id,
               data={"closes_at": plan.pledge_closes_at.isoformat(), "active_pledges": signed})
    db.session.flush()
    return len(due)


def record_payment(estate: Estate, *, unit_id: int, amount_fen: int, method: str, paid_on: date,
                   reference: str = "", note: str = "", user, now: datetime) -> Payment:
    errors = {}
    unit = db.session.get(Unit, unit_id) if isinstance(unit_id, int) else None
    if unit is None or unit.estate_id != estate.id:
        errors["unit_id"] = ["该户不属于本小区"]
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        errors["amount_fen"] = ["收款金额必须大于零（冲正请用冲正功能）"]
    elif amount_fen > MAX_COST_FEN:
        errors["amount_fen"] = ["收款金额过大，请检查"]
    if method not in PAYMENT_METHODS:
        errors["method"] = ["付款方式必须是 现金、银行转账、微信、支付宝 或 其他"]
    if not isinstance(paid_on, date):
        errors["paid_on"] = ["请填写付款日期"]
    elif paid_on > beijing_date(now):
        errors["paid_on"] = ["付款日期不能晚于今天"]
    if len(reference or "") > 100:
        errors["reference"] = ["凭证号不能超过 100 个字"]
    if errors:
        raise ValidationFailed("收款记录有误", errors=errors)
    pay = Payment(estate_id=estate.id, unit_id=unit.id, amount_fen=amount_fen, method=method,
                  reference=(reference or "").strip(), paid_on=paid_on, note=(note or "").strip()[:200],
                  entered_by_id=user.id, entered_at=now)
    db.session.add(pay)
    db.session.flush()
    book_payment(pay, user=user, now=now)
    record("plans.payment_recorded", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="payment",
           subject_id=pay.id, data={"unit": unit.label, "amount_fen": amount_fen, "method": method,
                                    "reference": pay.reference, "paid_on": paid_on.isoformat()})
    return pay


def reverse_payment(payment: Payment, *, reason: str, user, now: datetime) -> Payment:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("冲正必须写明原因", errors={"reason": ["请填写冲正原因"]})
    if payment.reverses_id is not None:
        raise Conflict(f"第 {payment.id} 号记录本身是冲正记录，不能再冲正", code="is_reversal")
    already = db.session.execute(sa.select(Payment.id).where(Payment.reverses_id == payment.id)).scalar()
    if already is not None:
        raise Conflict(f"第 {payment.id} 号记录已被第 {already} 号记录冲正", code="already_reversed")
    rev = Payment(estate_id=payment.estate_id, unit_id=payment.unit_id, amount_fen=-payment.amount_fen,
                  method=payment.method, reference=payment.reference, paid_on=beijing_date(now),
                  note=reason[:200], entered_by_id=user.id, entered_at=now, reverses_id=payment.id)
    db.session.add(rev)
    db.session.flush()
    original_kind = db.session.execute(
        sa.select(AccountEntry.kind).where(AccountEntry.payment_id == payment.id)).scalar() or "payment"
    book_payment(rev, kind=original_kind, user=user, now=now)
    record("plans.payment_reversed", chain=payment.estate_id, actor=actor_for_user(user), now=now,
           subject_type="payment", subject_id=rev.id,
           data={"reverses": payment.id, "amount_fen": rev.amount_fen, "reason": reason})
    return rev


def ledger(estate_id: int) -> list[Payment]:
    return list(db.session.execute(
        sa.select(Payment).where(Payment.estate_id == estate_id).order_by(Payment.id)).scalars())


def paid_by_unit(estate_id: int) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(Payment.unit_id, sa.func.sum(Payment.amount_fen)).where(Payment.estate_id == estate_id)
        .group_by(Payment.unit_id)).all()
    return {uid: int(total) for uid, total in rows}


def paid_of_unit(unit_id: int) -> int:
    """What one unit has paid (the ledger sum of its payments): a statement's balance, without the estate's sums."""
    return int(db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(Payment.amount_fen), 0))
                                  .where(Payment.unit_id == unit_id)).scalar_one())


def _ratio(num: int, den: int) -> Fraction | None:
    return Fraction(num, den) if den else None


def funding_summary(estate_id: int) -> dict:
    """Paid / owed for the estate and each building, on the version in force.

    A unit's overpayment does not cover another unit's debt: the ratio counts min(paid, owed)
    per unit (`counted_fen`); `paid_fen` is the plain ledger sum. `ratio` is a Fraction (None when
    nothing is owed), `ratio_pair` the same as (numerator, denominator) of counted / owed.
    """
    plan = current_plan(estate_id)
    paid = paid_by_unit(estate_id)
    units = estate_units(estate_id)
    owed = owed_by_unit(plan) if plan is not None else {}
    buildings: dict[int, dict] = {}
    total = {"owed_fen": 0, "paid_fen": 0, "counted_fen": 0, "owing_units": 0, "unit_count": 0}
    for u in units:
        o, p = owed.get(u.id, 0), paid.get(u.id, 0)
        b = buildings.setdefault(u.building_id, {"building_id": u.building_id, "name": u.building.name,
                                                 "owed_fen": 0, "paid_fen": 0, "counted_fen": 0,
                                                 "owing_units": 0, "unit_count": 0})
        for acc in (b, total):
            acc["owed_fen"] += o
            acc["paid_fen"] += p
            acc["counted_fen"] += max(0, min(p, o))
            acc["owing_units"] += 1 if p < o else 0
            acc["unit_count"] += 1
    for acc in [total, *buildings.values()]:
        acc["ratio"] = _ratio(acc["counted_fen"], acc["owed_fen"])
        acc["ratio_pair"] = (acc["counted_fen"], acc["owed_fen"])
        acc["complete"] = acc["counted_fen"] == acc["owed_fen"]
    return {"estate_id": estate_id, "plan_version_id": plan.id if plan else None, **total,
            "buildings": sorted(buildings.values(), key=lambda b: b["name"])}


def units_owing(estate_id: int) -> list[dict]:
    plan = current_plan(estate_id)
    if plan is None:
        return []
    owed = owed_by_unit(plan)
    paid = paid_by_unit(estate_id)
    rows = []
    for u in estate_units(estate_id):
        o, p = owed.get(u.id, 0), paid.get(u.id, 0)
        if p < o:
            rows.append({"unit": u, "owed_fen": o, "paid_fen": p, "missing_fen": o - p})
    return rows


def format_ratio(ratio: Fraction | None) -> str:
    """A percentage with two decimals, rounded down (never shows 100.00 % before it is reached)."""
    if ratio is None:
        return "—"
    hundredths = (ratio * 10000).__floor__()
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


plan_svc.MONEY_CALCULATORS.append(compute_plan)
