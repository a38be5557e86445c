"""Use cases of rounds and ballots. Services take `now`, flush, raise DomainError; views commit.

Public functions other features call (names fixed):
    rounds_due_to_open(now) -> list[int]
    rounds_due_to_close(now) -> list[int]
    open_round(round_id, now, actor) -> bool          idempotent, row locked
    close_round(round_id, now, actor) -> bool         idempotent, row locked, stores RoundResult
    round_outcome(round_id) -> dict | None            stored final tally and passed (a choice: decided, decided_label;
                                                      a survey: no passed)
    agreeing_unit_labels(round_id) -> list[str]       unit numbers only ("1幢-101")
    compute_tally(round_id, now) -> Tally             live tally (SQL aggregate)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.core import choices, matters
from residents_app.core import thresholds as th
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Building, Owner, Ownership, Unit
from residents_app.rounds import castpath, counters, outcomes, person_counters
from residents_app.rounds.common import (
    actor_name,
    get_round,
    lock_round,
    natural_key,
)
from residents_app.rounds.models import (
    DEFAULT_OPTIONS,
    ROUND_KINDS,
    CurrentBallot,
    RollEntry,
    Round,
    RoundResult,
)
from residents_app.rounds.tally import compute_tally

# ---- round definition ------------------------------------------------------------------------

@dataclass
class RoundInput:
    kind: str
    title: str
    opens_at: datetime
    closes_at: datetime
    description: str = ""
    # None: the rule the matter takes (core.matters.default_preset).
    rule_preset: str | None = None
    counting_mode: str = "household"
    scope_building_ids: list[int] | None = None
    item_menu: list[dict] | None = None
    plan_version_id: int | None = None
    results_visibility: str = "live"
    # A general question: the art. 278 para. 1 item (1-9) it decides.
    matter_item: int | None = None
    # A management mode round: the options' labels (None: 物业服务企业 / 准物业 / 自治 / 信托制物业).
    options: list[str] | None = None


def _validate_round_input(estate_id: int, data: RoundInput) -> dict:
    errors = {}
    if data.kind not in ROUND_KINDS:
        errors["kind"] = "请选择表决类型"
    if not data.title.strip():
        errors["title"] = "请填写标题"
    elif len(data.title) > 200:
        errors["title"] = "标题不能超过 200 字"
    preset = _check_matter(data, errors)
    if data.counting_mode not in th.COUNTING_MODES:
        errors["counting_mode"] = "请选择计数方式（按户或按人）"
    if data.results_visibility not in ("live", "hidden"):
        errors["results_visibility"] = "请选择结果是否实时公开"
    if data.opens_at.tzinfo is None or data.closes_at.tzinfo is None:
        errors["opens_at"] = "时间必须带时区"
    elif data.closes_at <= data.opens_at:
        errors["closes_at"] = "截止时间必须晚于开始时间"
    scope = sorted(set(data.scope_building_ids or []))
    if scope:
        found = set(db.session.execute(
            sa.select(Building.id).where(Building.estate_id == estate_id, Building.id.in_(scope))).scalars())
        if found != set(scope):
            errors["scope_building_ids"] = "所选楼栋不属于本小区"
    menu = []
    for i, item in enumerate(data.item_menu or []):
        label = str(item.get("label", "")).strip()
        if not label:
            errors[f"item_menu[{i}]"] = "改造项目名称不能为空"
            continue
        menu.append({"key": str(item.get("key") or f"item{i + 1}"), "label": label[:100],
                     "category": str(item.get("category", ""))[:20]})
    if data.kind != "willingness" and menu:
        errors["item_menu"] = "只有改造意愿征求可以设置改造项目清单"
    if data.kind == "plan_vote" and data.plan_version_id is None:
        errors["plan_version_id"] = "方案表决必须选择一个方案版本"
    if data.plan_version_id is not None:
        from residents_app.plans.models import PlanVersion

        version = db.session.get(PlanVersion, data.plan_version_id)
        if version is None or version.estate_id != estate_id:
            errors["plan_version_id"] = "所选方案版本不属于本小区"
        elif data.kind == "plan_vote" and version.status != "published":
            errors["plan_version_id"] = plan_vote_problem(version)
    options = _check_options(data, errors)
    if errors:
        raise ValidationFailed("表决设置有误，请检查标出的项目", errors=errors)
    return {"scope_building_ids": scope, "item_menu": menu, "rule_preset": preset, "options": options}


def _check_matter(data: RoundInput, errors: dict) -> str | None:
    """The rule follows the matter: the item of the kind (or the one named for a general question), and a
    rule that item allows (a weaker one is refused, naming the article and item)."""
    if data.kind == "general" and data.matter_item not in matters.ITEM_TEXT:
        errors["matter_item"] = f"请选择该事项属于{matters.ARTICLE}的哪一项（一至九）"
        return None
    item = matters.matter_item(data.kind, data.matter_item)
    preset = data.rule_preset or matters.default_preset(item)
    if preset not in th.PRESETS:
        errors["rule_preset"] = "请选择表决规则"
        return None
    refusal = None if item is None else matters.rule_refusal(data.kind, item, preset)
    if refusal:
        errors["rule_preset"] = refusal
    return preset


def _check_options(data: RoundInput, errors: dict) -> list[dict] | None:
    """The options of a round: fixed per kind, except the management mode's list (editable)."""
    if data.kind not in ROUND_KINDS:
        return None
    if data.kind != "management_mode" and data.options is not None:
        errors["options"] = "只有管理模式表决可以设置选项"
    if data.kind != "management_mode" or data.options is None:
        return [{"key": k, "label": v} for k, v in DEFAULT_OPTIONS[data.kind]]
    labels = [str(x).strip() for x in data.options if str(x).strip()]
    labels = [x for x in labels if x != "弃权"]  # always offered, last
    if len(labels) < 2:
        errors["options"] = "管理模式表决至少要有两个选项（每行一个）"
    elif len(set(labels)) != len(labels):
        errors["options"] = "选项不能重复"
    elif any(len(x) > 40 for x in labels):
        errors["options"] = "每个选项不能超过 40 字"
    elif len(labels) > 10:
        errors["options"] = "选项不能超过 10 个"
    return choices.option_keys(labels)


