"""The start application (项目启动申请) and its checklist: what must be true before the works start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.errors import Conflict, Forbidden
from residents_app.extensions import db
from residents_app.funding.services import (
    _ratio,
    _yuan,
    estate_units,
    format_ratio,
    owed_by_unit,
    pledges_of,
)
from residents_app.funding.sources import self_funding_state
from residents_app.plans.models import (
    PlanVersion,
)
from residents_app.plans.services import current_plan
from residents_app.registry.models import Estate, Unit
from residents_app.rounds.outcomes import decided_option
from residents_app.works.models import StartApplication


def start_application_of(plan: PlanVersion) -> StartApplication | None:
    return db.session.execute(
        sa.select(StartApplication).where(StartApplication.plan_version_id == plan.id)).scalar_one_or_none()


@dataclass
class Check:
    key: str
    label: str
    met: bool
    reason: str

    def as_dict(self) -> dict:
        return {"key": self.key, "label": self.label, "met": self.met, "reason": self.reason}


# Renovation is Civil Code art. 278 item 7 (改建、重建): the Lucheng double 2/3 or the major-matter rule; a
# weaker rule (the ordinary one) never opens the start gate, whatever it was created with.
RENOVATION_PRESETS = ("lucheng_double_two_thirds", "civil_code_278_major")


def _closed_rounds(estate_id: int, kind: str, plan_id: int | None = None) -> list:
    """Closed rounds of a kind, the latest first."""
    from residents_app.rounds.models import Round

    q = sa.select(Round).where(Round.estate_id == estate_id, Round.kind == kind, Round.status == "closed")
    if plan_id is not None:
        q = q.where(Round.plan_version_id == plan_id)
    return list(db.session.execute(q.order_by(Round.closed_at.desc(), Round.id.desc())).scalars())


def _latest_closed_round(estate_id: int, kind: str, plan_id: int | None = None):
    rounds = _closed_rounds(estate_id, kind, plan_id)
    return rounds[0] if rounds else None


def _round_passed(round_id: int) -> bool | None:
    """The rounds feature's stored outcome; None while it has none."""
    from residents_app.rounds.services import round_outcome

    outcome = round_outcome(round_id)
    return None if outcome is None else bool(outcome["passed"])


def _scope_names(rnd) -> str:
    from residents_app.registry.models import Building

    names = db.session.execute(sa.select(Building.name).where(Building.id.in_(rnd.scope_building_ids))
                               .order_by(Building.name)).scalars().all()
    return "、".join(names)


def _rule_problem(rnd, what: str) -> str | None:
    if rnd.rule_preset in RENOVATION_PRESETS:
        return None
    from residents_app.core.thresholds import PRESETS

    label = PRESETS[rnd.rule_preset].label if rnd.rule_preset in PRESETS else rnd.rule_preset
    return (f"{what}「{rnd.title}」采用「{label}」规则；改造属于《民法典》第二百七十八条第一款第七项，"
            "须采用双三分之二或重大事项规则")


def _outcome_check(key: str, label: str, rnd, what: str) -> Check:
    passed = _round_passed(rnd.id)
    if passed is None:
        return Check(key, label, False, f"{what}「{rnd.title}」的结果尚未统计")
    if not passed:
        return Check(key, label, False, f"{what}「{rnd.title}」未达到通过条件")
    return Check(key, label, True, f"{what}「{rnd.title}」已通过")


def _publicity_state(round_id: int, now: datetime) -> tuple[bool, str]:
    """(ended without open objection, reason) for the publicity of a round result."""
    from residents_app.publicity.services import publicity_status

    st = publicity_status("round_result", round_id, now)
    if st["open_objections"]:
        return False, f"公示期内还有 {st['open_objections']} 条异议未处理"
    if not st["ended"]:
        return False, "；".join(st.get("reasons_not_complete") or ["公示期尚未结束"])
    return True, "公示期已结束，无未处理的异议"


def check_willingness(plan: PlanVersion, ctx: dict) -> Check:
    key, label = "willingness", "全小区改造意愿征求已通过"
    rounds = _closed_rounds(plan.estate_id, "willingness")
    estate_wide = [r for r in rounds if not r.scope_building_ids]
    if not estate_wide:
        if rounds:
            return Check(key, label, False, f"意愿征求「{rounds[0].title}」只涵盖 {_scope_names(rounds[0])}，"
                                            "改造意愿须由全小区业主表决")
        return Check(key, label, False, "还没有已结束的全小区改造意愿征求")
    rnd = estate_wide[0]
    problem = _rule_problem(rnd, "意愿征求")
    if problem:
        return Check(key, label, False, problem)
    return _outcome_check(key, label, rnd, "意愿征求")


