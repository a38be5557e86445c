"""Stored person counters of person-counted rounds (法释〔2009〕7号 art. 9; core.thresholds.persons).

Persons do not add up per building (a person is the units with an identical owner set, possibly in several
buildings), so they are counted apart from round_count:

- `roll_entry.person_unit_id`, frozen with the roll: the person a unit counts under, named by the smallest unit
  id among the units with that owner set (an ownerless unit is its own person);
- `round_person`, one row per person: units, voted units, agreeing units;
- `round_person_count`, the round's totals summed over slots: persons, participated (voted > 0), agree
  (agreeing = units), potential (voted = agreeing: no unit voted other than agree).

A cast changes one unit's choice (current_ballot's `choice` and `previous_choice`, as for round_count): the
person's row moves by (voted +1 on a first ballot, agreeing ±1), and the totals move by the person's transition
(new state minus old) in the slot of the cast unit. SQLite runs TOTALS_SQL (reading the person's row as it was)
then PERSON_SQL, under the write lock its transaction holds. PostgreSQL's cast takes PG_PERSON_CTE into its one
statement, its ORM paths (paper, proxy, conflicts) PG_MOVE_PERSON: the person's UPDATE returns its new values and
the deltas, the old state is new minus delta. Locks: round_count rows, then the person's row, then one totals
slot; a concurrent cast of the same person waits on the person's row and then sees its new values, so
transitions add up exactly.

`counters.problems_by_round` / `rebuild_counters` (`flask rounds recount`, `flask audit verify`) check and rebuild
these from the roll's owner sets and current_ballot.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from residents_app.audit.verify import Problem
from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.rounds.models import CurrentBallot, RollEntry, Round, RoundPerson, RoundPersonCount

# The cast unit's deltas, from the current_ballot row `c` its upsert left.
_DV = "CASE WHEN c.previous_choice IS NULL THEN 1 ELSE 0 END"
_DA = "(CASE WHEN c.choice = 'agree' THEN 1 ELSE 0 END) - (CASE WHEN c.previous_choice = 'agree' THEN 1 ELSE 0 END)"


def _moves(new_v: str, old_v: str, new_a: str, old_a: str, units: str) -> str:
    """participated, agree, potential: the person's new state minus its old one (each -1, 0 or +1)."""
    def flag(cond: str) -> str:
        return f"(CASE WHEN {cond} THEN 1 ELSE 0 END)"
    return (f"{flag(f'{new_v} > 0')} - {flag(f'{old_v} > 0')} AS participated, "
            f"{flag(f'{new_a} = {units}')} - {flag(f'{old_a} = {units}')} AS agree, "
            f"{flag(f'{new_v} = {new_a}')} - {flag(f'{old_v} = {old_a}')} AS potential")


_ADD_TOTALS = (
    "INSERT INTO round_person_count (round_id, slot, persons, participated, agree, potential) "
    "SELECT :round_id, :slot, 0, m.participated, m.agree, m.potential FROM ({moves}) m "
    "WHERE m.participated <> 0 OR m.agree <> 0 OR m.potential <> 0 "
    "ON CONFLICT (round_id, slot) DO UPDATE SET "
    "participated = round_person_count.participated + excluded.participated, "
    "agree = round_person_count.agree + excluded.agree, potential = round_person_count.potential + excluded.potential"
)
# SQLite and the ORM paths: the deltas from current_ballot, after its upsert.
_DELTAS = (f"(SELECT e.person_unit_id AS pu, {_DV} AS dv, {_DA} AS da FROM current_ballot c "
           "JOIN roll_entry e ON e.round_id = c.round_id AND e.unit_id = c.unit_id "
           "WHERE c.round_id = :round_id AND c.unit_id = :unit_id AND e.person_unit_id IS NOT NULL) d")
TOTALS_SQL = _ADD_TOTALS.format(moves=(
    f"SELECT {_moves('p.voted + d.dv', 'p.voted', 'p.agreeing + d.da', 'p.agreeing', 'p.units')} "
    f"FROM {_DELTAS} JOIN round_person p ON p.round_id = :round_id AND p.person_unit_id = d.pu "
    "WHERE d.dv <> 0 OR d.da <> 0"))
PERSON_SQL = (f"UPDATE round_person SET voted = voted + d.dv, agreeing = agreeing + d.da FROM {_DELTAS} "
              "WHERE round_person.round_id = :round_id AND round_person.person_unit_id = d.pu "
              "AND (d.dv <> 0 OR d.da <> 0)")