def create_round(estate_id: int, data: RoundInput, now: datetime, user=None) -> Round:
    clean = _validate_round_input(estate_id, data)
    rnd = Round(
        estate_id=estate_id, kind=data.kind, title=data.title.strip(), description=data.description.strip(),
        rule_preset=clean["rule_preset"], counting_mode=data.counting_mode, matter_item=_named_item(data),
        scope_building_ids=clean["scope_building_ids"], item_menu=clean["item_menu"], options=clean["options"],
        plan_version_id=data.plan_version_id, results_visibility=data.results_visibility,
        status="draft", opens_at=data.opens_at, closes_at=data.closes_at, created_at=now,
        created_by_id=getattr(user, "id", None),
    )
    db.session.add(rnd)
    db.session.flush()
    castpath.forget_round(rnd.id)
    record("round.created", chain=estate_id, actor=actor_name(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"title": rnd.title, "kind": rnd.kind, "rule_preset": rnd.rule_preset})
    return rnd


def _named_item(data: RoundInput) -> int | None:
    return data.matter_item if data.kind == "general" else None


def update_round(round_id: int, data: RoundInput, now: datetime, user=None) -> Round:
    rnd = get_round(round_id)
    rnd.ensure_editable()
    clean = _validate_round_input(rnd.estate_id, data)
    rnd.kind, rnd.title, rnd.description = data.kind, data.title.strip(), data.description.strip()
    rnd.rule_preset, rnd.counting_mode = clean["rule_preset"], data.counting_mode
    rnd.matter_item = _named_item(data)
    rnd.scope_building_ids, rnd.item_menu = clean["scope_building_ids"], clean["item_menu"]
    rnd.options = clean["options"]
    rnd.plan_version_id, rnd.results_visibility = data.plan_version_id, data.results_visibility
    rnd.opens_at, rnd.closes_at = data.opens_at, data.closes_at
    db.session.flush()
    record("round.updated", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"title": rnd.title})
    return rnd


def extend_round(round_id: int, new_closes_at: datetime, reason: str, now: datetime, user=None) -> Round:
    rnd = lock_round(round_id) or get_round(round_id)
    old = rnd.closes_at
    rnd.extend_to(new_closes_at, reason, now, getattr(user, "id", None))
    db.session.flush()
    record("round.extended", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"from": old.isoformat(), "to": new_closes_at.isoformat(), "reason": reason})
    return rnd


# ---- lifecycle (called by the scheduler and by the committee) ---------------------------------

def rounds_due_to_open(now: datetime) -> list[int]:
    # A draft whose whole window passed (scheduler down all along) is not opened: nobody could have
    # voted. It stays a draft, which the committee sees and reschedules (why_not_open says why).
    # Likewise a plan vote whose version is not the published one: opening it is refused (plan_vote_problem).
    from residents_app.plans.models import PlanVersion

    published = sa.select(PlanVersion.id).where(PlanVersion.status == "published")
    return list(db.session.execute(
        sa.select(Round.id).where(Round.status == "draft", Round.opens_at <= now, Round.closes_at > now,
                                  sa.or_(Round.kind != "plan_vote", Round.plan_version_id.in_(published)))
        .order_by(Round.opens_at, Round.id)).scalars())


