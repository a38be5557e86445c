"""Stored counters of a round (round_count): per building and choice, the units and their area in hundredths.

The tally, the dashboards and the district view read these few rows instead of aggregating the roll and the
ballots. They move in the cast's own transaction:

- the frozen roll writes its totals (choice '') when the round opens (`write_roll_totals`);
- every upsert of current_ballot records the choice it replaced (`previous_choice`), and the counter statement
  moves the unit from that choice to the new one: MOVE_SQL after the upsert (SQLite paths, paper and proxy
  confirmations, conflicts won), or the `k` part of the PostgreSQL cast's one statement (castpath.PG_MOVE_CTE).
  Both lock the counter rows in choice order, so two casts of one building never wait for each other in a cycle.

Person-counted rounds also keep person counters (rounds/person_counters.py), moved by the same paths.

`flask rounds recount` (rounds/cli.py) recomputes them from current_ballot and the roll and reports or rebuilds
any difference; the same check runs in `flask audit verify` (registered below).
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from residents_app.audit.verify import Problem, register_check
from residents_app.extensions import db
from residents_app.registry.models import Building
from residents_app.rounds import person_counters
from residents_app.rounds.models import CurrentBallot, RollEntry, Round, RoundCount

ROLL = ""  # the choice under which the frozen roll's own totals are stored
SLOTS = 16  # counter rows per building and choice (RoundCount.slot = unit id mod SLOTS)

# The unit leaves its previous choice (-1) and joins its new one (+1): one row per choice, none when both are the
# same. `{source}` yields the unit's current_ballot row (choice, previous_choice) as `c`.
_MOVE = (
    "INSERT INTO round_count (round_id, building_id, choice, slot, units, area_m2) "
    "SELECT e.round_id, e.building_id, "
    "CASE WHEN d.n = 1 THEN c.choice ELSE c.previous_choice END AS moved, :slot, SUM(d.n), SUM(d.n) * e.area_m2 "
    "FROM {source} "
    "JOIN roll_entry e ON e.round_id = :round_id AND e.unit_id = :unit_id "
    "CROSS JOIN (SELECT 1 AS n UNION ALL SELECT -1) d "
    "WHERE (CASE WHEN d.n = 1 THEN c.choice ELSE c.previous_choice END) IS NOT NULL{where} "
    "GROUP BY e.round_id, e.building_id, e.area_m2, moved HAVING SUM(d.n) <> 0 ORDER BY moved "
    "ON CONFLICT (round_id, building_id, choice, slot) DO UPDATE SET units = round_count.units + excluded.units, "
    "area_m2 = round_count.area_m2 + excluded.area_m2"
)
MOVE_SQL = _MOVE.format(source="current_ballot c",
                        where=" AND c.round_id = :round_id AND c.unit_id = :unit_id")
# PostgreSQL's one-statement cast: `c` is the upsert's RETURNING (choice, previous_choice).
PG_MOVE_CTE = f"k AS ({_MOVE.format(source='c', where='')})"

_MOVE_TEXT = sa.text(MOVE_SQL)


def move_unit(round_id: int, unit_id: int, *, persons: bool) -> None:
    """After an upsert of the unit's current_ballot in this transaction (ORM paths: paper, proxy, conflicts).
    `persons`: a person-counted round, whose person counters move too; a household-counted round's roll has no
    person key, so its person statement would change nothing (it is not run)."""
    db.session.connection().execute(_MOVE_TEXT, {"round_id": round_id, "unit_id": unit_id,
                                                 "slot": slot_of(unit_id)})
    if persons:
        person_counters.move_person(round_id, unit_id, slot_of(unit_id))


def slot_of(unit_id: int) -> int:
    return unit_id % SLOTS


def write_roll_totals(round_id: int, persons: bool = False) -> None:
    """The frozen roll's totals per building (choice ''), in the transaction that froze it; `persons`: a
    person-counted round (roll_entry.person_unit_id set), whose persons and person totals are written too."""
    db.session.flush()
    if persons:
        person_counters.write_roll_persons(round_id)
    db.session.execute(sa.insert(RoundCount).from_select(
        ["round_id", "building_id", "choice", "slot", "units", "area_m2"],
        sa.select(RollEntry.round_id, RollEntry.building_id, sa.literal(ROLL), sa.literal(0), sa.func.count(),
                  sa.func.sum(sa.type_coerce(RollEntry.area_m2, sa.BigInteger)))
        .where(RollEntry.round_id == round_id).group_by(RollEntry.round_id, RollEntry.building_id)))


# (building_id, choice) -> (units, area in hundredths); choice '' is the roll.
Counts = dict[tuple[int, str], tuple[int, int]]


def stored_counts(round_id: int) -> Counts:
    return _all_stored([round_id])[round_id]


def stored_counts_of(round_ids: list[int]) -> dict[int, Counts]:
    """stored_counts of several rounds, in one query."""
    return _all_stored(round_ids)


def live_counts(round_ids: list[int]) -> dict[int, Counts]:
    """What the counters should hold, from the roll and current_ballot (two GROUP BY queries)."""
    area = sa.func.sum(sa.type_coerce(RollEntry.area_m2, sa.BigInteger))
    out: dict[int, Counts] = {r: {} for r in round_ids}
    for r, b, n, a in db.session.execute(
            sa.select(RollEntry.round_id, RollEntry.building_id, sa.func.count(), area)
            .where(RollEntry.round_id.in_(round_ids)).group_by(RollEntry.round_id, RollEntry.building_id)):
        out[r][(b, ROLL)] = (int(n), int(a or 0))
    for r, b, c, n, a in db.session.execute(
            sa.select(RollEntry.round_id, RollEntry.building_id, CurrentBallot.choice, sa.func.count(), area)
            .join(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                         CurrentBallot.unit_id == RollEntry.unit_id))
            .where(RollEntry.round_id.in_(round_ids))
            .group_by(RollEntry.round_id, RollEntry.building_id, CurrentBallot.choice)):
        out[r][(b, c)] = (int(n), int(a or 0))
    return out


def stored_select(of_rounds, *first) -> sa.Select:
    """The counters of the rounds `of_rounds` selects (a condition on RoundCount.round_id), summed over the slots:
    (*first, round, building, choice, units, area in hundredths) rows."""
    return (sa.select(*first, RoundCount.round_id, RoundCount.building_id, RoundCount.choice,
                      sa.func.sum(RoundCount.units), sa.func.sum(sa.type_coerce(RoundCount.area_m2, sa.BigInteger)))
            .where(of_rounds).group_by(RoundCount.round_id, RoundCount.building_id, RoundCount.choice))


def add_stored(out: dict[int, Counts], round_id: int, building_id: int, choice: str, units, area) -> None:
    """One row of stored_select into {round: Counts} (a choice every unit has left holds zeros: no count)."""
    if units or area:
        out.setdefault(round_id, {})[(building_id, choice)] = (int(units), int(area or 0))


@functools.cache
def _stored_query():
    """Built once (every round page and dashboard reads the counters; building the statement cost more than
    running it)."""
    return stored_select(RoundCount.round_id.in_(sa.bindparam("round_ids", expanding=True)))


def _all_stored(round_ids: list[int]) -> dict[int, Counts]:
    out: dict[int, Counts] = {r: {} for r in round_ids}
    for row in db.session.execute(_stored_query(), {"round_ids": list(round_ids)}).all():
        add_stored(out, *row)
    return out


def _area(hundredths: int) -> str:
    sign = "-" if hundredths < 0 else ""
    return f"{sign}{abs(hundredths) // 100}.{abs(hundredths) % 100:02d}"


def _rounds(estate_ids: list[int] | None, round_ids: list[int] | None) -> list[Round]:
    q = sa.select(Round).where(Round.status != "draft").order_by(Round.estate_id, Round.id)
    if estate_ids is not None:
        q = q.where(Round.estate_id.in_(estate_ids))
    if round_ids is not None:
        q = q.where(Round.id.in_(round_ids))
    return list(db.session.execute(q).scalars())


def check_counters(estate_ids: list[int] | None = None, round_ids: list[int] | None = None) -> list[Problem]:
    """Every opened round's counters against a recount from current_ballot and the roll."""
    return [p for found in problems_by_round(estate_ids, round_ids).values() for p in found]


