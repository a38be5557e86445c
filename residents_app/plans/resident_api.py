"""The resident API of plans (/api/r/plans; resident session): my estate's published plan versions, one version's
items and costs by category, what changed against the previous version.

Money is given to the fen as strings of yuan ("1234.56"). The residents' and the subsidy's shares are the figures
funding saved with the version (read through plans.services.MONEY_READERS, which funding registers; plans does not
import funding). A draft or a version of another estate answers 404 as an unknown id.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import url_for
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import Schema, fields

from residents_app.auth.resident_api import resident_or_401
from residents_app.core.money import MoneyError
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.plans import services
from residents_app.plans.models import CATEGORIES, CATEGORY_LABELS, PlanVersion

api_bp = ApiBlueprint("plans_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：本小区已发布的改造方案、各版本的变化")

_PUBLISHED = ("published", "superseded")


@api_bp.before_request
def _signed_in():
    resident_or_401()  # before the body is read: without a session, 401 whatever was sent


def yuan(fen: int | None) -> str | None:
    """Fen as a string of yuan with two decimals, no thousands separator: 123456 -> "1234.56"."""
    if fen is None:
        return None
    sign = "-" if fen < 0 else ""
    fen = abs(int(fen))
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def _money(description: str, example: str = "1234.56", **kw) -> fields.String:
    return fields.String(metadata={"description": description + "（元，精确到分）", "example": example}, **kw)


# ---- schemas ---------------------------------------------------------------------------------------

class PlanBriefSchema(Schema):
    id = fields.Integer(metadata={"example": 4})
    number = fields.Integer(metadata={"description": "第几版", "example": 2})
    title = fields.String(metadata={"example": "幸福里小区老旧小区改造方案"})
    status = fields.String(metadata={"description": "published 现行 / superseded 已被新版本取代",
                                     "example": "published"})
    status_label = fields.String(metadata={"example": "已发布"})
    published_at = fields.DateTime(allow_none=True, metadata={"example": "2026-08-20T02:00:00+00:00"})
    supersedes_id = fields.Integer(allow_none=True, metadata={"description": "上一版的 id", "example": 3})
    change_summary = fields.String(metadata={"example": "增加屋面防水，外墙改为真石漆"})
    total_cost = _money("工程总费用", "1500000.00")


class PlanItemSchema(Schema):
    id = fields.Integer(metadata={"example": 11})
    name = fields.String(metadata={"example": "屋面防水"})
    category = fields.String(metadata={"example": "basic"})
    category_label = fields.String(metadata={"example": "基础"})
    scope_label = fields.String(metadata={"example": "全小区"})
    funding_mode = fields.String(metadata={"example": "subsidised"})
    funding_mode_label = fields.String(metadata={"example": "按类别补助"})
    description = fields.String(metadata={"example": "SBS 改性沥青防水卷材两道"})
    cost = _money("费用", "300000.00")
    resident = _money("居民承担", "30000.00", allow_none=True)
    subsidy = _money("补助", "270000.00", allow_none=True)


class CategoryTotalSchema(Schema):
    category = fields.String(metadata={"example": "basic"})
    category_label = fields.String(metadata={"example": "基础"})
    item_count = fields.Integer(metadata={"example": 2})
    cost = _money("该类别的费用合计", "500000.00")
    resident = _money("该类别居民承担合计", "50000.00", allow_none=True)
    subsidy = _money("该类别补助合计", "450000.00", allow_none=True)


class AttachmentSchema(Schema):
    filename = fields.String(metadata={"example": "效果图.pdf"})
    kind_label = fields.String(metadata={"example": "效果图"})
    url = fields.String(allow_none=True, metadata={"description": "现行版本的附件下载地址（凭住户会话）；旧版本为 null",
                                                   "example": "/r/plan/attachments/9"})


class PlanDetailSchema(PlanBriefSchema):
    budget_summary = fields.String(metadata={"example": "总预算 150 万元，其中……"})
    funding_plan = fields.String(metadata={"example": "政府补助与居民出资相结合"})
    management_plan = fields.String(metadata={"example": "改造后由物业统一管理"})
    resident_total = _money("居民承担合计", "150000.00", allow_none=True)
    subsidy_total = _money("补助合计", "1350000.00", allow_none=True)
    items = fields.List(fields.Nested(PlanItemSchema))
    categories = fields.List(fields.Nested(CategoryTotalSchema))
    attachments = fields.List(fields.Nested(AttachmentSchema))


class ChangedItemSchema(Schema):
    name = fields.String(metadata={"example": "外墙涂料"})
    changes = fields.List(fields.String(), metadata={"example": ["费用 20000000 → 25000000 分"]})
    old_cost = _money("上一版费用", "200000.00")
    new_cost = _money("本版费用", "250000.00")


class PlanDiffSchema(Schema):
    version_id = fields.Integer(metadata={"example": 4})
    number = fields.Integer(metadata={"example": 2})
    previous_id = fields.Integer(allow_none=True, metadata={"description": "上一版 id；第一版为 null", "example": 3})
    previous_number = fields.Integer(allow_none=True, metadata={"example": 1})
    change_summary = fields.String(metadata={"example": "增加屋面防水"})
    added = fields.List(fields.String(), metadata={"example": ["屋面防水"]})
    removed = fields.List(fields.String(), metadata={"example": []})
    changed = fields.List(fields.Nested(ChangedItemSchema))
    texts_changed = fields.List(fields.String(), metadata={"example": ["工程预算说明"]})
    old_total = _money("上一版总费用", "1200000.00", allow_none=True)
    new_total = _money("本版总费用", "1500000.00")
    attachments_old = fields.List(fields.String(), metadata={"example": ["效果图.pdf"]})
    attachments_new = fields.List(fields.String(), metadata={"example": ["效果图.pdf", "设计图纸.pdf"]})


# ---- reading ---------------------------------------------------------------------------------------

def _visible_plan(version_id: int) -> PlanVersion:
    resident = resident_or_401()
    plan = db.session.get(PlanVersion, version_id)
    if plan is None or plan.estate_id != resident.unit.estate_id or plan.status not in _PUBLISHED:
        raise NotFound("找不到该方案", code="plan_not_found")
    return plan


def _brief(plan: PlanVersion) -> dict:
    return {"id": plan.id, "number": plan.number, "title": plan.title, "status": plan.status,
            "status_label": plan.status_label, "published_at": plan.published_at,
            "supersedes_id": plan.supersedes_id, "change_summary": plan.change_summary or "",
            "total_cost": yuan(plan.total_cost_fen)}


@api_bp.route("/plans")
@api_bp.response(200, PlanBriefSchema(many=True))
def my_plans():
    """My estate's published plan versions, newest first (the one in force has status "published")."""
    resident = resident_or_401()
    plans = db.session.execute(
        sa.select(PlanVersion).where(PlanVersion.estate_id == resident.unit.estate_id,
                                     PlanVersion.status.in_(_PUBLISHED)).order_by(PlanVersion.number.desc())
    ).scalars().all()
    return [_brief(p) for p in plans]


