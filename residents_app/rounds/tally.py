"""The tally of a round: live (SQL aggregate over the current ballots) and the lists derived from it."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.registry.models import Building, Ownership, Unit
from residents_app.rounds import counters, person_counters
from residents_app.rounds.common import (
    get_round,
    natural_key,
)
from residents_app.rounds.models import (
    Ballot,
    CurrentBallot,
    RollEntry,
    Round,
)

# ---- tally -----------------------------------------------------------------------------------

def _register_entries(rnd: Round) -> list[th.RollEntry]:
    """Before opening there is no frozen roll: preview over the live register."""
    q = sa.select(Unit.id, Unit.building_id, Unit.title_area_m2).where(Unit.estate_id == rnd.estate_id)
    if rnd.scope_building_ids:
        q = q.where(Unit.building_id.in_(rnd.scope_building_ids))
    owners: dict[int, list[int]] = {}
    for unit_id, owner_id in db.session.execute(
            sa.select(Ownership.unit_id, Ownership.owner_id).join(Unit, Unit.id == Ownership.unit_id)
            .where(Unit.estate_id == rnd.estate_id)):
        owners.setdefault(unit_id, []).append(owner_id)
    return [th.RollEntry(u, b, a, tuple(owners.get(u, ()))) for u, b, a in db.session.execute(q)]


def compute_tally(round_id: int, now: datetime | None = None, *, named: bool = True) -> th.Tally:
    """The live tally of a round, from the frozen roll and the counted ballots.

    Both modes read the stored counters (rounds/counters.py: units and hundredths per building and choice); person
    mode also the round's person totals (rounds/person_counters.py): a few rows, whatever the size of the roll.
    named=False: for a page that does not show the buildings' rows (their names are not read; the rows are named
    by their building ids).
    """
    rnd = get_round(round_id)
    if rnd.status == "draft":
        entries = _register_entries(rnd)
        return th.tally(entries, {}, rnd.rule_preset, rnd.counting_mode)
    return compute_tallies([rnd], now, names=None if named else {})[rnd.id]


def tally_of_round(rnd: Round, names: dict[int, str], stored: counters.Counts | None = None) -> th.Tally:
    """compute_tally of a round already loaded, with its estate's building names {id: name} already read (the round
    page reads the round, its estate and the names in one query): a household-counted round reads only its
    counters (unless given: `stored`, read with the latest ballots); a draft or a person-counted round is
    compute_tally's."""
    if rnd.status == "draft" or rnd.counting_mode != "household":
        return compute_tally(rnd.id)
    return name_buildings(household_tally(rnd, counters.stored_counts(rnd.id) if stored is None else stored), names)


def compute_tallies(rounds: list[Round], now: datetime | None = None, *, names: dict[int, str] | None = None,
                    stored: dict[int, counters.Counts] | None = None) -> dict[int, th.Tally]:
    """compute_tally of several rounds: the opened ones from one read of their counters (unless the caller has
    them: `stored`, {round: Counts}), one of their person totals and one of their buildings' names unless the
    caller has them (`names`, {building id: name} of their estates): a dashboard's rounds in a fixed number of
    queries; drafts one by one (a preview over the register)."""
    batch = [r for r in rounds if r.status != "draft"]
    out: dict[int, th.Tally] = {}
    if batch:
        if names is None:
            names = dict(db.session.execute(sa.select(Building.id, Building.name)
                                            .where(Building.estate_id.in_({r.estate_id for r in batch}))).all())
        if stored is None:
            stored = counters.stored_counts_of([r.id for r in batch])
        persons = person_counters.stored_totals([r.id for r in batch if r.counting_mode == "person"])
        for r in batch:
            counts = stored.get(r.id, {})
            t = person_tally(r, counts, persons[r.id]) if r.id in persons else household_tally(r, counts)
            out[r.id] = name_buildings(t, names)
    for r in rounds:
        if r.id not in out:
            out[r.id] = compute_tally(r.id, now)
    return out


def household_tally(rnd: Round, stored: counters.Counts) -> th.Tally:
    """The tally of a round from its stored counters (rounds/counters.py): a few rows per building, whatever the
    size of the roll. Building names are added by the caller."""
    return _stored_tally(rnd, stored, None)


def person_tally(rnd: Round, stored: counters.Counts, persons: person_counters.Totals) -> th.Tally:
    """A person-counted round from its stored counters and its stored person totals (rounds/person_counters.py):
    persons where household_tally counts units; areas and the buildings' rows are per unit in both
    (core.thresholds.figures_for, building_breakdown)."""
    return _stored_tally(rnd, stored, persons)


def _stored_tally(rnd: Round, stored: counters.Counts, persons: person_counters.Totals | None) -> th.Tally:
    # Rows as the aggregate over the roll gave them: (building, choice or None for no ballot, units, area).
    not_voted = {b: v for (b, c), v in stored.items() if c == counters.ROLL}
    rows = []
    for (b, c), (n, a) in stored.items():
        if c != counters.ROLL:
            rows.append((b, c, n, a))
            left = not_voted.get(b, (0, 0))
            not_voted[b] = (left[0] - n, left[1] - a)
    rows.extend((b, None, n, a) for b, (n, a) in not_voted.items() if n or a)
    per_building: dict[int, dict] = {}
    tc = ta = vc = va = ac = aa = 0
    for building_id, choice, count, area in rows:
        area = int(area or 0)
        row = per_building.setdefault(building_id, {"building_id": building_id, "total_count": 0,
                                                    "total_area": 0, "voted_count": 0, "voted_area": 0,
                                                    "agree_count": 0, "agree_area": 0})
        row["total_count"] += count
        row["total_area"] += area
        tc += count
        ta += area
        if choice is not None:
            row["voted_count"] += count
            row["voted_area"] += area
            vc += count
            va += area
            if choice == th.AGREE:
                row["agree_count"] += count
                row["agree_area"] += area
                ac += count
                aa += area
    figures = th.Figures(tc, ta, vc, va, ac, aa, ac + (tc - vc), aa + (ta - va))
    if persons is not None:
        figures = th.Figures(persons.persons, ta, persons.participated, va, persons.agree, aa, persons.potential,
                             aa + (ta - va))
    buildings = [th.finish_building_row(per_building[k]) for k in sorted(per_building)]
    return th.evaluate(rnd.rule_preset, rnd.counting_mode, figures, buildings)


