"""Plans and money use cases. Each takes `now`, flushes, never commits, raises DomainError.

How the money is computed is documented in `residents_app/core/money.py`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.money import (
    Contributions,
    ItemIn,
    MoneyError,
    Rule,
    UnitIn,
    compute_contributions,
)
from residents_app.errors import Conflict, Forbidden, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.plans.models import (
    ATTACHMENT_KINDS,
    CATEGORIES,
    CATEGORY_LABELS,
    DEFAULT_CAP_FEN_PER_M2,
    DEFAULT_RESIDENT_PCT,
    HARDSHIP_MODES,
    PAYMENT_METHODS,
    ContributionRule,
    HardshipTreatment,
    Payment,
    PlanAttachment,
    PlanItem,
    PlanVersion,
    Pledge,
    Settlement,
    SettlementItem,
    SettlementUnitLine,
    StartApplication,
)
from residents_app.registry.models import Building, Estate, Unit

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_COST_FEN = 10**13  # 1,000 亿 yuan: anything above is a typing error
_TEXT_FIELDS = {"title": "方案标题", "budget_summary": "工程预算说明", "funding_plan": "资金筹集方案",
                "management_plan": "长效管理方案", "change_summary": "变更说明"}


def _unit_actor(unit: Unit, owner) -> str:
    return f"unit:{unit.id}/owner:{owner.id}"


# ---- contribution rules ------------------------------------------------------------------------

def rule_for_estate(estate: Estate) -> Rule:
    """The street office's rule, or the seed-001 defaults (0/10/30/70 %, 400 yuan/m²)."""
    row = db.session.execute(
        sa.select(ContributionRule).where(ContributionRule.street_office_id == estate.street_office_id)
    ).scalar_one_or_none()
    if row is None:
        return Rule(pct=dict(DEFAULT_RESIDENT_PCT), cap_fen_per_m2=DEFAULT_CAP_FEN_PER_M2)
    return Rule(pct=row.pct_by_category(), cap_fen_per_m2=row.cap_fen_per_m2)


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
    row.updated_at = now
    db.session.flush()
    record("plans.rule_set", chain=0, actor=actor_for_user(user), now=now, subject_type="street_office",
           subject_id=street_office_id, data={"pct": {c: pct[c] for c in CATEGORIES},
                                              "cap_fen_per_m2": cap_fen_per_m2})
    return row


# ---- plan versions -----------------------------------------------------------------------------

def plans_of_estate(estate_id: int) -> list[PlanVersion]:
    return list(db.session.execute(
        sa.select(PlanVersion).where(PlanVersion.estate_id == estate_id).order_by(PlanVersion.number.desc())
    ).scalars())


def current_plan(estate_id: int) -> PlanVersion | None:
    """The published version in force (there is at most one)."""
    return db.session.execute(
        sa.select(PlanVersion).where(PlanVersion.estate_id == estate_id, PlanVersion.status == "published")
        .order_by(PlanVersion.number.desc()).limit(1)
    ).scalar_one_or_none()


def _clean_text(fields: dict) -> dict:
    out = {}
    errors = {}
    for key, value in fields.items():
        if key not in _TEXT_FIELDS:
            raise ValidationFailed(f"未知字段：{key}", errors={key: ["未知字段"]})
        value = (value or "").strip()
        limit = 200 if key == "title" else 20000
        if len(value) > limit:
            errors[key] = [f"{_TEXT_FIELDS[key]}不能超过 {limit} 个字"]
        out[key] = value
    if "title" in out and not out["title"]:
        errors["title"] = ["方案标题不能为空"]
    if errors:
        raise ValidationFailed("方案内容有误", errors=errors)
    return out


def create_plan(estate: Estate, *, title: str, user, now: datetime, **texts) -> PlanVersion:
    fields = _clean_text({"title": title, **texts})
    number = (db.session.execute(
        sa.select(sa.func.max(PlanVersion.number)).where(PlanVersion.estate_id == estate.id)).scalar() or 0) + 1
    plan = PlanVersion(estate_id=estate.id, number=number, status="draft", created_at=now, **fields)
    db.session.add(plan)
    db.session.flush()
    record("plans.version_created", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="plan_version", subject_id=plan.id, data={"number": number, "title": plan.title})
    return plan