# PostgreSQL's one-statement cast: `c` is the upsert's RETURNING (choice, previous_choice).
PG_PERSON_CTE = (
    f"pd AS (SELECT e.person_unit_id AS pu, {_DV} AS dv, {_DA} AS da FROM c "
    "JOIN roll_entry e ON e.round_id = :round_id AND e.unit_id = :unit_id WHERE e.person_unit_id IS NOT NULL), "
    "q AS (UPDATE round_person p SET voted = p.voted + pd.dv, agreeing = p.agreeing + pd.da FROM pd "
    "WHERE p.round_id = :round_id AND p.person_unit_id = pd.pu AND (pd.dv <> 0 OR pd.da <> 0) "
    "RETURNING p.units, p.voted, p.agreeing, pd.dv, pd.da), "
    "t AS ({})".format(_ADD_TOTALS.format(moves=(
        f"SELECT {_moves('q.voted', 'q.voted - q.dv', 'q.agreeing', 'q.agreeing - q.da', 'q.units')} FROM q")))
)

# PostgreSQL's ORM paths: the same statement over the unit's current_ballot row (this transaction's upsert), so
# the person's row is locked before its old state is read (two statements would read it unlocked, and two casts
# of one person's units could both count the same transition).
PG_MOVE_PERSON = ("WITH c AS (SELECT choice, previous_choice FROM current_ballot "
                  f"WHERE round_id = :round_id AND unit_id = :unit_id), {PG_PERSON_CTE} SELECT 1")

_TOTALS_TEXT, _PERSON_TEXT, _PG_MOVE_TEXT = sa.text(TOTALS_SQL), sa.text(PERSON_SQL), sa.text(PG_MOVE_PERSON)


def move_person(round_id: int, unit_id: int, slot: int) -> None:
    """After an upsert of the unit's current_ballot in this transaction (ORM paths: paper, proxy, conflicts).
    Nothing moves in a household-counted round (its roll has no person_unit_id)."""
    conn = db.session.connection()
    params = {"round_id": round_id, "unit_id": unit_id, "slot": slot}
    if conn.dialect.name == "postgresql":
        conn.execute(_PG_MOVE_TEXT, params)
        return
    conn.execute(_TOTALS_TEXT, params)  # SQLite: the transaction holds the only write lock
    conn.execute(_PERSON_TEXT, params)


def person_unit_ids(units: list[tuple[int, list[int]]]) -> dict[int, int]:
    """{unit id: its person's unit id} for the (unit id, owner ids) of a roll (core.thresholds.persons)."""
    groups = th.persons([th.RollEntry(u, 0, 0, tuple(o or ())) for u, o in units])
    return {e.unit_id: min(x.unit_id for x in g) for g in groups for e in g}


def write_roll_persons(round_id: int) -> None:
    """The persons of a frozen roll (person_unit_id already set) and the round's totals (nobody voted yet: every
    person could still agree), in the transaction that froze it."""
    db.session.execute(sa.insert(RoundPerson).from_select(
        ["round_id", "person_unit_id", "units", "voted", "agreeing"],
        sa.select(RollEntry.round_id, RollEntry.person_unit_id, sa.func.count(), sa.literal(0), sa.literal(0))
        .where(RollEntry.round_id == round_id, RollEntry.person_unit_id.is_not(None))
        .group_by(RollEntry.round_id, RollEntry.person_unit_id)))
    persons = sa.select(sa.func.count()).select_from(RoundPerson).where(RoundPerson.round_id == round_id)
    db.session.execute(sa.insert(RoundPersonCount).from_select(
        ["round_id", "slot", "persons", "participated", "agree", "potential"],
        sa.select(sa.literal(round_id), sa.literal(0), persons.scalar_subquery(), sa.literal(0), sa.literal(0),
                  persons.scalar_subquery())))


@dataclass(frozen=True)
class Totals:
    persons: int = 0
    participated: int = 0
    agree: int = 0
    potential: int = 0


def stored_totals(round_ids: list[int]) -> dict[int, Totals]:
    """The person totals of these rounds (summed over slots), in one query."""
    out = {r: Totals() for r in round_ids}
    if not round_ids:
        return out
    s = sa.func.sum
    for r, n, v, a, p in db.session.execute(
            sa.select(RoundPersonCount.round_id, s(RoundPersonCount.persons), s(RoundPersonCount.participated),
                      s(RoundPersonCount.agree), s(RoundPersonCount.potential))
            .where(RoundPersonCount.round_id.in_(round_ids)).group_by(RoundPersonCount.round_id)):
        out[r] = Totals(int(n or 0), int(v or 0), int(a or 0), int(p or 0))
    return out


# ---- the check and the rebuild (counters.problems_by_round / rebuild_counters) ------------------------------

@dataclass
class Live:
    """What a person-counted round's counters should hold, from the roll's owner sets and current_ballot."""

    keys: dict[int, int]                      # unit id -> person unit id (what roll_entry should hold)
    wrong_keys: dict[int, int | None]         # unit id -> the person unit id stored, where it differs
    persons: dict[int, tuple[int, int, int]]  # person unit id -> (units, voted, agreeing)
    totals: Totals
    labels: dict[int, str]                    # unit id -> its roll label (for the messages)