def problems_by_round(estate_ids: list[int] | None = None,
                      round_ids: list[int] | None = None) -> dict[int, list[Problem]]:
    """{round id: its counters' differences from a recount}, only rounds with some, in round order."""
    rounds = _rounds(estate_ids, round_ids)
    problems: dict[int, list[Problem]] = {}
    for start in range(0, len(rounds), 500):
        batch = rounds[start:start + 500]
        ids = [r.id for r in batch]
        live, stored = live_counts(ids), _all_stored(ids)
        names = dict(db.session.execute(
            sa.select(Building.id, Building.name).where(Building.estate_id.in_({r.estate_id for r in batch}))).all())
        person_ids = [r.id for r in batch if r.counting_mode == "person"]
        live_p = person_counters.live_persons(person_ids)
        stored_p, totals_p = person_counters.stored_persons(person_ids), person_counters.stored_totals(person_ids)
        for rnd in batch:
            found = _differences(rnd, live[rnd.id], stored[rnd.id], names)
            if rnd.id in live_p:
                found += person_counters.differences(rnd, live_p[rnd.id], stored_p[rnd.id], totals_p[rnd.id])
            if found:
                problems[rnd.id] = found
    return problems


def _differences(rnd: Round, live: Counts, stored: Counts, names: dict[int, str]) -> list[Problem]:
    out = []
    labels = rnd.option_labels
    for key in sorted(set(live) | set(stored), key=lambda k: (k[0], k[1])):
        want, have = live.get(key, (0, 0)), stored.get(key, (0, 0))
        if want == have:
            continue
        building_id, choice = key
        what = "名册" if choice == ROLL else f"“{labels.get(choice, choice)}”"
        out.append(Problem(
            chain=rnd.estate_id, subject=f"表决 #{rnd.id}「{rnd.title}」", code="round_count_mismatch",
            message=f"{names.get(building_id, f'楼栋 #{building_id}')} {what}："
                    f"计数器为 {have[0]} 户、{_area(have[1])} ㎡，"
                    f"按选票重新计数为 {want[0]} 户、{_area(want[1])} ㎡"))
    return out


def rebuild_counters(round_ids: list[int]) -> int:
    """Replace the counters of these rounds by a recount; returns the number of rounds rebuilt."""
    if not round_ids:
        return 0
    live = live_counts(round_ids)
    db.session.execute(sa.delete(RoundCount).where(RoundCount.round_id.in_(round_ids)))
    rows = [{"round_id": r, "building_id": b, "choice": c, "units": n, "area": a}
            for r, counts in live.items() for (b, c), (n, a) in counts.items()]
    if rows:
        db.session.connection().execute(sa.text(
            "INSERT INTO round_count (round_id, building_id, choice, slot, units, area_m2) "
            "VALUES (:round_id, :building_id, :choice, 0, :units, :area)"), rows)
    person_ids = list(db.session.execute(
        sa.select(Round.id).where(Round.id.in_(round_ids), Round.counting_mode == "person")).scalars())
    person_counters.rebuild(person_ids, person_counters.live_persons(person_ids))
    return len(round_ids)


@register_check
def counters_checked(estate_ids: list[int] | None) -> list[Problem]:
    return check_counters(estate_ids)