def update_plan(plan: PlanVersion, *, user, now: datetime, pledge_window: tuple | None = None,
                **texts) -> PlanVersion:
    """Change a draft's texts; `pledge_window` = (opens_at, closes_at), either may be None (open-ended)."""
    plan.ensure_editable()
    for key, value in _clean_text(texts).items():
        setattr(plan, key, value)
    if pledge_window is not None:
        opens_at, closes_at = pledge_window
        if opens_at and closes_at and closes_at <= opens_at:
            raise ValidationFailed("出资承诺截止时间必须晚于开始时间",
                                   errors={"pledge_closes_at": ["必须晚于开始时间"]})
        plan.pledge_opens_at, plan.pledge_closes_at = opens_at, closes_at
    db.session.flush()
    return plan


def _validate_item(estate_id: int, *, name: str, category: str, cost_fen, building_ids) -> tuple:
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = ["项目名称不能为空"]
    elif len(name) > 200:
        errors["name"] = ["项目名称不能超过 200 个字"]
    if category not in CATEGORIES:
        errors["category"] = ["类别必须是 必选、基础、完善 或 提升"]
    if not isinstance(cost_fen, int) or isinstance(cost_fen, bool) or cost_fen <= 0:
        errors["cost_fen"] = ["费用必须大于零，精确到分"]
    elif cost_fen > MAX_COST_FEN:
        errors["cost_fen"] = ["费用过大，请检查"]
    buildings = []
    if building_ids:
        ids = sorted(set(building_ids))
        buildings = list(db.session.execute(
            sa.select(Building).where(Building.id.in_(ids), Building.estate_id == estate_id)).scalars())
        if len(buildings) != len(ids):
            errors["building_ids"] = ["所选楼栋不属于本小区"]
        elif not any(b.units for b in buildings):
            errors["building_ids"] = ["所选楼栋没有任何户，无法分摊"]
    if errors:
        raise ValidationFailed("改造项目有误", errors=errors)
    return name, buildings


def add_item(plan: PlanVersion, *, name: str, category: str, cost_fen: int, building_ids=None,
             description: str = "", user, now: datetime) -> PlanItem:
    plan.ensure_editable()
    name, buildings = _validate_item(plan.estate_id, name=name, category=category, cost_fen=cost_fen,
                                     building_ids=building_ids)
    position = max((i.position for i in plan.items), default=0) + 1
    item = PlanItem(plan_version=plan, position=position, name=name, category=category, cost_fen=cost_fen,
                    scope="buildings" if buildings else "estate", description=(description or "").strip())
    item.buildings = buildings
    db.session.add(item)
    db.session.flush()
    return item


def update_item(item: PlanItem, *, name: str, category: str, cost_fen: int, building_ids=None,
                description: str = "", user, now: datetime) -> PlanItem:
    item.plan_version.ensure_editable()
    name, buildings = _validate_item(item.plan_version.estate_id, name=name, category=category,
                                     cost_fen=cost_fen, building_ids=building_ids)
    item.name, item.category, item.cost_fen = name, category, cost_fen
    item.scope = "buildings" if buildings else "estate"
    item.buildings = buildings
    item.description = (description or "").strip()
    db.session.flush()
    return item


def remove_item(item: PlanItem, *, user, now: datetime) -> None:
    plan = item.plan_version
    plan.ensure_editable()
    plan.items.remove(item)
    db.session.flush()