def check_plan_vote(plan: PlanVersion, ctx: dict) -> Check:
    key, label = "plan_vote", f"全小区方案表决通过（现行第 {plan.number} 版方案）"
    rounds = _closed_rounds(plan.estate_id, "plan_vote", plan.id)
    estate_wide = [r for r in rounds if not r.scope_building_ids]
    rnd = estate_wide[0] if estate_wide else None
    ctx["plan_round"] = rnd
    if rnd is None:
        if rounds:
            return Check(key, label, False, f"表决「{rounds[0].title}」只涵盖 {_scope_names(rounds[0])}，"
                                            "方案须由全小区业主表决")
        older = [r for r in _closed_rounds(plan.estate_id, "plan_vote") if r.plan_version_id != plan.id]
        if older:
            from residents_app.plans.models import PlanVersion as PV

            number = db.session.get(PV, older[0].plan_version_id).number
            return Check(key, label, False, f"第 {plan.number} 版方案还没有已结束的方案表决"
                                            f"（表决「{older[0].title}」针对的是已被取代的第 {number} 版）")
        return Check(key, label, False, f"第 {plan.number} 版方案还没有已结束的方案表决")
    problem = _rule_problem(rnd, "表决")
    if problem:
        return Check(key, label, False, problem)
    if plan.published_at is not None and (rnd.opened_at is None or rnd.opened_at < plan.published_at):
        return Check(key, label, False, f"表决「{rnd.title}」开启时第 {plan.number} 版方案尚未发布")
    return _outcome_check(key, label, rnd, "表决")


def check_publicity(plan: PlanVersion, ctx: dict) -> Check:
    label = "方案表决结果公示期满（不少于5个工作日）且无未处理异议"
    rnd = ctx.get("plan_round")
    if rnd is None:
        return Check("publicity", label, False, "没有可公示的方案表决结果")
    ok, reason = _publicity_state(rnd.id, ctx["now"])
    return Check("publicity", label, ok, reason)


def management_mode_decided(estate_id: int) -> tuple[bool, str]:
    """(decided, reason): has the estate decided its management mode after the renovation (any option)?

    The latest closed management-mode round decides: a choice among 物业服务企业 / 准物业 / 自治 / 信托制物业.
    """
    rnd = _latest_closed_round(estate_id, "management_mode")
    if rnd is None:
        return False, "还没有已结束的管理模式表决"
    # A choice: decided when an option met the rule, whichever (自治 as much as 物业服务企业).
    decided = decided_option(rnd.id)
    if decided is None:
        return False, f"管理模式表决「{rnd.title}」没有任何选项达到表决规则（未决定），需重新表决"
    return True, f"管理模式表决「{rnd.title}」已决定：{decided[1]}"


def check_management_mode(plan: PlanVersion, ctx: dict) -> Check:
    decided, reason = management_mode_decided(plan.estate_id)
    return Check("management_mode", "改造后管理模式已确定", decided, reason)


def check_management_plan(plan: PlanVersion, ctx: dict) -> Check:
    label = "长效管理方案"
    if plan.has_management_plan():
        return Check("management_plan", label, True, "方案中已有长效管理方案")
    return Check("management_plan", label, False, f"第 {plan.number} 版方案没有长效管理方案（文字或附件）")


def _labels(units: list[Unit], limit: int = 8) -> str:
    text = "、".join(u.label for u in units[:limit])
    return text + (f" 等 {len(units)} 户" if len(units) > limit else "")


def check_pledges(plan: PlanVersion, ctx: dict) -> Check:
    label = "居民承诺书：应出资的每一户都已签署"
    owed = ctx["owed"]  # the saved amounts (funding/owed.py)
    pledged = {p.unit_id: p for p in pledges_of(plan)}
    units = ctx["units"]
    owing = [u for u in units if owed[u.id] > 0]
    missing = [u for u in owing if u.id not in pledged]
    stale = [u for u in owing if u.id in pledged and pledged[u.id].amount_fen != owed[u.id]]
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
    """100 % of the residents' part in hand: what each unit paid (never more than it owes) plus the funding
    sources that offset residents' shares (funding.sources)."""
    label = "居民自筹资金到位 100%"
    counted, owed, short = self_funding_state(plan)
    ratio = format_ratio(_ratio(counted, owed)) if owed else "100.00%"
    if short or counted < owed:
        missing = owed - counted
        return Check("self_funding", label, False,
                     f"已到位 {_yuan(counted)} / {_yuan(owed)} 元（{ratio}），还差 {_yuan(missing)} 元，"
                     f"{len(short)} 户未缴足：{_labels(short)}")
    return Check("self_funding", label, True, f"已到位 {_yuan(counted)} / {_yuan(owed)} 元（100%）")


CHECKS = (check_willingness, check_plan_vote, check_publicity, check_management_mode, check_management_plan,
          check_pledges, check_self_funding)


def start_checklist(plan: PlanVersion, now: datetime) -> list[Check]:
    """Each line of the start application, met or not, with its reason; computed from the data."""
    ctx = {"owed": owed_by_unit(plan), "units": estate_units(plan.estate_id), "now": now}
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
    from residents_app.works.materials import materials_manifest

    record("plans.start_submitted", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="start_application", subject_id=app.id,
           data={"plan_version": plan.id, "checklist": app.checklist, "materials": materials_manifest(plan)})
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
