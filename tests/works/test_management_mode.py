"""The start checklist's management mode line: met by a decided option, whichever it is (自治 included); an
undecided round (no option met the ordinary rule) is a reason. World: 1幢-101 60.00 m², 1幢-102 40.00 m²,
2幢-101 100.00 m²."""

from __future__ import annotations

from residents_app.works import services as works_svc


def _mode_round(world, choices: dict):
    from residents_app.rounds import ballots
    from residents_app.rounds import services as rounds

    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="management_mode", title="管理模式表决", opens_at=world.now, closes_at=world.later(days=1)),
        world.now, world.committee)
    rounds.open_round(rnd.id, world.now)
    for unit, choice in choices.items():
        ballots.cast_ballot(rnd.id, unit.id, world.owner(unit).id, choice, world.later(hours=1))
    rounds.close_round(rnd.id, world.later(days=1))
    return rnd


def _line(world, plan):
    return next((c.met, c.reason) for c in works_svc.start_checklist(plan, world.later(days=2))
                if c.key == "management_mode")


def test_self_management_decided_meets_the_line(world):
    plan = world.plan()
    # 自治: 2 of 3 households, 160.00 of 200.00 m² (turnout 3 of 3).
    _mode_round(world, {world.u101: "self_managed", world.u201: "self_managed", world.u102: "property_company"})
    assert _line(world, plan) == (True, "管理模式表决「管理模式表决」已决定：自治")


def test_undecided_mode_is_a_reason(world):
    plan = world.plan()
    # 自治 1 of 3 households: no option has more than half of the participants.
    _mode_round(world, {world.u101: "self_managed", world.u102: "property_company", world.u201: "abstain"})
    assert _line(world, plan) == (
        False, "管理模式表决「管理模式表决」没有任何选项达到表决规则（未决定），需重新表决")
