"""What a round yields besides passed / not passed: the decided option of a choice (management mode), and the
figures of a survey (satisfaction, evaluation). The arithmetic is core's (core.choices, core.survey)."""

from __future__ import annotations

import sqlalchemy as sa

from residents_app.core import choices as ch
from residents_app.core import survey as sv
from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, Round, RoundResult


def _roll_and_choices(round_id: int) -> tuple[list[th.RollEntry], dict[int, str]]:
    rows = db.session.execute(
        sa.select(RollEntry.unit_id, RollEntry.building_id, RollEntry.area_m2, RollEntry.owner_ids,
                  CurrentBallot.choice)
        .select_from(RollEntry)
        .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                          CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id)).all()
    entries = [th.RollEntry(u, b, a, tuple(o or ())) for u, b, a, o, _ in rows]
    return entries, {u: c for u, _, _, _, c in rows if c is not None}


def choice_tally(rnd: Round) -> ch.ChoiceTally:
    """Every option of a choice round against its rule, from the frozen roll and the counted ballots."""
    entries, ballots = _roll_and_choices(rnd.id) if rnd.status != "draft" else ([], {})
    return ch.choice_tally(entries, ballots, [(o["key"], o["label"]) for o in rnd.options or []],
                           rnd.rule_preset, rnd.counting_mode)


def survey_summary(rnd: Round) -> dict:
    """Response rate (units of the frozen roll that answered), per question the distribution and the average."""
    total = db.session.execute(
        sa.select(sa.func.count()).select_from(RollEntry).where(RollEntry.round_id == rnd.id)).scalar_one()
    rows = db.session.execute(
        sa.select(Ballot.choice, Ballot.rating).join(CurrentBallot, CurrentBallot.ballot_id == Ballot.id)
        .where(CurrentBallot.round_id == rnd.id)).all()
    return sv.summarize(total, [(c, r) for c, r in rows], [(o["key"], o["label"]) for o in rnd.options or []])


def survey_figures(tally: dict) -> dict:
    """The participation figures of a tally without any agree figure (a survey has no "agree")."""
    f = tally["figures"]
    return {k: f[k] for k in ("total_count", "total_area", "voted_count", "voted_area")}


def result_of(rnd: Round, t: th.Tally) -> tuple[bool, dict]:
    """(passed, the tally to store) at the close. A choice stores its options and the decided one (`passed` then
    means "an option was decided"); a survey stores its figures and no outcome at all."""
    stored = t.to_dict()
    if rnd.is_survey:
        return False, {"survey": survey_summary(rnd), "counting_mode": "household",
                       "figures": survey_figures(stored)}
    if rnd.is_choice:
        # No "agree" in a choice: participation figures, then each option against the rule.
        c = choice_tally(rnd)
        return c.decided is not None, {
            "preset": stored["preset"], "counting_mode": stored["counting_mode"], "figures": survey_figures(stored),
            "buildings": [{k: v for k, v in b.items() if not k.startswith("agree")} for b in stored["buildings"]],
            "choice": c.to_dict()}
    return t.passed, stored


def live_tally(rnd: Round, t: th.Tally) -> dict:
    """The tally as the pages and the API show it before the close (the same shape as the stored one)."""
    return result_of(rnd, t)[1]


def decided_option(round_id: int) -> tuple[str, str] | None:
    """(key, label) of the decided option of a closed choice round; None when undecided or not closed."""
    res = db.session.get(RoundResult, round_id)
    if res is None:
        return None
    choice = (res.tally or {}).get("choice") or {}
    if not choice.get("decided"):
        return None
    return choice["decided"], choice["decided_label"]
