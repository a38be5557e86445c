"""The tally checked against the log: each closed round recounted from its chain's ballot entries.

Every ballot that came to count for a unit went onto the estate's chain as a `ballot.cast` entry (online casts,
and paper or proxy ballots when confirmed or when they won a conflict), in the order the counted ballot was set;
so the last such entry of a unit is the ballot that counts for it. The recount compares that with the ballot
tables (current_ballot and the ballot rows) and with the stored result (figures, passed, agreeing units):
an edit of `current_ballot.choice` in the database, which the chain's hashes cannot see, shows up here.

Registered with audit.verify.EXTRA_CHECKS (this module is imported by rounds/models.py), so `flask audit verify`
runs it; the street office's desk runs recount_round before a sign-off.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.audit.verify import Problem, register_check
from residents_app.core import choices as ch
from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.rounds.models import Ballot, CurrentBallot, RollEntry, Round, RoundResult

# (ballot id, choice) of the counted ballot of each unit, by round: from the log.
ChainCounts = dict[int, dict[int, tuple[int, str]]]


def chain_counts(chain: int, round_ids: set[int]) -> ChainCounts:
    """Replay the chain's `ballot.cast` entries (then any still pending, in the order they will be sealed)."""
    out: ChainCounts = {rid: {} for rid in round_ids}
    for model, order in ((AuditEvent, AuditEvent.seq), (AuditPending, AuditPending.id)):
        rows = db.session.execute(
            sa.select(model.subject_id, model.data)
            .where(model.chain == chain, model.kind == "ballot.cast", model.subject_type == "ballot")
            .order_by(order)).all()
        for subject_id, data in rows:
            if not isinstance(data, dict) or data.get("round_id") not in out or not str(subject_id).isdigit():
                continue
            out[data["round_id"]][int(data["unit_id"])] = (int(subject_id), str(data.get("choice")))
    return out


def _label(choice: str | None, rnd: Round) -> str:
    return "无" if choice is None else f"“{rnd.option_labels.get(choice, choice)}”"