@api_bp.route("/plans/<int:version_id>")
@api_bp.response(200, PlanDetailSchema)
def my_plan(version_id: int):
    """One published version: its items, and the costs with the residents' and the subsidy's shares by category."""
    plan = _visible_plan(version_id)
    try:
        money = services.saved_money(plan, ()) if plan.items else None
    except MoneyError:
        money = None  # a scope the register no longer fills: the costs stand, the shares are not given
    shares = {i.key: i for i in money.items} if money is not None else {}
    items, by_cat = [], {}
    for item in plan.items:
        share = shares.get(item.id)
        items.append({"id": item.id, "name": item.name, "category": item.category,
                      "category_label": item.category_label, "scope_label": item.scope_label,
                      "funding_mode": item.funding_mode, "funding_mode_label": item.funding_mode_label,
                      "description": item.description or "", "cost": yuan(item.cost_fen),
                      "resident": yuan(share.resident_fen) if share else None,
                      "subsidy": yuan(share.subsidy_fen) if share else None})
        cat = by_cat.setdefault(item.category, [0, 0, 0, 0])
        cat[0] += 1
        cat[1] += item.cost_fen
        cat[2] += share.resident_fen if share else 0
        cat[3] += share.subsidy_fen if share else 0
    categories = [{"category": c, "category_label": CATEGORY_LABELS[c], "item_count": by_cat[c][0],
                   "cost": yuan(by_cat[c][1]), "resident": yuan(by_cat[c][2]) if money else None,
                   "subsidy": yuan(by_cat[c][3]) if money else None} for c in CATEGORIES if c in by_cat]
    current = plan.status == "published"
    attachments = [{"filename": a.filename, "kind_label": a.kind_label,
                    "url": url_for("plans.resident_attachment", att_id=a.id) if current else None}
                   for a in plan.attachments]
    return {**_brief(plan), "budget_summary": plan.budget_summary or "", "funding_plan": plan.funding_plan or "",
            "management_plan": plan.management_plan or "",
            "resident_total": yuan(money.resident_total_fen) if money else None,
            "subsidy_total": yuan(money.subsidy_total_fen) if money else None,
            "items": items, "categories": categories, "attachments": attachments}


@api_bp.route("/plans/<int:version_id>/diff")
@api_bp.response(200, PlanDiffSchema)
def my_plan_diff(version_id: int):
    """What changed against the previous version: items added, removed and changed, texts, totals."""
    plan = _visible_plan(version_id)
    previous = plan.supersedes
    out = {"version_id": plan.id, "number": plan.number, "change_summary": plan.change_summary or "",
           "previous_id": None, "previous_number": None, "added": [], "removed": [], "changed": [],
           "texts_changed": [], "old_total": None, "new_total": yuan(plan.total_cost_fen),
           "attachments_old": [], "attachments_new": [a.filename for a in plan.attachments]}
    if previous is None:
        return out
    d = services.plan_diff(previous, plan)
    out.update(previous_id=previous.id, previous_number=previous.number, added=d["added"], removed=d["removed"],
               texts_changed=d["texts_changed"], old_total=yuan(d["old_total_fen"]), new_total=yuan(d["new_total_fen"]),
               attachments_old=d["attachments_old"], attachments_new=d["attachments_new"],
               changed=[{"name": c["name"], "changes": c["changes"], "old_cost": yuan(c["old_cost_fen"]),
                         "new_cost": yuan(c["new_cost_fen"])} for c in d["changed"]])
    return out