def sniff_content_type(data: bytes) -> str | None:
    from residents_app.uploads import sniff_mime

    ctype = sniff_mime(data)
    if ctype:
        return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def add_attachment(plan: PlanVersion, *, kind: str, filename: str, data: bytes, user,
                   now: datetime, max_bytes: int = MAX_ATTACHMENT_BYTES) -> PlanAttachment:
    plan.ensure_editable()
    filename = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200]
    if kind not in ATTACHMENT_KINDS:
        raise ValidationFailed("附件类型必须是 效果图、设计图纸、长效管理方案 或 其他材料",
                               errors={"kind": ["未知的附件类型"]})
    if not filename:
        raise ValidationFailed("请选择要上传的文件", errors={"file": ["没有文件"]})
    if not data:
        raise ValidationFailed(f"文件「{filename}」是空的", errors={"file": ["文件为空"]})
    if len(data) > max_bytes:
        raise ValidationFailed(f"文件「{filename}」有 {len(data):,} 字节，超过上限 {max_bytes:,} 字节",
                               errors={"file": ["文件过大"]})
    ctype = sniff_content_type(data)
    if ctype is None:
        raise ValidationFailed(f"文件「{filename}」不是 PDF、PNG、JPEG 或 WebP 格式",
                               errors={"file": ["只接受 PDF 或图片"]})
    att = PlanAttachment(plan_version=plan, kind=kind, filename=filename, content_type=ctype,
                         size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), data=data,
                         uploaded_at=now)
    db.session.add(att)
    db.session.flush()
    record("plans.attachment_added", chain=plan.estate_id, actor=actor_for_user(user), now=now,
           subject_type="plan_version", subject_id=plan.id,
           data={"filename": filename, "kind": kind, "sha256": att.sha256, "size_bytes": len(data)})
    return att


def remove_attachment(att: PlanAttachment, *, user, now: datetime) -> None:
    plan = att.plan_version
    plan.ensure_editable()
    plan.attachments.remove(att)
    db.session.flush()


def publish_plan(plan: PlanVersion, *, user, now: datetime) -> PlanVersion:
    """Publish a draft; the version in force before it becomes superseded."""
    problems = plan.publish_problems()
    # every item must be payable: compute once, so a scope without units is refused now
    if not problems:
        try:
            compute_plan(plan)
        except MoneyError as exc:
            problems.append(str(exc))
    if problems:
        raise Conflict("方案不能发布：" + "；".join(problems), code="plan_not_publishable",
                       errors={"plan": problems})
    previous = current_plan(plan.estate_id)
    if previous is not None and previous.id != plan.id:
        previous.mark_superseded(now)
    plan.publish(now)
    db.session.flush()
    contributions = compute_plan(plan)
    record("plans.version_published", chain=plan.estate_id, actor=actor_for_user(user), now=now,
           subject_type="plan_version", subject_id=plan.id,
           data={"number": plan.number, "supersedes": previous.id if previous else None,
                 "total_cost_fen": contributions.total_cost_fen,
                 "resident_total_fen": contributions.resident_total_fen,
                 "subsidy_total_fen": contributions.subsidy_total_fen,
                 "items": [{"name": i.name, "category": i.category, "cost_fen": i.cost_fen,
                            "scope": i.scope_label} for i in plan.items]})
    return plan


def new_version(plan: PlanVersion, *, user, now: datetime) -> PlanVersion:
    """A draft copy of a published version, to be changed and published in its place."""
    if plan.status == "draft":
        raise Conflict(f"方案第 {plan.number} 版还是草稿，直接修改即可", code="plan_is_draft")
    pending = db.session.execute(
        sa.select(PlanVersion).where(PlanVersion.estate_id == plan.estate_id, PlanVersion.status == "draft")
    ).scalars().first()
    if pending is not None:
        raise Conflict(f"已有未发布的草稿（第 {pending.number} 版），请先完成或修改它", code="draft_exists")
    draft = create_plan(plan.estate, title=plan.title, user=user, now=now, budget_summary=plan.budget_summary,
                        funding_plan=plan.funding_plan, management_plan=plan.management_plan)
    draft.supersedes_id = plan.id
    with db.session.no_autoflush:
        for item in plan.items:
            copy = PlanItem(position=item.position, name=item.name, category=item.category,
                            scope=item.scope, cost_fen=item.cost_fen, description=item.description,
                            buildings=list(item.buildings))
            draft.items.append(copy)
        for att in plan.attachments:
            draft.attachments.append(PlanAttachment(
                kind=att.kind, filename=att.filename, content_type=att.content_type, size_bytes=att.size_bytes,
                sha256=att.sha256, data=att.data, uploaded_at=att.uploaded_at))
    db.session.flush()
    return draft