def name_buildings(t: th.Tally, names: dict[int, str]) -> th.Tally:
    for row in t.buildings:
        row["building_name"] = names.get(row["building_id"], str(row["building_id"]))
    t.buildings.sort(key=lambda r: natural_key(r["building_name"]))
    return t


def non_voters_by_building(round_id: int) -> dict[str, list[str]]:
    """Units of the frozen roll without a counted ballot, by building (for door-to-door visits)."""
    rows = db.session.execute(
        sa.select(RollEntry.building_name, RollEntry.unit_number)
        .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                          CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id, CurrentBallot.unit_id.is_(None))).all()
    rows.sort(key=lambda r: (natural_key(r[0]), natural_key(r[1])))
    out: dict[str, list[str]] = {}
    for building, number in rows:
        out.setdefault(building, []).append(number)
    return out


_ROLL_ROWS = []


def _roll_rows_query():
    """Built once (building it costs more than running it)."""
    if not _ROLL_ROWS:
        _ROLL_ROWS.append(
            sa.select(RollEntry.unit_id, RollEntry.building_name, RollEntry.unit_number, RollEntry.label,
                      RollEntry.owner_ids, RollEntry.owner_names, CurrentBallot.unit_id.is_not(None).label("voted"))
            .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                              CurrentBallot.unit_id == RollEntry.unit_id))
            .where(RollEntry.round_id == sa.bindparam("p_round_id")))
    return _ROLL_ROWS[0]


def roll_rows(round_id: int) -> list:
    """The frozen roll as light rows (unit_id, building_name, unit_number, label, owner_ids, owner_names, voted),
    in the order of roll_entries; `voted`: the unit has a counted ballot."""
    rows = db.session.execute(_roll_rows_query(), {"p_round_id": round_id}).all()
    rows.sort(key=lambda r: (natural_key(r.building_name), natural_key(r.unit_number)))
    return rows


def roll_entries(round_id: int) -> list[RollEntry]:
    entries = list(db.session.execute(sa.select(RollEntry).where(RollEntry.round_id == round_id)).scalars())
    entries.sort(key=lambda e: (natural_key(e.building_name), natural_key(e.unit_number)))
    return entries


# ---- 改什么: the menu items chosen by the agreeing units ------------------------------------------

def item_tally(round_id: int) -> dict:
    """Each menu item of a willingness round with the number and area of the agreeing units that chose it,
    overall and per building (the units' counted ballots; a unit that does not agree chose no item).

    {"agree_count", "agree_area", "items": [{"key", "label", "category", "count", "area"}],
     "buildings": [{"building_id", "building_name", "agree_count", "agree_area", "items": [{"key", "count",
     "area"}]}]}; areas as "0.00" strings, summed exactly in hundredths.
    """
    rnd = get_round(round_id)
    menu = [i["key"] for i in rnd.item_menu or []]
    buildings = {b: {"building_id": b, "building_name": name, "agree_count": 0, "agree_area": 0,
                     "items": {k: [0, 0] for k in menu}}
                 for b, name in db.session.execute(
                     sa.select(RollEntry.building_id, RollEntry.building_name).where(RollEntry.round_id == round_id)
                     .distinct()).all()}
    overall = {k: [0, 0] for k in menu}
    agree_count = agree_area = 0
    rows = db.session.execute(
        sa.select(RollEntry.building_id, RollEntry.area_m2, Ballot.items)
        .join(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                     CurrentBallot.unit_id == RollEntry.unit_id))
        .join(Ballot, Ballot.id == CurrentBallot.ballot_id)
        .where(RollEntry.round_id == round_id, CurrentBallot.choice == th.AGREE)).all()
    for building_id, area_m2, items in rows:
        area = th.to_hundredths(area_m2)
        b = buildings[building_id]
        b["agree_count"] += 1
        b["agree_area"] += area
        agree_count += 1
        agree_area += area
        for key in dict.fromkeys(items or []):
            if key in overall:
                for acc in (overall[key], b["items"][key]):
                    acc[0] += 1
                    acc[1] += area
    return {
        "agree_count": agree_count, "agree_area": th.area_str(agree_area),
        "items": [{"key": i["key"], "label": i["label"], "category": i.get("category", ""),
                   "count": overall[i["key"]][0], "area": th.area_str(overall[i["key"]][1])}
                  for i in rnd.item_menu or []],
        "buildings": [{"building_id": b["building_id"], "building_name": b["building_name"],
                       "agree_count": b["agree_count"], "agree_area": th.area_str(b["agree_area"]),
                       "items": [{"key": k, "count": b["items"][k][0], "area": th.area_str(b["items"][k][1])}
                                 for k in menu]}
                      for b in sorted(buildings.values(), key=lambda r: natural_key(r["building_name"]))],
    }