def live_persons(round_ids: list[int]) -> dict[int, Live]:
    """Per round: the persons as core.thresholds.persons groups the roll (one light row per unit)."""
    rows: dict[int, list] = {r: [] for r in round_ids}
    for start in range(0, len(round_ids), 500):
        for row in db.session.execute(
                sa.select(RollEntry.round_id, RollEntry.unit_id, RollEntry.owner_ids, RollEntry.person_unit_id,
                          CurrentBallot.choice, RollEntry.label)
                .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                                  CurrentBallot.unit_id == RollEntry.unit_id))
                .where(RollEntry.round_id.in_(round_ids[start:start + 500]))):
            rows[row[0]].append(row)
    out = {}
    for r, units in rows.items():
        keys = person_unit_ids([(u, o) for _, u, o, _, _, _ in units])
        persons: dict[int, list[int]] = {}
        for _, u, _, _, choice, _ in units:
            acc = persons.setdefault(keys[u], [0, 0, 0])
            acc[0] += 1
            acc[1] += choice is not None
            acc[2] += choice == th.AGREE
        totals = Totals(len(persons), sum(1 for _, v, _ in persons.values() if v > 0),
                        sum(1 for n, _, a in persons.values() if a == n),
                        sum(1 for _, v, a in persons.values() if v == a))
        out[r] = Live(keys, {u: k for _, u, _, k, _, _ in units if k != keys[u]},
                      {k: tuple(v) for k, v in persons.items()}, totals,
                      {u: label for _, u, _, _, _, label in units})
    return out


def stored_persons(round_ids: list[int]) -> dict[int, dict[int, tuple[int, int, int]]]:
    out: dict[int, dict[int, tuple[int, int, int]]] = {r: {} for r in round_ids}
    for r, k, n, v, a in db.session.execute(
            sa.select(RoundPerson.round_id, RoundPerson.person_unit_id, RoundPerson.units, RoundPerson.voted,
                      RoundPerson.agreeing).where(RoundPerson.round_id.in_(round_ids))):
        out[r][k] = (n, v, a)
    return out


_TOTAL_LABELS = (("persons", "总人数"), ("participated", "参与人数"), ("agree", "同意人数"),
                 ("potential", "未投票者全部同意时的同意人数"))


def differences(rnd: Round, live: Live, stored: dict[int, tuple[int, int, int]], totals: Totals) -> list[Problem]:
    """The person counters of one round against the recount (messages name units by their roll labels)."""
    subject = f"表决 #{rnd.id}「{rnd.title}」"

    def problem(code: str, message: str) -> Problem:
        return Problem(chain=rnd.estate_id, subject=subject, code=code, message=message)

    labels = live.labels
    out = []
    for unit_id, have in sorted(live.wrong_keys.items()):
        out.append(problem("person_key_mismatch",
                           f"房屋 {labels.get(unit_id, f'#{unit_id}')} 的计人归属为 {have}，"
                           f"按名册的业主应为 {live.keys[unit_id]}"))
    for key in sorted(set(live.persons) | set(stored)):
        want, have = live.persons.get(key, (0, 0, 0)), stored.get(key, (0, 0, 0))
        if want != have:
            out.append(problem("round_person_mismatch",
                               f"业主（房屋 {labels.get(key, f'#{key}')} 等）：计数器为 {have[0]} 套、"
                               f"{have[1]} 套已投、{have[2]} 套同意，按选票重新计数为 {want[0]} 套、"
                               f"{want[1]} 套已投、{want[2]} 套同意"))
    for field, label in _TOTAL_LABELS:
        want, have = getattr(live.totals, field), getattr(totals, field)
        if want != have:
            out.append(problem("round_person_count_mismatch",
                               f"{label}：计数器为 {have}，按选票重新计数为 {want}"))
    return out


def rebuild(round_ids: list[int], live: dict[int, Live]) -> None:
    """Replace the person keys, rows and totals of these person-counted rounds by the recount."""
    if not round_ids:
        return
    fixes = [{"r": r, "u": u, "k": live[r].keys[u]} for r in round_ids for u in live[r].wrong_keys]
    if fixes:
        db.session.connection().execute(sa.text(
            "UPDATE roll_entry SET person_unit_id = :k WHERE round_id = :r AND unit_id = :u"), fixes)
    db.session.execute(sa.delete(RoundPerson).where(RoundPerson.round_id.in_(round_ids)))
    db.session.execute(sa.delete(RoundPersonCount).where(RoundPersonCount.round_id.in_(round_ids)))
    rows = [{"round_id": r, "person_unit_id": k, "units": n, "voted": v, "agreeing": a}
            for r in round_ids for k, (n, v, a) in live[r].persons.items()]
    if rows:
        db.session.execute(sa.insert(RoundPerson), rows)
    db.session.execute(sa.insert(RoundPersonCount), [
        {"round_id": r, "slot": 0, "persons": t.persons, "participated": t.participated, "agree": t.agree,
         "potential": t.potential} for r in round_ids for t in [live[r].totals]])