def plan_diff(old: PlanVersion, new: PlanVersion) -> dict:
    """What changed between two versions: items by name, texts, totals."""
    old_items = {i.name: i for i in old.items}
    new_items = {i.name: i for i in new.items}
    added = [n for n in new_items if n not in old_items]
    removed = [n for n in old_items if n not in new_items]
    changed = []
    for name in new_items:
        if name in old_items:
            a, b = old_items[name], new_items[name]
            diffs = []
            if a.category != b.category:
                diffs.append(f"类别 {a.category_label} → {b.category_label}")
            if a.cost_fen != b.cost_fen:
                diffs.append(f"费用 {a.cost_fen} → {b.cost_fen} 分")
            if a.scope_label != b.scope_label:
                diffs.append(f"范围 {a.scope_label} → {b.scope_label}")
            if diffs:
                changed.append({"name": name, "changes": diffs, "old_cost_fen": a.cost_fen,
                                "new_cost_fen": b.cost_fen})
    texts = [label for key, label in _TEXT_FIELDS.items()
             if key != "change_summary" and (getattr(old, key) or "") != (getattr(new, key) or "")]
    return {"added": added, "removed": removed, "changed": changed, "texts_changed": texts,
            "old_total_fen": old.total_cost_fen, "new_total_fen": new.total_cost_fen,
            "attachments_old": [a.filename for a in old.attachments],
            "attachments_new": [a.filename for a in new.attachments]}


# ---- statements --------------------------------------------------------------------------------

def estate_units(estate_id: int) -> list[Unit]:
    return list(db.session.execute(
        sa.select(Unit).join(Building).where(Unit.estate_id == estate_id).order_by(Building.name, Unit.number)
    ).scalars())


def hardship_by_unit(estate_id: int) -> dict[int, HardshipTreatment]:
    rows = db.session.execute(
        sa.select(HardshipTreatment).where(HardshipTreatment.estate_id == estate_id)).scalars()
    return {h.unit_id: h for h in rows}


def compute_plan(plan: PlanVersion, *, costs: dict[int, int] | None = None) -> Contributions:
    """The contributions of a version; `costs` (item id -> fen) replaces costs (settlement)."""
    units = estate_units(plan.estate_id)
    hardship = hardship_by_unit(plan.estate_id)
    unit_in = []
    for u in units:
        h = hardship.get(u.id)
        unit_in.append(UnitIn(key=u.id, area_m2=u.title_area_m2, hardship_mode=h.mode if h else None,
                              hardship_subsidy_fen=h.subsidy_fen if h else 0,
                              hardship_covered_by=h.covered_by if h else ""))
    items_in = []
    for item in plan.items:
        if item.scope == "estate":
            keys = tuple(u.id for u in units)
        else:
            ids = {b.id for b in item.buildings}
            keys = tuple(u.id for u in units if u.building_id in ids)
        cost = costs.get(item.id, item.cost_fen) if costs is not None else item.cost_fen
        items_in.append(ItemIn(key=item.id, name=item.name, category=item.category, cost_fen=cost,
                               unit_keys=keys))
    return compute_contributions(items_in, unit_in, rule_for_estate(plan.estate))


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
    """A unit's share of each item in its scope, with how it was computed (Chinese)."""
    c = contributions or compute_plan(plan)
    out = c.units[unit.id]
    items = {i.id: i for i in plan.items}
    item_out = {i.key: i for i in c.items}
    lines = []
    for ln in out.lines:
        io = item_out[ln.item_key]
        item = items[ln.item_key]
        text = (f"{item.name}（{item.category_label}，{item.scope_label}）费用 {_yuan(io.cost_fen)} 元，"
                f"居民承担 {io.pct}% 即 {_yuan(io.base_resident_fen)} 元")
        if io.excess_fen:
            text += f"，另加超出补助上限部分 {_yuan(io.excess_fen)} 元"
        text += (f"；共 {_yuan(io.resident_fen)} 元按产权面积分摊给 {io.unit_count} 户"
                 f"（共 {io.scope_area_m2:.2f} m²），本户 {ln.area_m2:.2f} m²，应摊 {_yuan(ln.share_fen)} 元")
        lines.append(StatementLine(item=item, share_fen=ln.share_fen, item_resident_fen=io.resident_fen,
                                   pct=io.pct, excess_fen=io.excess_fen, area_m2=ln.area_m2,
                                   scope_area_m2=io.scope_area_m2, explanation=text))
    return {"plan": plan, "unit": unit, "lines": lines, "share_fen": out.share_fen,
            "covered_fen": out.covered_fen, "covered_by": out.covered_by, "hardship_mode": out.hardship_mode,
            "owed_fen": out.owed_fen, "cap_fen": c.cap_fen, "excess_fen": c.excess_fen}


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
    if plan is not None and _start_locked(plan):
        raise Conflict(f"启动申请已提交，不能再{what}", code="start_submitted")


