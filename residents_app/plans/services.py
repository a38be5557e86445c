"""Plans and money use cases. Each takes `now`, flushes, never commits, raises DomainError.

How the money is computed is documented in `residents_app/core/money.py`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.money import (
    MoneyError,
)
from residents_app.errors import Conflict, ValidationFailed
from residents_app.extensions import db
from residents_app.plans.models import (
    ATTACHMENT_KINDS,
    CATEGORIES,
    FUNDING_MODES,
    PlanAttachment,
    PlanItem,
    PlanVersion,
)
from residents_app.registry.models import Building, Estate

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


MAX_COST_FEN = 10**13  # 1,000 亿 yuan: anything above is a typing error


_TEXT_FIELDS = {"title": "方案标题", "budget_summary": "工程预算说明", "funding_plan": "资金筹集方案",
                "management_plan": "长效管理方案", "change_summary": "变更说明"}



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


def _validate_funding_mode(funding_mode: str, fixed_subsidy_fen, cost_fen, errors: dict) -> None:
    if funding_mode not in FUNDING_MODES:
        errors["funding_mode"] = ["出资方式必须是 按类别补助、居民自费 或 另行补助"]
    elif funding_mode == "separate":
        if not isinstance(fixed_subsidy_fen, int) or isinstance(fixed_subsidy_fen, bool) or fixed_subsidy_fen < 0:
            errors["fixed_subsidy_fen"] = ["另行补助金额必须是不小于零的金额（分）"]
        elif isinstance(cost_fen, int) and fixed_subsidy_fen > cost_fen:
            errors["fixed_subsidy_fen"] = ["另行补助金额不能超过项目费用"]


def _validate_item(estate_id: int, *, name: str, category: str, cost_fen, building_ids,
                   funding_mode: str = "subsidised", fixed_subsidy_fen=0) -> tuple:
    errors = {}
    _validate_funding_mode(funding_mode, fixed_subsidy_fen, cost_fen, errors)
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
             description: str = "", funding_mode: str = "subsidised", fixed_subsidy_fen: int = 0, user,
             now: datetime) -> PlanItem:
    plan.ensure_editable()
    name, buildings = _validate_item(plan.estate_id, name=name, category=category, cost_fen=cost_fen,
                                     building_ids=building_ids, funding_mode=funding_mode,
                                     fixed_subsidy_fen=fixed_subsidy_fen)
    position = max((i.position for i in plan.items), default=0) + 1
    item = PlanItem(plan_version=plan, position=position, name=name, category=category, cost_fen=cost_fen,
                    scope="buildings" if buildings else "estate", description=(description or "").strip(),
                    funding_mode=funding_mode,
                    fixed_subsidy_fen=fixed_subsidy_fen if funding_mode == "separate" else 0)
    item.buildings = buildings
    db.session.add(item)
    db.session.flush()
    return item


def update_item(item: PlanItem, *, name: str, category: str, cost_fen: int, building_ids=None,
                description: str = "", funding_mode: str = "subsidised", fixed_subsidy_fen: int = 0, user,
                now: datetime) -> PlanItem:
    item.plan_version.ensure_editable()
    name, buildings = _validate_item(item.plan_version.estate_id, name=name, category=category,
                                     cost_fen=cost_fen, building_ids=building_ids, funding_mode=funding_mode,
                                     fixed_subsidy_fen=fixed_subsidy_fen)
    item.name, item.category, item.cost_fen = name, category, cost_fen
    item.funding_mode = funding_mode
    item.fixed_subsidy_fen = fixed_subsidy_fen if funding_mode == "separate" else 0
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


# How much a version costs whom is computed by funding/ (contribution rules, hardship), a package above this
# one; it registers its calculator here, so that publishing refuses a version whose money does not compute
# and logs its totals without plans importing upward.
MONEY_CALCULATORS: list = []


def compute_money(plan: PlanVersion):
    if not MONEY_CALCULATORS:
        raise RuntimeError("no money calculator registered (residents_app.funding.services not imported)")
    return MONEY_CALCULATORS[0](plan)


# The same figures read from what funding/ saved when the version was published (funding/owed.py:
# contributions_of, registered there): the plan pages read those rows instead of computing the whole estate on
# every view. Each reader takes (plan, unit_ids) and computes live itself when its rows cannot be trusted (a draft,
# a superseded version, an input changed in this transaction).
MONEY_READERS: list = []


def saved_money(plan: PlanVersion, unit_ids=None):
    """What compute_money(plan) gives; with `unit_ids` only those units in `units` (`()`: the items and the
    totals only, what a page without a per-unit table needs)."""
    if not MONEY_READERS:
        return compute_money(plan)
    return MONEY_READERS[0](plan, unit_ids)


# Why the version in force may not be superseded now (a vote on it is open): registered by rounds/, a package
# above this one. Each guard takes the published version and returns its reasons (empty: no objection).
SUPERSEDE_GUARDS: list = []

# What a feature above this one saves with a version when it is published, in the same transaction: funding/
# saves each unit's owed amounts (funding/owed.py). Each hook takes (plan, contributions).
PUBLISH_HOOKS: list = []


def publish_plan(plan: PlanVersion, *, user, now: datetime) -> PlanVersion:
    """Publish a draft; the version in force before it becomes superseded."""
    problems = plan.publish_problems()
    previous = current_plan(plan.estate_id)
    if previous is not None and previous.id != plan.id:
        for guard in SUPERSEDE_GUARDS:
            problems.extend(guard(previous))
    # every item must be payable: compute once, so a scope without units is refused now
    if not problems:
        try:
            compute_money(plan)
        except MoneyError as exc:
            problems.append(str(exc))
    if problems:
        raise Conflict("方案不能发布：" + "；".join(problems), code="plan_not_publishable",
                       errors={"plan": problems})
    if previous is not None and previous.id != plan.id:
        previous.mark_superseded(now)
    plan.publish(now)
    db.session.flush()
    contributions = compute_money(plan)
    for hook in PUBLISH_HOOKS:
        hook(plan, contributions)
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
                            buildings=list(item.buildings), funding_mode=item.funding_mode,
                            fixed_subsidy_fen=item.fixed_subsidy_fen)
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
            if (a.funding_mode, a.fixed_subsidy_fen) != (b.funding_mode, b.fixed_subsidy_fen):
                diffs.append(f"出资方式 {a.funding_mode_label} → {b.funding_mode_label}")
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