def rounds_due_to_close(now: datetime) -> list[int]:
    return list(db.session.execute(
        sa.select(Round.id).where(Round.status == "open", Round.closes_at <= now)
        .order_by(Round.closes_at, Round.id)).scalars())


def freeze_roll(rnd: Round) -> int:
    """Copy the register of the round's scope into roll_entry (units, areas, owners as of now)."""
    q = (sa.select(Unit.id, Unit.building_id, Building.name, Unit.number, Unit.title_area_m2)
         .join(Building, Building.id == Unit.building_id)
         .where(Unit.estate_id == rnd.estate_id).order_by(Building.name, Unit.number))
    if rnd.scope_building_ids:
        q = q.where(Unit.building_id.in_(rnd.scope_building_ids))
    units = db.session.execute(q).all()
    owners: dict[int, list[tuple[int, str]]] = {}
    for unit_id, owner_id, name in db.session.execute(
            sa.select(Ownership.unit_id, Owner.id, Owner.name).join(Owner, Owner.id == Ownership.owner_id)
            .where(Owner.estate_id == rnd.estate_id).order_by(Owner.id)):
        owners.setdefault(unit_id, []).append((owner_id, name))
    rows = [
        {"round_id": rnd.id, "unit_id": u.id, "building_id": u.building_id, "building_name": u.name,
         "unit_number": u.number, "label": f"{u.name}-{u.number}", "area_m2": u.title_area_m2,
         "owner_ids": [o[0] for o in owners.get(u.id, [])], "owner_names": [o[1] for o in owners.get(u.id, [])]}
        for u in units
    ]
    persons = rnd.counting_mode == "person"
    if persons:  # 法释〔2009〕7号 art. 9: the person each unit counts under, frozen with the roll
        keys = person_counters.person_unit_ids([(r["unit_id"], r["owner_ids"]) for r in rows])
        for r in rows:
            r["person_unit_id"] = keys[r["unit_id"]]
    if rows:
        db.session.execute(sa.insert(RollEntry), rows)
        counters.write_roll_totals(rnd.id, persons=persons)
    return len(rows)