# ---- pledges -----------------------------------------------------------------------------------

def start_application_of(plan: PlanVersion) -> StartApplication | None:
    return db.session.execute(
        sa.select(StartApplication).where(StartApplication.plan_version_id == plan.id)).scalar_one_or_none()


def _start_locked(plan: PlanVersion) -> bool:
    app = start_application_of(plan)
    return app is not None and app.status in ("submitted", "approved")


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
    if _start_locked(plan):
        raise Conflict("启动申请已提交，承诺书不能再变更", code="start_submitted")
    if active_pledge(plan, unit) is not None:
        raise Conflict(f"{unit.label} 已签署本版方案的承诺书", code="pledge_exists")
    amount = compute_plan(plan).units[unit.id].owed_fen
    pledge = Pledge(plan_version_id=plan.id, unit_id=unit.id, amount_fen=amount, signed_by_owner_id=owner.id,
                    signed_at=now)
    db.session.add(pledge)
    db.session.flush()
    record("plans.pledge_signed", chain=plan.estate_id, actor=_unit_actor(unit, owner), now=now,
           subject_type="pledge", subject_id=pledge.id,
           data={"plan_version": plan.id, "unit": unit.label, "amount_fen": amount})
    return pledge


def withdraw_pledge(plan: PlanVersion, unit: Unit, owner, *, now: datetime) -> Pledge:
    if not any(o.owner_id == owner.id for o in unit.ownerships):
        raise Forbidden("只有本户业主可以撤回承诺书")
    pledge = active_pledge(plan, unit)
    if pledge is None:
        raise Conflict(f"{unit.label} 没有可撤回的承诺书", code="no_pledge")
    if _start_locked(plan):
        raise Conflict("启动申请已提交，承诺书不能再撤回", code="start_submitted")
    pledge.withdrawn_at = now
    pledge.withdrawn_by_owner_id = owner.id
    db.session.flush()
    record("plans.pledge_withdrawn", chain=plan.estate_id, actor=_unit_actor(unit, owner), now=now,
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


# ---- payments ----------------------------------------------------------------------------------

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
    elif paid_on > now.date():
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
                  method=payment.method, reference=payment.reference, paid_on=now.date(),
                  note=reason[:200], entered_by_id=user.id, entered_at=now, reverses_id=payment.id)
    db.session.add(rev)
    db.session.flush()
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


# ---- funding -----------------------------------------------------------------------------------

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
    owed = {}
    if plan is not None:
        c = compute_plan(plan)
        owed = {k: u.owed_fen for k, u in c.units.items()}
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
    c = compute_plan(plan)
    paid = paid_by_unit(estate_id)
    rows = []
    for u in estate_units(estate_id):
        o, p = c.units[u.id].owed_fen, paid.get(u.id, 0)
        if p < o:
            rows.append({"unit": u, "owed_fen": o, "paid_fen": p, "missing_fen": o - p})
    return rows


def format_ratio(ratio: Fraction | None) -> str:
    """A percentage with two decimals, rounded down (never shows 100.00 % before it is reached)."""
    if ratio is None:
        return "—"
    hundredths = (ratio * 10000).__floor__()
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


