"""The project's timeline (issue 16 item 9): each stage from the willingness round to the evaluation with its date,
its state and what is overdue, for the estate dashboard and the district view.

The stages after the construction (acceptance, handover, evaluation) are registered by their own modules in
STAGE_HOOKS (key -> fn(estate_id, now) -> Stage | None), so this module does not import them."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.core.calendar import beijing_date
from residents_app.db import core_rows
from residents_app.extensions import db

STAGES = (("willingness", "改造意愿"), ("plan", "改造方案"), ("vote", "方案表决"), ("publicity", "结果公示"),
          ("start", "项目启动"), ("construction", "施工"), ("acceptance", "竣工验收"), ("settlement", "决算"),
          ("handover", "归档移交"), ("evaluation", "问效评价"))
STATE_LABELS = {"done": "已完成", "current": "进行中", "pending": "未开始", "overdue": "已逾期"}


@dataclass
class Stage:
    key: str
    label: str
    state: str = "pending"  # done, current, pending, overdue
    on: date | None = None  # the day it was done, or the day it is due
    note: str = ""
    overdue: list[str] = field(default_factory=list)

    @property
    def state_label(self) -> str:
        return STATE_LABELS[self.state]


# key -> fn(estate_id, now) -> Stage | None (None: nothing known yet, the stage stays pending)
STAGE_HOOKS: dict[str, Callable[[int, datetime], Stage | None]] = {}
# hook -> fn(estate_id) -> a SQL boolean that is false only when the hook would return None (e.g. EXISTS of its
# rows): project_timeline asks every probe in one statement and calls only the hooks that may find something.
# A hook without a probe is always called.
STAGE_PROBES: dict[Callable, Callable[[int], sa.ColumnElement]] = {}


def today(now: datetime) -> date:
    return beijing_date(now)


def _latest_round(estate_id: int, kind: str, plan_id: int | None = None, rounds: list | None = None):
    from residents_app.rounds.models import Round

    if rounds is not None:  # the estate's rounds, already read by the caller
        found = [r for r in rounds if r.kind == kind and r.status != "draft"
                 and (plan_id is None or r.plan_version_id == plan_id)]
        return max(found, key=lambda r: (r.opens_at, r.id), default=None)
    q = sa.select(Round).where(Round.estate_id == estate_id, Round.kind == kind, Round.status != "draft")
    if plan_id is not None:
        q = q.where(Round.plan_version_id == plan_id)
    return db.session.execute(q.order_by(Round.opens_at.desc(), Round.id.desc()).limit(1)).scalar_one_or_none()


def _round_stage(stage: Stage, rnd) -> None:
    if rnd is None:
        return
    if rnd.status == "closed":
        stage.state, stage.on = "done", beijing_date(rnd.closed_at)
        stage.note = rnd.title
    else:
        stage.state, stage.on, stage.note = "current", beijing_date(rnd.closes_at), f"{rnd.title}（截止日）"


def _construction_stage(stage: Stage, estate_id: int, now: datetime) -> None:
    from residents_app.works.construction import complaints, progress, services
    from residents_app.works.construction.models import RectificationItem

    project = services.project_of(estate_id)
    if project is None:
        return
    stage.state, stage.on = "current", beijing_date(project.decided_at)
    reports = progress.reports_of(project)
    stage.note = f"进度 {reports[0].percent_done}%" if reports else "尚无进度通报"
    if progress.report_overdue(project, now):
        stage.overdue.append(f"进度通报逾期（应于 {progress.next_report_due(project).isoformat()} 前发布）")
    late = [c for c in complaints.complaints_of(estate_id) if c.is_overdue(today(now))]
    if late:
        stage.overdue.append(f"{len(late)} 件投诉咨询逾期未答复")
    items = db.session.execute(sa.select(RectificationItem).where(
        RectificationItem.start_application_id == project.id, RectificationItem.state == "open")).scalars().all()
    late_items = [i for i in items if i.is_overdue(today(now))]
    if late_items:
        stage.overdue.append(f"{len(late_items)} 项整改逾期")


def facts(estate_id: int) -> dict:
    """In one statement: the plan in force (plans.services.current_plan's id), whether the estate has a project
    (works.construction.services.project_of) and, per hook with a probe, whether it may find anything.
    The estate dashboard reads them once for its timeline and its funding card (the plan in force)."""
    hooks = tuple((key, STAGE_PROBES[hook]) for key, hook in STAGE_HOOKS.items() if hook in STAGE_PROBES)
    (row,) = core_rows(db.session, _facts_query(hooks), {"p_estate_id": estate_id})
    return {"plan": row.plan, "project": bool(row.project),
            **{key: bool(row._mapping[f"probe_{key}"]) for key, _ in hooks}}


@functools.cache
def _facts_query(hooks: tuple):
    """facts' statement for these (key, probe) pairs, the estate a bound parameter: built once (building it cost
    more than running it)."""
    from residents_app.plans.models import PlanVersion
    from residents_app.works.models import StartApplication

    estate_id = sa.bindparam("p_estate_id", type_=sa.Integer)
    return sa.select(
        sa.select(PlanVersion.id).where(PlanVersion.estate_id == estate_id, PlanVersion.status == "published")
        .order_by(PlanVersion.number.desc()).limit(1).scalar_subquery().label("plan"),
        sa.exists().where(StartApplication.estate_id == estate_id, StartApplication.status == "approved")
        .label("project"),
        *(probe(estate_id).label(f"probe_{key}") for key, probe in hooks))


def project_timeline(estate_id: int, now: datetime, *, rounds: list | None = None,
                     known: dict | None = None) -> list[Stage]:
    """`rounds`: every round of the estate and `known`: its facts(), when the caller has read them (the estate
    dashboard): no query for them."""
    from residents_app.funding.models import Settlement
    from residents_app.plans.models import PlanVersion
    from residents_app.publicity.models import Publicity
    from residents_app.works.models import StartApplication

    stages = {key: Stage(key, label) for key, label in STAGES}
    _round_stage(stages["willingness"], _latest_round(estate_id, "willingness", rounds=rounds))
    facts_ = known if known is not None else facts(estate_id)
    plan = db.session.get(PlanVersion, facts_["plan"]) if facts_["plan"] is not None else None
    if plan is not None:
        stages["plan"].state, stages["plan"].on = "done", beijing_date(plan.published_at)
        stages["plan"].note = f"第 {plan.number} 版"
        vote = _latest_round(estate_id, "plan_vote", plan.id, rounds)
        _round_stage(stages["vote"], vote)
        if vote is not None and vote.status == "closed":
            pub = db.session.execute(sa.select(Publicity).where(
                Publicity.subject_type == "round_result", Publicity.subject_id == vote.id)
                .order_by(Publicity.id.desc()).limit(1)).scalar_one_or_none()
            if pub is not None:
                s = stages["publicity"]
                s.on = pub.last_day
                s.state = "done" if pub.is_completed else "current"
        start = db.session.execute(sa.select(StartApplication).where(
            StartApplication.plan_version_id == plan.id)).scalar_one_or_none()
        if start is not None:
            s = stages["start"]
            if start.status == "approved":
                s.state, s.on = "done", beijing_date(start.decided_at)
            elif start.status == "submitted":
                s.state, s.on, s.note = "current", beijing_date(start.submitted_at), "待街道审批"
            else:
                s.state, s.note = "current", start.status_label
        settlement = db.session.execute(sa.select(Settlement).where(
            Settlement.plan_version_id == plan.id)).scalar_one_or_none()
        if settlement is not None:
            s = stages["settlement"]
            s.state = "done" if settlement.is_final else "current"
            s.on = beijing_date(settlement.finalised_at or settlement.created_at)
    if facts_["project"]:
        _construction_stage(stages["construction"], estate_id, now)
    for key, hook in STAGE_HOOKS.items():
        if not facts_.get(key, True):
            continue
        found = hook(estate_id, now)
        if found is not None and key in stages:
            stages[key] = found
    if stages["acceptance"].state == "done" and stages["construction"].state == "current":
        stages["construction"].state = "done"
    for s in stages.values():
        if s.overdue and s.state != "done":
            s.state = "overdue"
    return list(stages.values())


def summary(stages: list[Stage]) -> str:
    """One line for the district view: the stage the project is at, and how many things are overdue."""
    overdue = sum(len(s.overdue) for s in stages)
    at = next((s for s in stages if s.state != "done"), None)
    text = f"{at.label}（{at.state_label}）" if at else "全部完成"
    return f"{text} · {overdue} 项逾期" if overdue else text