def _round_problems(rnd: Round, counted: dict[int, tuple[int, str]]) -> list[Problem]:
    subject = f"表决 #{rnd.id}「{rnd.title}」"
    problems: list[Problem] = []

    def problem(code: str, message: str) -> None:
        problems.append(Problem(chain=rnd.estate_id, subject=subject, code=code, message=message))

    entries = list(db.session.execute(sa.select(RollEntry).where(RollEntry.round_id == rnd.id)).scalars())
    label_of = {e.unit_id: e.label for e in entries}

    def unit(unit_id: int) -> str:
        return f"房屋 {label_of.get(unit_id, f'#{unit_id}')}"

    # 1. current_ballot (what the tally aggregates) against the log.
    current = {u: (b, c) for u, b, c in db.session.execute(
        sa.select(CurrentBallot.unit_id, CurrentBallot.ballot_id, CurrentBallot.choice)
        .where(CurrentBallot.round_id == rnd.id))}
    for unit_id in sorted(set(current) | set(counted), key=lambda u: label_of.get(u, str(u))):
        logged, stored = counted.get(unit_id), current.get(unit_id)
        if logged == stored:
            continue
        if stored is None:
            problem("current_ballot_missing", f"{unit(unit_id)}：日志中计入的是第 {logged[0]} 号票 "
                    f"{_label(logged[1], rnd)}，current_ballot 中却没有该户")
        elif logged is None:
            problem("current_ballot_unlogged", f"{unit(unit_id)}：current_ballot 记有第 {stored[0]} 号票 "
                    f"{_label(stored[1], rnd)}，日志中该户没有计入的票")
        else:
            problem("current_ballot_mismatch", f"{unit(unit_id)}：日志中计入的是第 {logged[0]} 号票 "
                    f"{_label(logged[1], rnd)}，current_ballot 却是第 {stored[0]} 号票 {_label(stored[1], rnd)}")

    # 2. The ballot rows: the logged ballot is the one marked counted, with the logged choice.
    rows = {b.id: b for b in db.session.execute(
        sa.select(Ballot).where(Ballot.round_id == rnd.id, sa.or_(
            Ballot.status == "counted", Ballot.id.in_([b for b, _ in counted.values()])))).scalars()}
    for unit_id, (ballot_id, choice) in sorted(counted.items(), key=lambda kv: label_of.get(kv[0], "")):
        b = rows.get(ballot_id)
        if b is None:
            problem("ballot_missing", f"{unit(unit_id)}：日志中计入的第 {ballot_id} 号票在 ballot 表中不存在")
        elif (b.choice, b.status, b.unit_id) != (choice, "counted", unit_id):
            problem("ballot_mismatch", f"{unit(unit_id)}：日志中第 {ballot_id} 号票为 {_label(choice, rnd)}（计入），"
                    f"ballot 表中为 {_label(b.choice, rnd)}（{b.status_label}）")
    logged_ids = {b for b, _ in counted.values()}
    for b in sorted(rows.values(), key=lambda b: b.id):
        if b.status == "counted" and b.id not in logged_ids:
            problem("ballot_unlogged",
                    f"{unit(b.unit_id)}：ballot 表中第 {b.id} 号票标为已计入，日志中计入的不是这张票")

    # 3. The stored result against the recount from the log.
    result = db.session.get(RoundResult, rnd.id)
    if result is None:
        problem("result_missing", "表决已结束，却没有保存的结果")
        return problems
    roll = [th.RollEntry(e.unit_id, e.building_id, e.area_m2, tuple(e.owner_ids or ())) for e in entries]
    recount = th.tally(roll, {u: c for u, (_, c) in counted.items()}, rnd.rule_preset, rnd.counting_mode)
    figures = recount.to_dict()["figures"]
    stored = (result.tally or {}).get("figures", {})
    for key in sorted(set(figures) & set(stored)):
        if _norm(figures[key]) != _norm(stored[key]):
            problem("result_mismatch", f"保存的结果 {key} = {stored[key]}，按日志重新计票为 {figures[key]}")
    # A survey has no pass or fail (issue 13 item 3) and nobody "agrees" in it: nothing more to compare.
    if rnd.is_survey:
        return problems
    if rnd.is_choice:
        # A choice stores whether an option was decided, and which; no agreeing units.
        choice = ch.choice_tally(roll, {u: c for u, (_, c) in counted.items()},
                                 [(o["key"], o["label"]) for o in rnd.options or []], rnd.rule_preset,
                                 rnd.counting_mode).to_dict()
        stored_choice = (result.tally or {}).get("choice") or {}
        if (choice.get("decided"), choice.get("decided_label")) != (stored_choice.get("decided"),
                                                                    stored_choice.get("decided_label")):
            problem("result_mismatch", f"保存的决定为“{stored_choice.get('decided_label') or '未决定'}”，"
                    f"按日志重新计票为“{choice.get('decided_label') or '未决定'}”")
        return problems
    if bool(result.passed) != bool(recount.passed):
        problem("result_mismatch", f"保存的结果为“{'通过' if result.passed else '未通过'}”，"
                f"按日志重新计票为“{'通过' if recount.passed else '未通过'}”")
    agreeing = {label_of[u] for u, (_, c) in counted.items() if c == th.AGREE and u in label_of}
    stored_labels = set(result.agreeing_unit_labels or [])
    if agreeing != stored_labels:
        missing, extra = sorted(agreeing - stored_labels), sorted(stored_labels - agreeing)
        detail = "；".join(part for part in (
            f"日志中同意而结果未列：{'、'.join(missing)}" if missing else "",
            f"结果列出而日志中未同意：{'、'.join(extra)}" if extra else "",
        ) if part)
        problem("agreeing_units_mismatch", f"保存的同意房号与日志不符（{detail}）")
    return problems


def _norm(value):
    """Figures compare as numbers: areas are stored as "123.45" strings, counts as integers."""
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return value


def recount_round(rnd: Round) -> list[Problem]:
    """A closed round against its log; [] when the tables, the stored result and the log agree."""
    if rnd.status != "closed":
        return []
    return _round_problems(rnd, chain_counts(rnd.estate_id, {rnd.id})[rnd.id])


@register_check
def recount_closed_rounds(estate_ids: list[int] | None) -> list[Problem]:
    """Every closed round (of `estate_ids`, or of all estates) recounted from its chain."""
    q = sa.select(Round).where(Round.status == "closed").order_by(Round.estate_id, Round.id)
    if estate_ids is not None:
        q = q.where(Round.estate_id.in_(estate_ids))
    by_chain: dict[int, list[Round]] = {}
    for rnd in db.session.execute(q).scalars():
        by_chain.setdefault(rnd.estate_id, []).append(rnd)
    problems: list[Problem] = []
    for chain, rounds in by_chain.items():
        counts = chain_counts(chain, {r.id for r in rounds})
        for rnd in rounds:
            problems.extend(_round_problems(rnd, counts[rnd.id]))
    return problems


def recount_problems(estate_ids: list[int] | None = None) -> list[Problem]:
    """The stored counters of every opened round against a recount from the ballots, then every closed round's
    stored result against a recount from its chain: what the load and fault drills check at their end."""
    from residents_app.rounds.counters import check_counters

    return check_counters(estate_ids) + recount_closed_rounds(estate_ids)