def open_round(round_id: int, now: datetime, actor=None) -> bool:
    """Open a draft round and freeze its roll. False (nothing changed) if it is not a draft any more."""
    rnd = lock_round(round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    if rnd.status != "draft":
        return False
    if rnd.kind == "plan_vote":
        from residents_app.plans.models import PlanVersion

        problem = plan_vote_problem(db.session.get(PlanVersion, rnd.plan_version_id))
        if problem:
            raise Conflict(problem, code="plan_not_published")
    rnd.mark_open(now)
    count = freeze_roll(rnd)
    if count == 0:
        raise Conflict("表决范围内没有任何房屋，无法开启（请先导入房屋名册）", code="roll_empty")
    db.session.flush()
    record("round.opened", chain=rnd.estate_id, actor=actor_name(actor), now=now, subject_type="round",
           subject_id=rnd.id, data={"roll_units": count, "closes_at": rnd.closes_at.isoformat()})
    return True


def close_round(round_id: int, now: datetime, actor=None) -> bool:
    """Close an open round whose window has ended, store its result. False if already closed or not due.

    The scheduler closes many at once through rounds.closing.CloseBatch (same result, fewer statements)."""
    rnd = lock_round(round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    if rnd.status != "open" or now < rnd.closes_at:
        return False
    rnd.mark_closed(now)
    # Paper ballots still waiting for confirmation or conflict resolution do not count.
    store_result(rnd, compute_tally(rnd.id, now), _agreeing_labels_live(rnd.id), now, actor)
    return True


def store_result(rnd: Round, t: th.Tally, labels: list[str], now: datetime, actor=None) -> None:
    """The closed round's RoundResult and its `round.closed` entry on the chain (the round is locked, closed)."""
    passed, stored = outcomes.result_of(rnd, t)
    if rnd.is_survey or rnd.is_choice:
        labels = []  # nobody "agreed": a list of agreeing units would mean nothing
    db.session.add(RoundResult(round_id=rnd.id, passed=passed, tally=stored,
                               agreeing_unit_labels=labels, closed_at=now))
    db.session.flush()
    data = {"passed": passed, "tally_sha256": hashlib.sha256(
        repr(sorted(t.to_dict()["figures"].items())).encode()).hexdigest()}
    if rnd.is_survey:
        del data["passed"]
    elif rnd.is_choice:
        data = {"decided": stored["choice"]["decided"], "tally_sha256": data["tally_sha256"]}
    record("round.closed", chain=rnd.estate_id, actor=actor_name(actor), now=now, subject_type="round",
           subject_id=rnd.id, data=data)


def round_outcome(round_id: int) -> dict | None:
    res = db.session.get(RoundResult, round_id)
    if res is None:
        return None
    rnd = db.session.get(Round, round_id)
    out = {"round_id": round_id, "estate_id": rnd.estate_id, "kind": rnd.kind, "title": rnd.title,
           "plan_version_id": rnd.plan_version_id, "passed": res.passed, "tally": res.tally,
           "closed_at": res.closed_at}
    if rnd.is_survey:
        del out["passed"]  # a survey decides nothing
    elif rnd.is_choice:
        choice = (res.tally or {}).get("choice") or {}
        out["decided"], out["decided_label"] = choice.get("decided"), choice.get("decided_label", "未决定")
    return out


def _agreeing_labels_live(round_id: int) -> list[str]:
    rows = db.session.execute(
        sa.select(RollEntry.building_name, RollEntry.unit_number, RollEntry.label)
        .join(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                     CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id, CurrentBallot.choice == th.AGREE)).all()
    rows.sort(key=lambda r: (natural_key(r[0]), natural_key(r[1])))
    return [r[2] for r in rows]


def agreeing_unit_labels(round_id: int) -> list[str]:
    """Unit numbers that agreed (final list once closed), never names or phone numbers."""
    res = db.session.get(RoundResult, round_id)
    if res is not None:
        return list(res.agreeing_unit_labels)
    return _agreeing_labels_live(round_id)


def open_rounds_for_unit(unit_id: int, now: datetime) -> list[Round]:
    return list(db.session.execute(
        sa.select(Round).join(RollEntry, RollEntry.round_id == Round.id)
        .where(RollEntry.unit_id == unit_id, Round.status == "open", Round.opens_at <= now, Round.closes_at > now)
        .order_by(Round.closes_at)).scalars())


def closed_rounds_for_unit(unit_id: int, limit: int = 5) -> list[tuple[Round, RoundResult | None]]:
    """The unit's most recently closed rounds with their stored result (a resident sees how they ended)."""
    return [tuple(row) for row in db.session.execute(
        sa.select(Round, RoundResult).join(RollEntry, RollEntry.round_id == Round.id)
        .outerjoin(RoundResult, RoundResult.round_id == Round.id)
        .where(RollEntry.unit_id == unit_id, Round.status == "closed")
        .order_by(Round.closes_at.desc()).limit(limit))]


def result_label(rnd: Round, result: RoundResult | None) -> str:
    """A closed round's outcome in a resident's words."""
    if result is None:
        return "已截止，结果统计中"
    if rnd.is_survey:
        return "问卷已结束，结果已汇总"
    if rnd.is_choice:
        decided = ((result.tally or {}).get("choice") or {}).get("decided_label")
        return f"结果：{decided}" if result.passed and decided else "结果：没有选项达到表决规则，未决定"
    return "结果：通过" if result.passed else "结果：未通过"


def rounds_of_estate(estate_id: int) -> list[Round]:
    return list(db.session.execute(
        sa.select(Round).where(Round.estate_id == estate_id).order_by(Round.id.desc())).scalars())


# ---- the plan vote is on a published version (DOMAIN: "Which rule a matter takes") ----------------

def plan_vote_problem(version) -> str | None:
    """Why a plan vote cannot be on this version (None: it can, the version is the published one)."""
    if version is None:
        return "方案表决必须选择一个方案版本"
    if version.status == "draft":
        return f"方案第 {version.number} 版还是草稿，不能表决：请先发布该版本，居民表决的是已发布的方案"
    if version.status == "superseded":
        return f"方案第 {version.number} 版已被新版本取代，不能再表决"
    return None


def _open_votes_block_superseding(plan) -> list[str]:
    """A published version is not replaced while residents are voting on it."""
    rounds = db.session.execute(
        sa.select(Round).where(Round.plan_version_id == plan.id, Round.kind == "plan_vote", Round.status == "open")
        .order_by(Round.id)).scalars().all()
    return [f"第 {plan.number} 版方案的表决「{r.title}」正在进行，表决结束前不能发布新版本取代它" for r in rounds]


def _register_plan_guard() -> None:
    from residents_app.plans import services as plan_services

    if _open_votes_block_superseding not in plan_services.SUPERSEDE_GUARDS:
        plan_services.SUPERSEDE_GUARDS.append(_open_votes_block_superseding)


_register_plan_guard()
