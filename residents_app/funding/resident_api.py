"""The resident API of the money (/api/r/..., resident session): my unit's statement and settlement line, my pledges,
signing and withdrawing a pledge. The same services (and rules, and audit entries) as the phone pages /r/statement
and /r/pledge; money is given to the fen as a string of yuan ("1234.56", a minus sign for a refund).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields

from residents_app.auth.resident import Resident
from residents_app.auth.resident_api import register_home_section, resident_or_401
from residents_app.db import utcnow
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding import models, services
from residents_app.funding import settlement as settlement_svc
from residents_app.funding.models import Pledge
from residents_app.funding.owed import owed_of_unit
from residents_app.plans import services as plan_svc
from residents_app.plans.models import PlanVersion

api_bp = ApiBlueprint("funding_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：本户出资明细、决算多退少补、出资承诺书")


@api_bp.before_request
def _resident_first():
    """No resident session: 401 before the body is even read (the mini-program then asks for the identity check)."""
    resident_or_401()


def yuan_text(fen: int | None) -> str:
    """Fen as a plain string of yuan to the fen: 123456 -> "1234.56", -5 -> "-0.05" (no thousands separator)."""
    fen = int(fen or 0)
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---- schemas ---------------------------------------------------------------------------------------------------

class PlanRefSchema(Schema):
    id = fields.Integer(metadata={"example": 4})
    number = fields.Integer(metadata={"description": "方案版本号", "example": 2})
    title = fields.String(metadata={"example": "幸福小区综合改造方案"})


class StatementLineSchema(Schema):
    item_id = fields.Integer(metadata={"example": 17})
    item = fields.String(metadata={"example": "外墙保温"})
    category = fields.String(metadata={"description": "必选 required、基础 basic、完善 improvement、提升 upgrade",
                                       "example": "basic"})
    category_label = fields.String(metadata={"example": "基础"})
    funding_mode = fields.String(metadata={
        "description": "subsidised 按类别补助、self_paid 居民自费、separate 另行补助", "example": "subsidised"})
    resident_pct = fields.Integer(metadata={"description": "居民承担比例（%）", "example": 10})
    share = fields.String(metadata={"description": "本户分摊（元）", "example": "300.00"})
    explanation = fields.String(metadata={"example": (
        "外墙保温（基础，全体住户）费用 10,000.00 元，居民承担 10% 即 1,000.00 元；"
        "共 1,000.00 元按产权面积分摊给 3 户（共 200.00 m²），本户 60.00 m²，应摊 300.00 元")})


class OffsetSchema(Schema):
    source_id = fields.Integer(metadata={"example": 2})
    kind_label = fields.String(metadata={"example": "社会资本"})
    amount = fields.String(metadata={"description": "本户抵扣（元）", "example": "120.00"})
    explanation = fields.String(metadata={
        "example": "社会资本（某燃气公司） 20,000.00 元，全体住户，本户抵扣 120.00 元"})


class HardshipSchema(Schema):
    mode = fields.String(metadata={"description": "exempt 全额减免、partial 部分补助", "example": "partial"})
    mode_label = fields.String(metadata={"example": "部分补助"})
    covered = fields.String(metadata={"description": "减免或补助金额（元）", "example": "200.00"})
    covered_by = fields.String(metadata={"example": "街道"})


class StatementSchema(Schema):
    plan = fields.Nested(PlanRefSchema)
    unit_label = fields.String(metadata={"example": "1幢-101"})
    area_m2 = fields.String(metadata={"example": "60.00"})
    lines = fields.List(fields.Nested(StatementLineSchema))
    share = fields.String(metadata={"description": "本户分摊合计（元）", "example": "2700.00"})
    offsets = fields.List(fields.Nested(OffsetSchema), metadata={"description": "资金来源抵扣"})
    offset = fields.String(metadata={"description": "资金来源抵扣合计（元）", "example": "0.00"})
    matched = fields.String(metadata={"description": "政府按居民出资配套（元，已从分摊中扣除）", "example": "0.00"})
    hardship = fields.Nested(HardshipSchema, allow_none=True, metadata={"description": "困难户减免；没有为 null"})
    owed = fields.String(metadata={"description": "本户应缴（元）", "example": "2500.00"})
    paid = fields.String(metadata={"description": "已缴（元）", "example": "1000.00"})
    balance = fields.String(metadata={"description": "还需缴（元，应缴 − 已缴；负数为多缴）", "example": "1500.00"})


class SettlementLineSchema(Schema):
    plan = fields.Nested(PlanRefSchema)
    finalised_at = fields.String(metadata={"example": "2027-03-01T10:00:00+00:00"})
    planned_owed = fields.String(metadata={"description": "按方案应缴（元）", "example": "2500.00"})
    final_owed = fields.String(metadata={"description": "按审计决算应缴（元）", "example": "2350.00"})
    paid = fields.String(metadata={"description": "定稿时已缴（元）", "example": "2500.00"})
    difference = fields.String(metadata={"description": "决算应缴 − 已缴（元）：正数补缴，负数退还",
                                         "example": "-150.00"})
    kind = fields.String(allow_none=True, metadata={"description": "top_up 补缴、refund 退还；null 为无需退补",
                                                    "example": "refund"})
    kind_label = fields.String(metadata={"example": "退还"})
    amount = fields.String(metadata={"description": "退还或补缴金额（元）", "example": "150.00"})
    state = fields.String(metadata={"description": "open 待办、closed 已办、none 无需退补", "example": "open"})
    state_label = fields.String(metadata={"example": "待退还"})
    closed_at = fields.String(allow_none=True, metadata={"example": None})


class PledgeSchema(Schema):
    id = fields.Integer(metadata={"example": 31})
    plan = fields.Nested(PlanRefSchema)
    amount = fields.String(metadata={"description": "承诺出资（元）", "example": "2500.00"})
    signed_by = fields.String(metadata={"example": "张三"})
    signed_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})
    active = fields.Boolean(metadata={"example": True})
    withdrawn_at = fields.String(allow_none=True, metadata={"example": None})


class PledgeWindowSchema(Schema):
    plan = fields.Nested(PlanRefSchema)
    owed = fields.String(metadata={"description": "本户按方案应出资（元）", "example": "2500.00"})
    window_open = fields.Boolean(metadata={"example": True})
    opens_at = fields.String(allow_none=True, metadata={"example": "2026-09-01T02:00:00+00:00"})
    closes_at = fields.String(allow_none=True, metadata={"example": "2026-09-15T10:00:00+00:00"})
    locked = fields.Boolean(metadata={"description": "启动申请已提交，承诺书不能再变更", "example": False})
    pledge = fields.Nested(PledgeSchema, allow_none=True, metadata={"description": "本版方案有效的承诺书"})


class PledgesSchema(Schema):
    current = fields.Nested(PledgeWindowSchema, allow_none=True,
                            metadata={"description": "当前方案的承诺书签署期；还没有发布方案为 null"})
    pledges = fields.List(fields.Nested(PledgeSchema), metadata={"description": "本户所有承诺书（含已撤回），新的在前"})


class PledgeIn(Schema):
    class Meta:
        unknown = RAISE

    plan_id = fields.Integer(required=True, strict=True, metadata={
        "description": "签署的方案（须为当前发布的方案；方案已更新时返回 409，请重新读取）", "example": 4})
    confirm = fields.Boolean(required=True, metadata={
        "description": "业主已阅读方案和出资明细，同意按上述金额出资并多退少补", "example": True})


# ---- helpers ---------------------------------------------------------------------------------------------------

def _plan_ref(plan: PlanVersion) -> dict:
    return {"id": plan.id, "number": plan.number, "title": plan.title}


def _current_plan_or_404(resident: Resident) -> PlanVersion:
    plan = plan_svc.current_plan(resident.unit.estate_id)
    if plan is None:
        raise NotFound("本小区还没有发布改造方案", code="no_plan")
    return plan


def _pledge_json(p: Pledge) -> dict:
    return {"id": p.id, "plan": _plan_ref(p.plan_version), "amount": yuan_text(p.amount_fen),
            "signed_by": p.signed_by.name, "signed_at": _iso(p.signed_at), "active": p.withdrawn_at is None,
            "withdrawn_at": _iso(p.withdrawn_at)}


def statement_json(plan: PlanVersion, resident: Resident) -> dict:
    unit = resident.unit
    st = services.unit_statement(plan, unit)
    paid = services.paid_of_unit(unit.id)
    hardship = None
    if st["covered_fen"]:
        mode = st["hardship_mode"]
        hardship = {"mode": mode, "mode_label": "全额减免" if mode == "exempt" else "部分补助",
                    "covered": yuan_text(st["covered_fen"]), "covered_by": st["covered_by"]}
    return {
        "plan": _plan_ref(plan), "unit_label": unit.label, "area_m2": f"{unit.title_area_m2:.2f}",
        "lines": [{"item_id": ln.item.id, "item": ln.item.name, "category": ln.item.category,
                   "category_label": ln.item.category_label, "funding_mode": ln.item.funding_mode or "subsidised",
                   "resident_pct": ln.pct, "share": yuan_text(ln.share_fen), "explanation": ln.explanation}
                  for ln in st["lines"]],
        "share": yuan_text(st["share_fen"]),
        "offsets": [{"source_id": o["source"].id, "kind_label": o["source"].kind_label, "amount": yuan_text(o["fen"]),
                     "explanation": o["explanation"]} for o in st["offsets"]],
        "offset": yuan_text(st["offset_fen"]), "matched": yuan_text(st["matched_fen"]), "hardship": hardship,
        "owed": yuan_text(st["owed_fen"]), "paid": yuan_text(paid), "balance": yuan_text(st["owed_fen"] - paid)}


def pledge_window_json(plan: PlanVersion, resident: Resident, now: datetime) -> dict:
    pledge = services.active_pledge(plan, resident.unit)
    return {"plan": _plan_ref(plan), "owed": yuan_text(owed_of_unit(plan, resident.unit.id)),
            "window_open": plan.pledge_window_open(now), "opens_at": _iso(plan.pledge_opens_at),
            "closes_at": _iso(plan.pledge_closes_at), "locked": models.money_locked(plan),
            "pledge": _pledge_json(pledge) if pledge else None}


# ---- routes ----------------------------------------------------------------------------------------------------

@api_bp.route("/statement")
@api_bp.response(200, StatementSchema)
def statement():
    """My unit's statement under the current plan: each item's share and how it was computed, offsets, government
    matching, hardship relief, what is owed, paid and still to pay."""
    resident = resident_or_401()
    return statement_json(_current_plan_or_404(resident), resident)


@api_bp.route("/settlement")
@api_bp.response(200, SettlementLineSchema)
def settlement():
    """My unit's line of the final accounts (决算): owed by plan and by audited cost, paid, refund or top-up."""
    resident = resident_or_401()
    rows = settlement_svc.unit_settlement(resident.unit)
    if not rows:
        raise NotFound("本小区的工程还没有决算定稿", code="no_settlement")
    line, due = rows[-1]["line"], rows[-1]["due"]
    s = line.settlement
    if due is None:
        kind, kind_label, amount, state, state_label, closed = None, "无需退补", 0, "none", "已结清，无需退补", None
    else:
        kind, kind_label, amount = due.kind, due.kind_label, due.amount_fen
        state, state_label, closed = ("closed" if due.closed_at else "open"), due.state_label, due.closed_at
    return {"plan": _plan_ref(s.plan_version), "finalised_at": _iso(s.finalised_at),
            "planned_owed": yuan_text(line.planned_owed_fen), "final_owed": yuan_text(line.final_owed_fen),
            "paid": yuan_text(line.paid_fen), "difference": yuan_text(line.difference_fen), "kind": kind,
            "kind_label": kind_label, "amount": yuan_text(amount), "state": state, "state_label": state_label,
            "closed_at": _iso(closed)}


