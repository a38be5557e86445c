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

With `plan(now, actor)` first (PostgreSQL), ONE statement (FIGURES_SQL) reads what every due round's close needs:
each round's row and its counters, its agreeing units, each chain's head and the building names; the outcomes are
computed in Python from these. A planned household yes/no round whose chain head is known then closes in ONE round
trip ([its row lock and its chain's lock, the write], `queue_fast`): the write is one statement that closes the
round, stores its result and appends its chain entry (hashed in Python after the head read up front) only if
nothing the plan read has changed since: the round still open and due, its counters' row versions (xmin) the
same (every cast that moves a unit between choices rewrites a counter row, in the cast's own transaction), the
chain's head (its hash) the same and nothing pending on it. These are checked after the locks were granted (a
statement of its own, so with a snapshot taken after them). Otherwise the write changes nothing and the round
takes the path above in the same transaction. The chain's head moves on in Python after each such close, so a
chain's rounds must be closed in order on one connection; the scheduler closes different chains on several
connections at once (scheduler/closing.py), each round still in its own transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace

import sqlalchemy as sa

from residents_app.audit.chain import GENESIS, canonical_json, chain_entry
from residents_app.audit.services import CHAIN_LOCK_KEY
from residents_app.core import matters
from residents_app.db import begin_if_in_autocommit
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.registry.models import Building
from residents_app.rounds import counters, services, tally
from residents_app.rounds.common import actor_name, lock_round, natural_key
from residents_app.rounds.models import Round

log = logging.getLogger(__name__)

STATS = {"statements": 0, "round_trips": 0, "fast": 0}  # of the PostgreSQL pipelined paths (tests, bench)
_STATS_LOCK = threading.Lock()  # the scheduler closes on several threads at once

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


# The version of a round's counters: the transactions that last wrote each of its rows (a cast moving a unit
# between choices rewrites two of them), in key order.
_FINGERPRINT = ("(SELECT string_agg(CAST(c.xmin AS TEXT), ',' ORDER BY c.building_id, c.choice, c.slot) "
                "FROM round_count c WHERE c.round_id = r.id)")
# One statement for the whole batch, rows by kind k: 0 a round (its row, its counters' version), 1 its counters by
# building and choice, 2 its agreeing units (building names, unit numbers, labels: three arrays in roll order),
# 3 a chain's head (seq, hash, 'pending' if it has events pending), 4 a building's name.
FIGURES_SQL = (
    "WITH r AS (SELECT id, estate_id, kind, status, closes_at, counting_mode, rule_preset FROM round "
    "WHERE id = ANY(%(ids)s)) "
    "SELECT 0 AS k, r.id, r.estate_id, CAST(NULL AS BIGINT), CAST(NULL AS BIGINT), r.kind, r.counting_mode, "
    f"r.rule_preset, r.status, r.closes_at, {_FINGERPRINT}, CAST(NULL AS TEXT[]), CAST(NULL AS TEXT[]), "
    "CAST(NULL AS TEXT[]) FROM r "
    "UNION ALL "
    "SELECT 1, c.round_id, c.building_id, SUM(c.units), SUM(c.area_m2), c.choice, NULL, NULL, NULL, NULL, NULL, "
    "NULL, NULL, NULL "
    "FROM round_count c WHERE c.round_id = ANY(%(ids)s) GROUP BY c.round_id, c.building_id, c.choice "
    "UNION ALL "
    "SELECT 2, e.round_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, array_agg(e.building_name "
    "ORDER BY e.id), array_agg(e.unit_number ORDER BY e.id), array_agg(e.label ORDER BY e.id) "
    "FROM roll_entry e JOIN current_ballot b ON b.round_id = e.round_id AND b.unit_id = e.unit_id "
    "WHERE e.round_id = ANY(%(ids)s) AND b.choice = 'agree' GROUP BY e.round_id "
    "UNION ALL "
    "SELECT 3, ch.chain, h.seq, NULL, NULL, h.hash, NULL, NULL, "
    "CASE WHEN EXISTS (SELECT 1 FROM audit_pending p WHERE p.chain = ch.chain) THEN 'pending' ELSE '' END, "
    "NULL, NULL, NULL, NULL, NULL FROM (SELECT DISTINCT estate_id AS chain FROM r) ch LEFT JOIN LATERAL "
    "(SELECT seq, hash FROM audit_event WHERE chain = ch.chain ORDER BY seq DESC LIMIT 1) h ON TRUE "
    "UNION ALL "
    "SELECT 4, b.id, NULL, NULL, NULL, b.name, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL FROM building b "
    "WHERE b.estate_id IN (SELECT estate_id FROM r)"
)
# A planned round's close: its row lock, then its chain's lock (one statement: the subquery's row is locked before
# the outer select takes the chain's lock), then (a snapshot taken after both) the write, which does nothing unless
# what the plan read is unchanged; it returns the rounds closed (1 or 0).
_FAST = (
    f"SELECT pg_advisory_xact_lock({CHAIN_LOCK_KEY}, %(e_chain)s) FROM (SELECT id FROM round WHERE id = %(id)s "
    "FOR UPDATE) r",
    "WITH ok AS (SELECT r.id FROM round r WHERE r.id = %(id)s AND r.status = 'open' AND r.closes_at <= %(now)s "
    "AND r.kind = %(r_kind)s AND r.counting_mode = %(r_counting_mode)s "
    "AND r.rule_preset IS NOT DISTINCT FROM %(r_rule_preset)s "
    f"AND {_FINGERPRINT} IS NOT DISTINCT FROM %(fingerprint)s "
    "AND (SELECT hash FROM audit_event WHERE chain = r.estate_id ORDER BY seq DESC LIMIT 1) "
    "IS NOT DISTINCT FROM %(head_hash)s "
    "AND NOT EXISTS (SELECT 1 FROM audit_pending WHERE chain = r.estate_id)), "
    "u AS (UPDATE round SET status = 'closed', closed_at = %(now)s WHERE id IN (SELECT id FROM ok) RETURNING id), "
    "res AS (INSERT INTO round_result (round_id, passed, tally, agreeing_unit_labels, closed_at) "
    "SELECT id, %(passed)s, CAST(%(tally)s AS JSON), CAST(%(labels)s AS JSON), %(now)s FROM u), "
    "ev AS (INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash) "
    "SELECT %(e_chain)s, %(e_seq)s, %(e_kind)s, %(e_at)s, %(e_actor)s, %(e_subject_type)s, %(e_subject_id)s, "
    "CAST(%(e_data)s AS JSON), %(e_prev_hash)s, %(e_hash)s FROM u) "
    "SELECT COUNT(*) FROM u",
)


@dataclass
class Planned:
    """What the batch's read gave for a round to be closed as planned; its close is computed when it is sent."""

    round_id: int
    chain: int
    rnd: SimpleNamespace
    fingerprint: str | None
    stored: counters.Counts
    agreeing: tuple  # (building names, unit numbers, labels) of its agreeing units
    params: dict | None = None  # the write's values but the chain entry's place, once computed
    data: dict | None = None  # the chain entry's data


@dataclass
class Queued:
    """A planned close sent to the server; `done()` once its results are in."""

    round_id: int
    chain: int
    head: tuple[int, str]  # the chain's head if it closes
    cursor: object


def count_statements(statements: int, round_trips: int, fast: int = 0) -> None:
    """Adds to STATS (the statements SQLAlchemy does not see: sent by psycopg directly)."""
    with _STATS_LOCK:
        STATS["statements"] += statements
        STATS["round_trips"] += round_trips
        STATS["fast"] += fast


def from_counters(rnd: Round) -> bool:
    """Whether the close reads the stored counters (household yes/no rounds) or takes the per-round path."""
    return rnd.counting_mode == "household" and not rnd.is_survey and not rnd.is_choice


class CloseBatch:
    """Rounds about to be closed by one tick, each in its own transaction (the caller's)."""

    def __init__(self, round_ids: list[int]):
        self.names: dict[int, str] = {}
        self._loaded: set[int] = set()
        self._pending = list(round_ids)
        self.planned: dict[int, Planned] = {}
        self.chains: dict[int, int] = {}  # round -> its chain (estate), for the rounds read by plan()
        self.heads: dict[int, tuple[int, str]] = {}  # chain -> (seq, hash) while known; absent: unknown

    def plan(self, now: datetime, actor=None, dbapi=None) -> None:
        """PostgreSQL: read the whole batch in one statement and compute each household yes/no round's close
        (no locks: the close checks that nothing changed since). Nothing on SQLite. `dbapi`: a psycopg connection
        to read on (the default: the session's)."""
        if db.engine.dialect.name != "postgresql" or not self._pending:
            return
        with (dbapi or self._dbapi()).cursor() as cur:
            cur.execute(FIGURES_SQL, {"ids": self._pending})
            rows = cur.fetchall()
        count_statements(1, 1)
        rounds, stored, agreeing, pending = [], {}, {}, set()
        for k, i1, i2, n, a, s1, s2, s3, s4, t, fingerprint, names, numbers, labels in rows:
            if k == 0:
                rounds.append((i1, i2, s1, s2, s3, s4, t, fingerprint))
            elif k == 1:
                if n or a:
                    stored.setdefault(i1, {})[(i2, s1)] = (int(n), int(a or 0))
            elif k == 2:
                agreeing[i1] = (names, numbers, labels)
            elif k == 3:
                if s4:
                    pending.add(i1)
                else:
                    self.heads[i1] = (i2 or 0, s1 or GENESIS)
            else:
                self.names[i1] = s1
        self._loaded.update(self._pending)
        for round_id, estate_id, kind, counting_mode, rule_preset, status, closes_at, fingerprint in rounds:
            self.chains[round_id] = estate_id
            rnd = SimpleNamespace(id=round_id, estate_id=estate_id, kind=kind, counting_mode=counting_mode,
                                  rule_preset=rule_preset, is_survey=matters.is_survey(kind),
                                  is_choice=matters.is_choice(kind))
            if status == "open" and now >= closes_at and from_counters(rnd) and estate_id not in pending:
                self.planned[round_id] = Planned(round_id, estate_id, rnd, fingerprint, stored.get(round_id, {}),
                                                 agreeing.get(round_id, ((), (), ())))

    def prepare(self, round_id: int, now: datetime) -> None:
        """A planned round's result (as services.close_round computes it) and its chain entry's data."""
        p = self.planned[round_id]
        if p.params is not None:
            return
        t = tally.name_buildings(tally.household_tally(p.rnd, p.stored), self.names)
        result = t.to_dict()
        names, numbers, labels = p.agreeing
        agreeing = sorted(zip(map(natural_key, names), map(natural_key, numbers), labels, strict=True))
        p.data = json.loads(canonical_json({"passed": t.passed, "tally_sha256": hashlib.sha256(
            repr(sorted(result["figures"].items())).encode()).hexdigest()}))
        p.params = {"id": p.round_id, "now": now, "r_kind": p.rnd.kind, "r_counting_mode": p.rnd.counting_mode,
                    "r_rule_preset": p.rnd.rule_preset, "fingerprint": p.fingerprint, "passed": t.passed,
                    "tally": json.dumps(result), "labels": json.dumps([label for _, _, label in agreeing])}

    def can_close_fast(self, round_id: int) -> bool:
        p = self.planned.get(round_id)
        return p is not None and p.chain in self.heads

    def queue_fast(self, conn, round_id: int, now: datetime, actor=None, head: tuple[int, str] | None = None,
                   cursor=None) -> Queued:
        """Send a planned round's close (can_close_fast) on a psycopg connection in pipeline mode: its row lock and
        its chain's lock, then the write, in the caller's transaction. `done()` tells whether it closed. `head`: the
        chain's head if the closes queued before it on the chain close (the default: the head known now). `cursor`:
        one of `conn` to send the locks with (whose results nobody reads), so as not to make one per round; the
        write gets a cursor of its own, which holds its result until done()."""
        self.prepare(round_id, now)
        p = self.planned[round_id]
        seq, prev = head or self.heads[p.chain]
        entry = chain_entry(chain=p.chain, seq=seq + 1, kind="round.closed", at=now, actor=actor_name(actor),
                            subject_type="round", subject_id=str(round_id), data=p.data, prev_hash=prev)
        params = {**p.params, "head_hash": prev if seq else None, **{f"e_{k}": v for k, v in entry.items()},
                  "e_data": json.dumps(entry["data"])}
        (cursor or conn.cursor()).execute(_FAST[0], params)
        write = conn.cursor()
        write.execute(_FAST[1], params)
        return Queued(round_id, p.chain, (entry["seq"], entry["hash"]), write)

    def done(self, queued: Queued) -> bool:
        """Whether a queued close closed its round (its results in); the chain's head moves on, or becomes
        unknown (the plan was out of date: the round takes the per-round path)."""
        closed = queued.cursor.fetchone()[0] == 1
        count_statements(len(_FAST), 0, int(closed))  # the round trip is the caller's: one per pipeline
        if closed:
            self.heads[queued.chain] = queued.head
        else:
            self.heads.pop(queued.chain, None)
        return closed

    def forget_head(self, chain: int) -> None:
        self.heads.pop(chain, None)

    def _dbapi(self):
        db.session.flush()
        fairy = db.session.connection().connection
        begin_if_in_autocommit(fairy)  # statements sent on the driver's cursor belong to the session's transaction
        return fairy.dbapi_connection

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
            if self.can_close_fast(round_id):
                conn = self._dbapi()
                with conn.pipeline():
                    queued = self.queue_fast(conn, round_id, now, actor)
                count_statements(0, 1)
                if self.done(queued):
                    return True
            if round_id in self.chains:
                self.forget_head(self.chains[round_id])  # what the per-round path appends is not followed here
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
        conn = self._dbapi()
        params = {"id": round_id}
        with conn.pipeline():
            cursors = [conn.cursor() for _ in _PG_READ]
            for cur, sql in zip(cursors, _PG_READ, strict=True):
                cur.execute(sql, params)  # queued: sent together, run one after the other
            results = [cur.fetchall() for cur in cursors]
        count_statements(len(_PG_READ), 1)
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
        count_statements(len(_PG_WRITE), 1)
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
