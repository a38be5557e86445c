"""The voting head-count (表决人数) of the register: persons as 法释〔2009〕7号 art. 9 counts them.

One exclusive unit is one person; units with the identical owner set are one person (the same buyer);
co-owners of one unit are one person; chains of co-ownership do not merge. This is the denominator of a
round counted by persons over the same scope (core.thresholds.persons decides both), and differs from the
number of individuals (自然人: distinct owners).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from residents_app.core import thresholds as th
from residents_app.extensions import db
from residents_app.registry.models import Ownership, Unit


@dataclass(frozen=True)
class HeadCounts:
    total: int = 0
    by_building: dict[int, int] = field(default_factory=dict)
    by_kind: dict[str, int] = field(default_factory=dict)


def voting_head_counts(estate_id: int, building_ids=None) -> HeadCounts:
    """Persons over the estate (or the named buildings), per building and per unit kind."""
    scope = [Unit.estate_id == estate_id]
    if building_ids is not None:
        scope.append(Unit.building_id.in_(list(building_ids)))
    owners: dict[int, list[int]] = {}
    for unit_id, owner_id in db.session.execute(
            sa.select(Ownership.unit_id, Ownership.owner_id).join(Unit, Unit.id == Ownership.unit_id).where(*scope)):
        owners.setdefault(unit_id, []).append(owner_id)
    units = db.session.execute(sa.select(Unit.id, Unit.building_id, Unit.kind).where(*scope)).all()
    entries = {u.id: th.RollEntry(u.id, u.building_id, 0, tuple(owners.get(u.id, ()))) for u in units}

    def count(unit_ids) -> int:
        return len(th.persons(entries[i] for i in unit_ids))

    by_building: dict[int, list[int]] = {}
    by_kind: dict[str, list[int]] = {}
    for u in units:
        by_building.setdefault(u.building_id, []).append(u.id)
        by_kind.setdefault(u.kind, []).append(u.id)
    return HeadCounts(total=count(entries), by_building={b: count(ids) for b, ids in by_building.items()},
                      by_kind={k: count(ids) for k, ids in by_kind.items()})