# ---- start application -------------------------------------------------------------------------

@dataclass
class Check:
    key: str
    label: str
    met: bool
    reason: str

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "met": self.met, "reason": self.reason}


def _latest_closed_round(estate_id: int, kind: str, plan_id: int | None = None):
    from residents_app.rounds.models import Round

    q = sa.select(Round).where(Round.estate_id == estate_id, Round.kind == kind, Round.status == "closed")
    if plan_id is not None:
        q = q.where(Round.plan_version_id == plan_id)
    return db.session.execute(q.order_by(Round.closed_at.desc(), Round.id.desc()).limit(1)).scalar_one_or_none()


def _round_passed(round_id: int) -> bool | None:
    """The rounds feature's stored outcome; None while it has none."""
    from residents_app.rounds.services import round_outcome

    outcome = round_outcome(round_id)
    return None if outcome is None else bool(outcome["passed"])


def _publicity_state(round_id: int, now: datetime) -> tuple[bool, str]:
    """(ended without open objection, reason) for the publicity of a round result."""
    from residents_app.publicity.services import publicity_status

    st = publicity_status("round_result", round_id, now)
    if st["open_objections"]:
        return False, f"公示期内还有 {st['open_objections']} 条异议未处理"
    if not st["ended"]:
        return False, "；".join(st.get("reasons_not_complete") or ["公示期尚未结束"])
    return True, "公示期已结束，无未处理的异议"


def check_plan_vote(plan: PlanVersion, ctx: dict) -> Check:
    label = "方案表决通过（双三分之二）"
    rnd = _latest_closed_round(plan.estate_id, "plan_vote", plan.id)
    ctx["plan_round"] = rnd
    if rnd is None:
        return Check("plan_vote", label, False, f"第 {plan.number} 版方案还没有已结束的方案表决")
    passed = _round_passed(rnd.id)
    if passed is None:
        return Check("plan_vote", label, False, f"表决「{rnd.title}」的结果尚未统计")
    if not passed:
        return Check("plan_vote", label, False, f"表决「{rnd.title}」未达到通过条件")
    return Check("plan_vote", label, True, f"表决「{rnd.title}」已通过")


def check_publicity(plan: PlanVersion, ctx: dict) -> Check:
    label = "表决结果公示期满（不少于5个工作日）且无未处理异议"
    rnd = ctx.get("plan_round")
    if rnd is None:
        return Check("publicity", label, False, "没有可公示的方案表决结果")
    ok, reason = _publicity_state(rnd.id, ctx["now"])
    return Check("publicity", label, ok, reason)


def check_management_mode(plan: PlanVersion, ctx: dict) -> Check:
    label = "改造后管理模式已表决确定"
    rnd = _latest_closed_round(plan.estate_id, "management_mode")
    if rnd is None:
        return Check("management_mode", label, False, "还没有已结束的管理模式表决")
    passed = _round_passed(rnd.id)
    if not passed:
        return Check("management_mode", label, False, f"管理模式表决「{rnd.title}」未通过或尚未统计")
    return Check("management_mode", label, True, f"管理模式表决「{rnd.title}」已通过")


def check_management_plan(plan: PlanVersion, ctx: dict) -> Check:
    label = "长效管理方案已上传"
    if plan.has_management_plan():
        return Check("management_plan", label, True, "方案中已有长效管理方案")
    return Check("management_plan", label, False, f"第 {plan.number} 版方案没有长效管理方案（文字或附件）")


def _labels(units: list[Unit], limit: int = 8) -> str:
    text = "、".join(u.label for u in units[:limit])
    return text + (f" 等 {len(units)} 户" if len(units) > limit else "")


