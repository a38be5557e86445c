"""Closing many due rounds at once (the scheduler's tick at district or city size, issue 19).

`CloseBatch(round_ids)` reads what does not change while a round closes (the rounds' building names) in one
query for the whole batch; `close(round_id, now, actor)` then closes one round in the caller's transaction, the
scheduler committing (or rolling back) each round on its own, so one failing round neither undoes nor blocks the
others, and a round that failed stays open and due for the next tick.

Each round, like services.close_round: its row locked FOR UPDATE (a cast holds FOR KEY SHARE, so the casts in
flight finish first and later ones find it closed), status re-checked (closing twice changes nothing), then the
result computed after the lock was granted. A household-counted yes/no round reads its result from the stored
counters and its agreeing units in ONE statement (the counters and the units are the same figures the
per-round path aggregates); a person-counted round, a choice or a survey takes services.close_round's path.
Then the result row and the `round.closed` chain entry (services.store_result).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.registry.models import Building
from residents_app.rounds import counters, services, tally
from residents_app.rounds.common import lock_round, natural_key
from residents_app.rounds.models import Round

BATCH = 200  # rounds whose building names are read together

# The round's counters (k = 0: building, choice, units, area) and its agreeing units (k = 1: building name,
# unit number, label), read in one statement after the round's row lock was granted.
_COUNTS_AND_AGREEING = sa.text(
    "SELECT 0 AS k, building_id, choice AS t1, CAST(NULL AS VARCHAR) AS t2, CAST(NULL AS VARCHAR) AS t3, "
    "SUM(units) AS n, SUM(area_m2) AS a FROM round_count WHERE round_id = :round_id "
    "GROUP BY building_id, choice "
    "UNION ALL "
    "SELECT 1, e.building_id, e.building_name, e.unit_number, e.label, 0, 0 FROM roll_entry e "
    "JOIN current_ballot c ON c.round_id = e.round_id AND c.unit_id = e.unit_id "
    "WHERE e.round_id = :round_id AND c.choice = 'agree'"
)


def from_counters(rnd: Round) -> bool:
    """Whether the close reads the stored counters (household yes/no rounds) or takes the per-round path."""
    return rnd.counting_mode == "household" and not rnd.is_survey and not rnd.is_choice


class CloseBatch:
    """Rounds about to be closed by one tick, each in its own transaction (the caller's)."""

    def __init__(self, round_ids: list[int]):
        self.names: dict[int, str] = {}
        self._loaded: set[int] = set()
        self._pending = list(round_ids)

    def _load(self, round_id: int) -> None:
        """Building names of the next BATCH rounds (from this one on), one query."""
        if round_id in self._loaded:
            return
        start = self._pending.index(round_id) if round_id in self._pending else 0
        ids = self._pending[start:start + BATCH] or [round_id]
        estates = sa.select(Round.estate_id).where(Round.id.in_(ids)).scalar_subquery()
        self.names.update(db.session.execute(
            sa.select(Building.id, Building.name).where(Building.estate_id.in_(estates))).all())
        self._loaded.update(ids)

    def close(self, round_id: int, now: datetime, actor=None) -> bool:
        """services.close_round's effect for one round of the batch (no commit: the caller commits)."""
        self._load(round_id)
        rnd = lock_round(round_id)
        if rnd is None:
            raise NotFound("找不到该表决")
        if rnd.status != "open" or now < rnd.closes_at:
            return False
        if not from_counters(rnd):
            return services.close_round(round_id, now, actor)
        stored: counters.Counts = {}
        agreeing = []
        for k, building_id, t1, t2, t3, n, a in db.session.execute(_COUNTS_AND_AGREEING, {"round_id": rnd.id}):
            if k == 0:
                if n or a:
                    stored[(building_id, t1)] = (int(n), int(a or 0))
            else:
                agreeing.append((natural_key(t1), natural_key(t2), t3))
        agreeing.sort()
        rnd.mark_closed(now)
        t = tally.name_buildings(tally.household_tally(rnd, stored), self.names)
        services.store_result(rnd, t, [label for _, _, label in agreeing], now, actor)
        return True
