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

On PostgreSQL a household yes/no round takes two round trips to the server plus the commit (psycopg's pipeline
mode; statements still run one after the other, each with its own snapshot): [the round's row lock, its counters
and agreeing units, the chain's lock, the chain's head] then [the round closed, its result, its chain entry]. The
values written are those services.close_round writes (the tally computed by the same functions, the chain entry
by audit.chain.chain_entry as audit.services.record builds it); a chain with events still pending takes record()'s
path, which seals them first. STATS counts these statements (SQLAlchemy's events do not see them).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa

from residents_app.audit.chain import GENESIS, canonical_json, chain_entry
from residents_app.audit.services import CHAIN_LOCK_KEY
from residents_app.core import matters
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.registry.models import Building
from residents_app.rounds import counters, services, tally
from residents_app.rounds.common import actor_name, lock_round, natural_key
from residents_app.rounds.models import Round

STATS = {"statements": 0, "round_trips": 0}  # of the PostgreSQL pipelined path (tests, bench)

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


_ESTATE = "(SELECT estate_id FROM round WHERE id = %(id)s)"
_PG_READ = (
    "SELECT id, estate_id, kind, status, closes_at, counting_mode, rule_preset FROM round WHERE id = %(id)s "
    "FOR UPDATE",
    _COUNTS_AND_AGREEING.text.replace(":round_id", "%(id)s"),
    f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY}, {_ESTATE})",
    f"WITH h AS (SELECT seq, hash FROM audit_event WHERE chain = {_ESTATE} ORDER BY seq DESC LIMIT 1) "
    f"SELECT (SELECT seq FROM h), (SELECT hash FROM h), EXISTS (SELECT 1 FROM audit_pending WHERE chain = {_ESTATE})",
)
_PG_WRITE = (
    "UPDATE round SET status = 'closed', closed_at = %(now)s WHERE id = %(id)s",
    "INSERT INTO round_result (round_id, passed, tally, agreeing_unit_labels, closed_at) "
    "VALUES (%(id)s, %(passed)s, CAST(%(tally)s AS JSON), CAST(%(labels)s AS JSON), %(now)s)",
    "INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash) "
    "VALUES (%(chain)s, %(seq)s, %(kind)s, %(at)s, %(actor)s, %(subject_type)s, %(subject_id)s, "
    "CAST(%(data)s AS JSON), %(prev_hash)s, %(hash)s)",
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
        if round_id in self._pending:
            start = self._pending.index(round_id)
            ids = self._pending[start:start + BATCH]
        else:
            ids = [round_id]
        estates = sa.select(Round.estate_id).where(Round.id.in_(ids)).scalar_subquery()
        self.names.update(db.session.execute(
            sa.select(Building.id, Building.name).where(Building.estate_id.in_(estates))).all())
        self._loaded.update(ids)

    def close(self, round_id: int, now: datetime, actor=None) -> bool:
        """services.close_round's effect for one round of the batch (no commit: the caller commits)."""
        self._load(round_id)
        if db.engine.dialect.name == "postgresql":
            return self._close_pg(round_id, now, actor)
        rnd = lock_round(round_id)
        if rnd is None:
            raise NotFound("找不到该表决")
        if rnd.status != "open" or now < rnd.closes_at:
            return False
        if not from_counters(rnd):
            return services.close_round(round_id, now, actor)
        stored, labels = _counts_and_agreeing(db.session.execute(_COUNTS_AND_AGREEING, {"round_id": rnd.id}))
        rnd.mark_closed(now)
        t = tally.name_buildings(tally.household_tally(rnd, stored), self.names)
        services.store_result(rnd, t, labels, now, actor)
        return True

    def _close_pg(self, round_id: int, now: datetime, actor) -> bool:
        db.session.flush()
        conn = db.session.connection().connection.dbapi_connection
        params = {"id": round_id}
        with conn.pipeline():
            cursors = [conn.cursor() for _ in _PG_READ]
            for cur, sql in zip(cursors, _PG_READ, strict=True):
                cur.execute(sql, params)  # queued: sent together, run one after the other
            results = [cur.fetchall() for cur in cursors]
        STATS["statements"] += len(_PG_READ)
        STATS["round_trips"] += 1
        found, rows, _, ((head_seq, head_hash, pending),) = results
        if not found:
            raise NotFound("找不到该表决")
        _, estate_id, kind, status, closes_at, counting_mode, rule_preset = found[0]
        if status != "open" or now < closes_at:
            return False
        rnd = SimpleNamespace(id=round_id, estate_id=estate_id, kind=kind, counting_mode=counting_mode,
                              rule_preset=rule_preset, is_survey=matters.is_survey(kind),
                              is_choice=matters.is_choice(kind))
        if pending or not from_counters(rnd):
            return services.close_round(round_id, now, actor)  # the locks are this transaction's already
        stored, labels = _counts_and_agreeing(rows)
        t = tally.name_buildings(tally.household_tally(rnd, stored), self.names)
        result = t.to_dict()
        data = {"passed": t.passed, "tally_sha256": hashlib.sha256(
            repr(sorted(result["figures"].items())).encode()).hexdigest()}
        entry = chain_entry(chain=estate_id, seq=(head_seq or 0) + 1, kind="round.closed", at=now,
                            actor=actor_name(actor), subject_type="round", subject_id=str(round_id),
                            data=json.loads(canonical_json(data)), prev_hash=head_hash or GENESIS)
        values = [{"id": round_id, "now": now}, {"id": round_id, "passed": t.passed, "tally": json.dumps(result),
                                                  "labels": json.dumps(labels), "now": now},
                  {**entry, "data": json.dumps(entry["data"])}]
        with conn.pipeline():
            cur = conn.cursor()
            for sql, v in zip(_PG_WRITE, values, strict=True):
                cur.execute(sql, v)
        STATS["statements"] += len(_PG_WRITE)
        STATS["round_trips"] += 1
        return True


def _counts_and_agreeing(rows) -> tuple[counters.Counts, list[str]]:
    """The rows of _COUNTS_AND_AGREEING: the round's counters, and its agreeing units' labels in unit order."""
    stored: counters.Counts = {}
    agreeing = []
    for k, building_id, t1, t2, t3, n, a in rows:
        if k == 0:
            if n or a:
                stored[(building_id, t1)] = (int(n), int(a or 0))
        else:
            agreeing.append((natural_key(t1), natural_key(t2), t3))
    agreeing.sort()
    return stored, [label for _, _, label in agreeing]
