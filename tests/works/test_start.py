"""The start application: refused with its reasons, then accepted once the data is complete.

Uses the real rounds and publicity services for the vote and its publicity.
"""

from __future__ import annotations

from datetime import date

import pytest

from residents_app.errors import Conflict, Forbidden
from residents_app.funding import services as funding_svc
from residents_app.works import services as works_svc


def _vote(world, kind, plan_id, *, agree=True):
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind=kind, title={"plan_vote": "方案表决", "willingness": "改造意愿征求"}.get(kind, "管理模式表决"),
        opens_at=world.now,
        closes_at=world.later(days=1), plan_version_id=plan_id), world.now, world.committee)
    rounds.open_round(rnd.id, world.now)
    # A management mode round is a choice among modes (自治 here), not agree / disagree.
    yes, no = ("self_managed", "abstain") if kind == "management_mode" else ("agree", "disagree")
    for u in world.units:
        ballots.cast_ballot(rnd.id, u.id, world.owner(u).id, yes if agree else no, world.later(hours=1))
    rounds.close_round(rnd.id, world.later(days=1))
    return rnd


def _publicise(world, rnd, *, complete=True):
    from residents_app.publicity import services as pub

    p = pub.post_publicity(world.estate, subject_type="round_result", subject_id=rnd.id, title="方案表决结果公示",
                           notice_text="经表决，方案通过。", posted_on=date(2026, 9, 2), working_days=5,
                           actor="user:1:test", now=world.later(days=1))
    if complete:
        # posted Wed 9/2: 9/3, 9/4, 9/7, 9/8, 9/9 -> ends 24:00 on 9/9 (Beijing)
        pub.complete_publicity(p, actor="user:1:test", now=world.later(days=9))
    return p


def reasons(checks):
    return [(c.key, c.met, c.reason) for c in checks]


def test_start_refused_with_reasons_then_accepted(world):
    plan = world.plan()
    with pytest.raises(Conflict) as info:
        works_svc.submit_start(world.estate, user=world.committee, now=world.now)
    assert info.value.code == "start_conditions_unmet"
    assert info.value.errors == {
        "willingness": ["还没有已结束的全小区改造意愿征求"],
        "plan_vote": ["第 1 版方案还没有已结束的方案表决"],
        "publicity": ["没有可公示的方案表决结果"],
        "management_mode": ["还没有已结束的管理模式表决"],
        "pledges": ["应出资 3 户，已签 0 户，还差 3 户：1幢-101、1幢-102、2幢-101"],
        "self_funding": ["已到位 0.00 / 11,000.00 元（0.00%），还差 11,000.00 元，3 户未缴足："
                         "1幢-101、1幢-102、2幢-101"],
    }

    _vote(world, "willingness", None)
    rnd = _vote(world, "plan_vote", plan.id)
    pub = _publicise(world, rnd, complete=False)
    _vote(world, "management_mode", None)
    for u in world.units[:2]:
        funding_svc.sign_pledge(plan, u, world.owner(u), now=world.later(days=2))
    funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=540_000, method="bank",
                            paid_on=date(2026, 9, 3), user=world.committee, now=world.later(days=2))
    funding_svc.record_payment(world.estate, unit_id=world.u102.id, amount_fen=359_999, method="bank",
                            paid_on=date(2026, 9, 3), user=world.committee, now=world.later(days=2))
    checks = works_svc.start_checklist(plan, world.later(days=3))
    assert reasons(checks) == [
        ("willingness", True, "意愿征求「改造意愿征求」已通过"),
        ("plan_vote", True, "表决「方案表决」已通过"),
        ("publicity", False, "公示期尚未届满（截至 2026-09-09 24:00）"),
        ("management_mode", True, "管理模式表决「管理模式表决」已决定：自治"),
        ("management_plan", True, "方案中已有长效管理方案"),
        ("pledges", False, "应出资 3 户，已签 2 户，还差 1 户：2幢-101"),
        ("self_funding", False, "已到位 8,999.99 / 11,000.00 元（81.81%），还差 2,000.01 元，2 户未缴足："
                                "1幢-102、2幢-101"),
    ]

    from residents_app.publicity import services as pubs

    pubs.complete_publicity(pub, actor="user:1:test", now=world.later(days=9))
    funding_svc.sign_pledge(plan, world.u201, world.owner(world.u201), now=world.later(days=9))
    funding_svc.record_payment(world.estate, unit_id=world.u102.id, amount_fen=1, method="cash",
                            paid_on=date(2026, 9, 10), user=world.committee, now=world.later(days=9))
    funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=200_000, method="wechat",
                            paid_on=date(2026, 9, 10), user=world.committee, now=world.later(days=9))
    checks = works_svc.start_checklist(plan, world.later(days=9))
    assert [c.met for c in checks] == [True] * 7
    assert checks[6].reason == "已到位 11,000.00 / 11,000.00 元（100%）"

    app = works_svc.submit_start(world.estate, user=world.committee, now=world.later(days=9))
    assert app.status == "submitted" and len(app.checklist) == 7
    with pytest.raises(Conflict) as info:
        funding_svc.withdraw_pledge(plan, world.u101, world.owner(world.u101), now=world.later(days=9))
    assert info.value.message == "启动申请已提交，承诺书不能再撤回"
    with pytest.raises(Forbidden):
        works_svc.decide_start(app, approve=True, comment="", user=world.committee, now=world.later(days=10))
    with pytest.raises(Conflict) as info:
        works_svc.decide_start(app, approve=False, comment=" ", user=world.street, now=world.later(days=10))
    assert info.value.message == "退回申请时必须填写退回意见"
    works_svc.decide_start(app, approve=False, comment="请补充申请表盖章页", user=world.street,
                          now=world.later(days=10))
    assert (app.status, app.comment) == ("returned", "请补充申请表盖章页")
    works_svc.submit_start(world.estate, user=world.committee, now=world.later(days=11))
    works_svc.decide_start(app, approve=True, comment="同意启动", user=world.street, now=world.later(days=12))
    assert (app.status, app.decided_by_id) == ("approved", world.street.id)


def test_failed_vote_and_open_objection_are_reported(world):
    plan = world.plan()
    rnd = _vote(world, "plan_vote", plan.id, agree=False)
    checks = works_svc.start_checklist(plan, world.later(days=2))
    assert reasons(checks)[1:3] == [("plan_vote", False, "表决「方案表决」未达到通过条件"),
                                   ("publicity", False, "该表决结果尚未公示")]
    assert rnd.status == "closed"


def test_management_plan_missing_is_a_reason(world):
    plan = world.plan(management_plan="")
    check = works_svc.check_management_plan(plan, {})
    assert (check.met, check.reason) == (False, "第 1 版方案没有长效管理方案（文字或附件）")
