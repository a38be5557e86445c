"""Builders for the start gate tests: votes, their publicity, and a world where every check of the gate is met.

All through the real services, at times relative to `base` (the PlanWorld clock in the unit tests, the real
clock minus some days in the browser test).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from residents_app.core.calendar import beijing_date

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def requested_shots_dir() -> str | None:
    """Screenshots and rendered PDFs are written only when asked for: RAPP_SCREENSHOTS=<directory>."""
    path = os.environ.get("RAPP_SCREENSHOTS")
    if path:
        os.makedirs(path, exist_ok=True)
    return path or None


def vote(world, kind, *, plan_id=None, agree=True, scope=None, preset=None, base: datetime | None = None,
         title=None):
    """A round of `kind` over the world's units, opened at `base`, every unit casting, closed a day later."""
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    base = base or world.now
    titles = {"willingness": "改造意愿征求", "plan_vote": "方案表决", "management_mode": "管理模式表决"}
    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind=kind, title=title or titles[kind], opens_at=base, closes_at=base + timedelta(days=1),
        plan_version_id=plan_id, scope_building_ids=[b.id for b in scope] if scope else None), base, world.committee)
    if preset:  # a round created before the rule followed the matter (stored data, not the form)
        rnd.rule_preset = preset
    rounds.open_round(rnd.id, base, world.committee)
    scope_ids = {b.id for b in scope} if scope else None
    # The management mode is a choice: "agree" = every unit chooses 自治, otherwise all abstain (undecided).
    yes, no = ("self_managed", "abstain") if kind == "management_mode" else ("agree", "disagree")
    for u in world.units:
        if scope_ids is None or u.building_id in scope_ids:
            ballots.cast_ballot(rnd.id, u.id, world.owner(u).id, yes if agree else no, base + timedelta(hours=1))
    rounds.close_round(rnd.id, base + timedelta(days=1))
    return rnd


def publicise(world, rnd, *, complete=True):
    """Post the result on the day it exists (the close, Beijing time); complete it after 5 working days."""
    from residents_app.publicity import services as pub

    p = pub.post_publicity(world.estate, subject_type="round_result", subject_id=rnd.id, title="方案表决结果公示",
                           notice_text="经全体业主表决，《幸福小区综合改造方案》获得通过，现予公示。",
                           posted_on=beijing_date(rnd.closed_at), working_days=5, actor="user:1:test",
                           now=rnd.closed_at)
    if complete:
        pub.complete_publicity(p, actor="user:1:test", now=p.ends_at)
    return p


def pledge_and_pay(world, plan, now):
    from residents_app.funding import services as funding_svc

    c = funding_svc.compute_plan(plan)
    for u in world.units:
        funding_svc.sign_pledge(plan, u, world.owner(u), now=now)
        funding_svc.record_payment(world.estate, unit_id=u.id, amount_fen=c.units[u.id].owed_fen, method="bank",
                                   paid_on=beijing_date(now), user=world.committee, now=now)


def all_met(world, plan, base: datetime | None = None):
    """Willingness, plan vote, its publicity completed, management mode, pledges, 100% paid."""
    base = base or world.now
    vote(world, "willingness", base=base)
    rnd = vote(world, "plan_vote", plan_id=plan.id, base=base)
    p = publicise(world, rnd)
    vote(world, "management_mode", base=base)
    pledge_and_pay(world, plan, base + timedelta(days=2))
    return p.ends_at