def check_pledges(plan: PlanVersion, ctx: dict) -> Check:
    label = "应出资的每一户都已签署承诺书"
    c = ctx["contributions"]
    pledged = {p.unit_id: p for p in pledges_of(plan)}
    units = ctx["units"]
    owing = [u for u in units if c.units[u.id].owed_fen > 0]
    missing = [u for u in owing if u.id not in pledged]
    stale = [u for u in owing if u.id in pledged and pledged[u.id].amount_fen != c.units[u.id].owed_fen]
    if not owing:
        return Check("pledges", label, True, "没有需要出资的户")
    if missing:
        return Check("pledges", label, False,
                     f"应出资 {len(owing)} 户，已签 {len(owing) - len(missing)} 户，还差 {len(missing)} 户："
                     f"{_labels(missing)}")
    if stale:
        return Check("pledges", label, False, f"{_labels(stale)} 的承诺金额与当前应出资额不一致，需重新签署")
    return Check("pledges", label, True, f"应出资 {len(owing)} 户已全部签署")


def check_self_funding(plan: PlanVersion, ctx: dict) -> Check:
    label = "居民自筹资金到位 100%"
    c = ctx["contributions"]
    paid = paid_by_unit(plan.estate_id)
    owed = c.owed_total_fen
    short = [u for u in ctx["units"] if paid.get(u.id, 0) < c.units[u.id].owed_fen]
    counted = sum(min(max(paid.get(u.id, 0), 0), c.units[u.id].owed_fen) for u in ctx["units"])
    ratio = format_ratio(_ratio(counted, owed)) if owed else "100.00%"
    if short:
        missing = owed - counted
        return Check("self_funding", label, False,
                     f"已到位 {_yuan(counted)} / {_yuan(owed)} 元（{ratio}），还差 {_yuan(missing)} 元，"
                     f"{len(short)} 户未缴足：{_labels(short)}")
    return Check("self_funding", label, True, f"已到位 {_yuan(counted)} / {_yuan(owed)} 元（100%）")


CHECKS = (check_plan_vote, check_publicity, check_management_mode, check_management_plan, check_pledges,
          check_self_funding)


def start_checklist(plan: PlanVersion, now: datetime) -> list[Check]:
    """Each line of the start application, met or not, with its reason; computed from the data."""
    ctx = {"contributions": compute_plan(plan), "units": estate_units(plan.estate_id), "now": now}
    return [check(plan, ctx) for check in CHECKS]


def submit_start(estate: Estate, *, user, now: datetime) -> StartApplication:
    plan = current_plan(estate.id)
    if plan is None:
        raise Conflict("本小区还没有已发布的改造方案", code="no_plan")
    checks = start_checklist(plan, now)
    unmet = [c for c in checks if not c.met]
    if unmet:
        raise Conflict("启动申请条件未满足：" + "；".join(f"{c.label}：{c.reason}" for c in unmet),
                       code="start_conditions_unmet", errors={c.key: [c.reason] for c in unmet})
    app = start_application_of(plan)
    if app is None:
        app = StartApplication(estate_id=estate.id, plan_version_id=plan.id, status="draft")
        db.session.add(app)
    app.submit(user_id=user.id, now=now, checklist=[c.as_dict() for c in checks])
    db.session.flush()
    record("plans.start_submitted", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="start_application", subject_id=app.id,
           data={"plan_version": plan.id, "checklist": app.checklist})
    return app


def decide_start(app: StartApplication, *, approve: bool, comment: str, user, now: datetime) -> StartApplication:
    estate = db.session.get(Estate, app.estate_id)
    if not (user.role == "admin" or (user.role == "street" and user.street_office_id == estate.street_office_id)):
        raise Forbidden("只有本街道可以审批启动申请")
    app.decide(approve=approve, user_id=user.id, now=now, comment=comment or "")
    db.session.flush()
    record("plans.start_approved" if approve else "plans.start_returned", chain=app.estate_id,
           actor=actor_for_user(user), now=now, subject_type="start_application", subject_id=app.id,
           data={"comment": app.comment})
    return app


# ---- settlement --------------------------------------------------------------------------------