@api_bp.route("/pledges", methods=["GET"])
@api_bp.response(200, PledgesSchema)
def pledges():
    """My unit's pledges (withdrawn ones too) and the current plan's pledge window."""
    resident = resident_or_401()
    plan = plan_svc.current_plan(resident.unit.estate_id)
    rows = db.session.execute(sa.select(Pledge).where(Pledge.unit_id == resident.unit.id)
                              .order_by(Pledge.signed_at.desc(), Pledge.id.desc())).scalars()
    return {"current": pledge_window_json(plan, resident, utcnow()) if plan else None,
            "pledges": [_pledge_json(p) for p in rows]}


@api_bp.route("/pledges", methods=["POST"])
@api_bp.arguments(PledgeIn)
@api_bp.response(201, PledgeSchema)
def pledge_sign(data):
    """Sign my unit's pledge for the current plan, in its open pledge window (the amount is the unit's share)."""
    resident = resident_or_401()
    plan = _current_plan_or_404(resident)
    if data["plan_id"] != plan.id:
        raise Conflict(f"方案已更新为第 {plan.number} 版，请重新查看后再签署", code="plan_not_current")
    if data["confirm"] is not True:
        raise ValidationFailed("请勾选“我已阅读并确认”后再签署", errors={"confirm": ["未确认"]})
    pledge = services.sign_pledge(plan, resident.unit, resident.owner, now=utcnow())
    db.session.commit()
    return _pledge_json(pledge)


@api_bp.route("/pledges/<int:pledge_id>/withdraw", methods=["POST"])
@api_bp.response(200, PledgeSchema)
def pledge_withdraw(pledge_id: int):
    """Withdraw my unit's pledge of the current plan (not once the start application is submitted)."""
    resident = resident_or_401()
    pledge = db.session.get(Pledge, pledge_id)
    if pledge is None or pledge.unit_id != resident.unit.id:
        raise NotFound("找不到该承诺书", code="no_pledge")
    if pledge.withdrawn_at is not None:
        raise Conflict("该承诺书已撤回", code="no_pledge")
    plan = _current_plan_or_404(resident)
    if pledge.plan_version_id != plan.id:
        raise Conflict("该承诺书属于已被取代的方案版本，不能撤回", code="plan_not_current")
    services.withdraw_pledge(plan, resident.unit, resident.owner, now=utcnow())
    db.session.commit()
    return _pledge_json(pledge)


def _home_pledges(resident: Resident, now: datetime) -> dict | None:
    plan = plan_svc.current_plan(resident.unit.estate_id)
    return pledge_window_json(plan, resident, now) if plan is not None else None


register_home_section("pledges", _home_pledges)