def settlement_of(plan: PlanVersion, *, create: bool = False, now: datetime | None = None) -> Settlement | None:
    s = db.session.execute(sa.select(Settlement).where(Settlement.plan_version_id == plan.id)).scalar_one_or_none()
    if s is None and create:
        if plan.status != "published":
            raise Conflict("只有当前发布的方案才能决算", code="plan_not_current")
        s = Settlement(plan_version_id=plan.id, created_at=now)
        db.session.add(s)
        db.session.flush()
    return s


def set_audited_cost(settlement: Settlement, plan_item_id: int, audited_cost_fen: int, *, user,
                     now: datetime) -> SettlementItem:
    settlement.ensure_editable()
    item = db.session.get(PlanItem, plan_item_id)
    if item is None or item.plan_version_id != settlement.plan_version_id:
        raise NotFound("该项目不属于本方案")
    if not isinstance(audited_cost_fen, int) or isinstance(audited_cost_fen, bool) or audited_cost_fen < 0:
        raise ValidationFailed(f"「{item.name}」的审计决算金额必须是不小于零的金额（分）",
                               errors={f"item_{item.id}": ["金额有误"]})
    row = next((r for r in settlement.items if r.plan_item_id == item.id), None)
    if row is None:
        row = SettlementItem(settlement=settlement, plan_item_id=item.id, audited_cost_fen=audited_cost_fen)
        db.session.add(row)
    row.audited_cost_fen = audited_cost_fen
    db.session.flush()
    record("plans.settlement_cost_set", chain=settlement.plan_version.estate_id, actor=actor_for_user(user),
           now=now, subject_type="settlement", subject_id=settlement.id,
           data={"item": item.name, "planned_cost_fen": item.cost_fen, "audited_cost_fen": audited_cost_fen})
    return row


def settlement_preview(settlement: Settlement) -> dict:
    """Per unit: planned owed, final owed on audited costs, paid, difference (+ top-up / − refund)."""
    plan = settlement.plan_version
    audited = {r.plan_item_id: r.audited_cost_fen for r in settlement.items}
    missing = [i.name for i in plan.items if i.id not in audited]
    planned = compute_plan(plan)
    # items with an audited cost of zero still allocate 0 fen; allocation of 0 is exact
    final = compute_plan(plan, costs=audited)
    paid = paid_by_unit(plan.estate_id)
    rows = []
    for u in estate_units(plan.estate_id):
        p = paid.get(u.id, 0)
        fo = final.units[u.id].owed_fen
        rows.append({"unit": u, "planned_owed_fen": planned.units[u.id].owed_fen, "final_owed_fen": fo,
                     "paid_fen": p, "difference_fen": fo - p})
    return {"rows": rows, "missing_items": missing, "planned": planned, "final": final,
            "top_up_fen": sum(r["difference_fen"] for r in rows if r["difference_fen"] > 0),
            "refund_fen": -sum(r["difference_fen"] for r in rows if r["difference_fen"] < 0),
            "difference_fen": sum(r["difference_fen"] for r in rows),
            "final_owed_fen": final.owed_total_fen, "paid_fen": sum(paid.values())}


def finalise_settlement(settlement: Settlement, *, user, now: datetime) -> Settlement:
    settlement.ensure_editable()
    preview = settlement_preview(settlement)
    if preview["missing_items"]:
        raise Conflict("还有项目没有填写审计决算金额：" + "、".join(preview["missing_items"]),
                       code="settlement_incomplete", errors={"items": preview["missing_items"]})
    for r in preview["rows"]:
        settlement.unit_lines.append(SettlementUnitLine(
            unit_id=r["unit"].id, planned_owed_fen=r["planned_owed_fen"], final_owed_fen=r["final_owed_fen"],
            paid_fen=r["paid_fen"], difference_fen=r["difference_fen"]))
    settlement.finalised_at = now
    settlement.finalised_by_id = user.id
    db.session.flush()
    record("plans.settlement_finalised", chain=settlement.plan_version.estate_id, actor=actor_for_user(user),
           now=now, subject_type="settlement", subject_id=settlement.id,
           data={"final_owed_fen": preview["final_owed_fen"], "paid_fen": preview["paid_fen"],
                 "top_up_fen": preview["top_up_fen"], "refund_fen": preview["refund_fen"]})
    return settlement
