"""The hot path of an online ballot: one read, then the writes, as plain SQL on the session's own connection.

Casting is the one request every resident makes in the last hours of a round, so it runs the fewest
statements and the least Python that do the job:

- one read: the resident session's link (active? the same token?), the ownership, the round and the unit's
  row of the frozen roll (`read_for_cast`);
- the writes (`write_online`): the ballot row (with its receipt code), the upsert of the counted ballot, the
  ballot's audit event. On PostgreSQL they are one statement (data-modifying CTEs), plus a second one only
  when the unit already had a counted ballot (marking it superseded). On SQLite, four short statements under
  the write lock the transaction already holds.

The audit event goes to `audit_pending` (deferred: the transaction takes no chain lock, so casts commit in
parallel and the sealer moves events onto the chain in batches) or, synchronously, straight onto the chain in
the same transaction (audit.services.seal_chain: the lock is held until commit). Views defer and then call
audit.sealer.after_commit(); service callers (demo, tests, scripts) get the synchronous form.

Statements go through the DB-API cursor of the session's connection (SQLAlchemy's per-statement machinery
costs ten times what SQLite takes to run them); values are converted by the columns' own SQLAlchemy bind and
result processors, so what is stored is exactly what the ORM would store and read back.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from residents_app.audit import sealer
from residents_app.audit.chain import GENESIS, canonical_json, chain_entry, new_receipt
from residents_app.audit.services import seal_chain
from residents_app.db import begin_if_in_autocommit
from residents_app.errors import Conflict
from residents_app.extensions import db
from residents_app.rounds.counters import MOVE_SQL, PG_MOVE_CTE, slot_of
from residents_app.rounds.models import Ballot, Round
from residents_app.rounds.person_counters import PERSON_SQL, PG_PERSON_CTE, TOTALS_SQL

READ_SQL = """
SELECT l.revoked_at, l.token_hash, o.owner_id,
       r.id, r.estate_id, r.kind, r.status, r.opens_at, r.closes_at, r.options, r.item_menu, e.id, r.counting_mode
FROM unit_link l
LEFT JOIN ownership o ON o.unit_id = l.unit_id AND o.owner_id = :owner_id
LEFT JOIN round r ON r.id = :round_id
LEFT JOIN roll_entry e ON e.round_id = r.id AND e.unit_id = l.unit_id
WHERE l.id = :link_id AND l.unit_id = :unit_id
"""

_BALLOT_COLUMNS = ("round_id, unit_id, choice, items, rating, comment, channel, status, cast_by_owner_id, "
                   "entered_by_id, confirmed_by_id, confirmed_at, scan_file_id, mandate_id, proxy_name, "
                   "resolution_reason, cast_at, receipt_code")
_BALLOT_VALUES = (":round_id, :unit_id, :choice, :items, :rating, :comment, 'online', 'counted', :owner_id, "
                  "NULL, NULL, NULL, NULL, NULL, '', '', :cast_at, :receipt")
_UPSERT_TAIL = ("ON CONFLICT (round_id, unit_id) DO UPDATE SET ballot_id = excluded.ballot_id, "
                "choice = excluded.choice, channel = excluded.channel, cast_at = excluded.cast_at, "
                "previous_choice = current_ballot.choice")
_PENDING_COLUMNS = "chain, kind, at, actor, subject_type, subject_id, data"
SUPERSEDE_SQL = ("UPDATE ballot SET status = 'superseded' WHERE round_id = :round_id AND unit_id = :unit_id "
                 "AND status = 'counted' AND id <> :ballot_id")

# The unique (round, unit) row is the lock: a concurrent cast for the same unit waits here, then overwrites, so
# exactly one is counted and the other stays in the history as a change. (Also services._count's.)
CURRENT_UPSERT = ("INSERT INTO current_ballot (round_id, unit_id, ballot_id, choice, channel, cast_at) "
                  f"VALUES (:round_id, :unit_id, :ballot_id, :choice, :channel, :cast_at) {_UPSERT_TAIL}")
_BALLOT_INSERT = f"INSERT INTO ballot ({_BALLOT_COLUMNS}) VALUES ({_BALLOT_VALUES}) RETURNING id"
SQLITE_WRITES = (
    ("ballot", _BALLOT_INSERT),
    ("current", CURRENT_UPSERT),
    ("count", MOVE_SQL),  # the stored counters (rounds/counters.py), from the row the upsert left
    ("supersede", SUPERSEDE_SQL),
)
# A person-counted round: the person's transition onto the totals (from the person's row as it was), then the
# person's row (rounds/person_counters.py).
SQLITE_WRITES_PERSON = (*SQLITE_WRITES[:3], ("person totals", TOTALS_SQL), ("person", PERSON_SQL),
                        *SQLITE_WRITES[3:])
SQLITE_PENDING = (f"INSERT INTO audit_pending ({_PENDING_COLUMNS}) "
                  "VALUES (:chain, 'ballot.cast', :cast_at, :actor, 'ballot', :subject_id, :data)")
# SQLite, not deferred: straight onto the chain (the transaction holds the database's only write lock, which
# is the chain lock there), after any events still pending on it.
SQLITE_HEAD = "SELECT seq, hash FROM audit_event WHERE chain = :chain ORDER BY seq DESC LIMIT 1"
SQLITE_PENDING_EXISTS = "SELECT 1 FROM audit_pending WHERE chain = :chain LIMIT 1"
SQLITE_APPEND = ("INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, "
                 "hash) VALUES (:chain, :seq, 'ballot.cast', :cast_at, :actor, 'ballot', :subject_id, :data, "
                 ":prev_hash, :hash)")
# PostgreSQL: one statement; the three inserts see each other only through RETURNING. `replaced` (the upsert
# updated an existing row: PostgreSQL leaves xmax = 0 only on a freshly inserted tuple) says whether an earlier
# counted ballot must be marked superseded: that UPDATE runs as its own statement, after the upsert has waited
# for any concurrent cast of the same unit, so its snapshot sees that cast's ballot.
_PG_AFTER_BALLOT = (
    "c AS (INSERT INTO current_ballot (round_id, unit_id, ballot_id, choice, channel, cast_at) "
    f"SELECT :round_id, :unit_id, b.id, :choice, :channel, :cast_at FROM b {_UPSERT_TAIL} "
    "RETURNING NOT (xmax = 0) AS replaced, choice, previous_choice), "
    f"{PG_MOVE_CTE}, {{persons}}"
    f"p AS (INSERT INTO audit_pending ({_PENDING_COLUMNS}) "
    "SELECT :chain, 'ballot.cast', :cast_at, :actor, 'ballot', CAST(b.id AS VARCHAR), :data FROM b) "
    "SELECT b.id, c.replaced FROM b, c"
)
# The round row is locked FOR KEY SHARE by every cast (PostgreSQL): close_round's FOR UPDATE waits for the casts
# in flight, and a cast that comes while a close holds it waits, then re-checks the row (closed: no insert).
# So a ballot is either in the stored result or refused, never stored after the result was computed.
_LOCK_ROUND = " FOR KEY SHARE OF r"
# The service path (the page, scripts): round and roll checked in the same statement as the insert, so a close
# between the caller's read and this write is seen here.
_ROUND_CHECKS = (
    "FROM round r JOIN roll_entry e ON e.round_id = r.id AND e.unit_id = :unit_id "
    "WHERE r.id = :round_id AND r.status = 'open' AND r.opens_at <= :cast_at AND r.closes_at > :cast_at"
)

# A round already seen open: the checks that can change while a round is open (the link is active and is this
# token's, the owner still owns the unit, the round is open by its status and window, the unit is on its roll)
# are the WHERE of the ballot's insert itself. No row back: some check failed, nothing was written, and the
# caller takes the checked path, which says which one. (SQLite compares the stored UTC text, same format.)
_CHECKS = (
    "FROM unit_link l "
    "JOIN ownership o ON o.unit_id = l.unit_id AND o.owner_id = :owner_id "
    "JOIN round r ON r.id = :round_id "
    "JOIN roll_entry e ON e.round_id = r.id AND e.unit_id = l.unit_id "
    "WHERE l.id = :link_id AND l.unit_id = :unit_id AND l.revoked_at IS NULL AND l.token_hash = :token_hash "
    "AND r.status = 'open' AND r.opens_at <= :cast_at AND r.closes_at > :cast_at AND r.estate_id = :chain "
    "AND r.kind = :kind"
)
_CHECKED_BALLOT = (
    f"INSERT INTO ballot ({_BALLOT_COLUMNS}) SELECT :round_id, :unit_id, :choice, :items, "
    "CAST(:rating AS INTEGER), :comment, 'online', 'counted', :owner_id, CAST(NULL AS INTEGER), "
    "CAST(NULL AS INTEGER), CAST(NULL AS TIMESTAMP WITH TIME ZONE), CAST(NULL AS INTEGER), CAST(NULL AS INTEGER), "
    "'', '', :cast_at, :receipt {checks} RETURNING id"
)
CHECKED_BALLOT = _CHECKED_BALLOT.format(checks=_CHECKS)  # SQLite: the first statement of the cast
# PostgreSQL: the whole cast is one statement (a person-counted round's also moves its person counters).
_PG_HOUSEHOLD, _PG_PERSON = _PG_AFTER_BALLOT.format(persons=""), _PG_AFTER_BALLOT.format(persons=f"{PG_PERSON_CTE}, ")
PG_CAST_ONE = f"WITH b AS ({_CHECKED_BALLOT.format(checks=_CHECKS + _LOCK_ROUND)}), {_PG_HOUSEHOLD}"
PG_WRITE = f"WITH b AS ({_CHECKED_BALLOT.format(checks=_ROUND_CHECKS + _LOCK_ROUND)}), {_PG_HOUSEHOLD}"
PG_CAST_ONE_PERSON = f"WITH b AS ({_CHECKED_BALLOT.format(checks=_CHECKS + _LOCK_ROUND)}), {_PG_PERSON}"
PG_WRITE_PERSON = f"WITH b AS ({_CHECKED_BALLOT.format(checks=_ROUND_CHECKS + _LOCK_ROUND)}), {_PG_PERSON}"

def window_closed() -> Conflict:
    return Conflict("投票已截止，不能再投票或修改", code="vote_window_closed")


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


def _pyformat(sql: str) -> str:
    """`:name` -> `%(name)s` (psycopg); the SQL here has no `::` casts and no literal `%`."""
    return _NAMED.sub(r"%(\1)s", sql)


class _Dialect:
    """The SQL and the value converters of one dialect, built once."""

    def __init__(self, dialect):
        self.name = dialect.name
        b, r = Ballot.__table__.c, Round.__table__.c
        ident = _identity
        self.bind_dt = b.cast_at.type._cached_bind_processor(dialect) or ident
        self.bind_json = b["items"].type._cached_bind_processor(dialect) or ident
        self.read_dt = r.opens_at.type._cached_result_processor(dialect, None) or ident
        self.read_json = r.options.type._cached_result_processor(dialect, None) or ident
        pg = self.name == "postgresql"
        conv = _pyformat if pg else _identity
        self.read = conv(READ_SQL)
        # [household, person]: the writes and the one-statement cast of each counting mode.
        self.writes = ([(("write", conv(PG_WRITE)),), (("write", conv(PG_WRITE_PERSON)),)] if pg else
                       [SQLITE_WRITES, SQLITE_WRITES_PERSON])
        self.supersede = conv(SUPERSEDE_SQL)
        self.cast_one = [conv(PG_CAST_ONE), conv(PG_CAST_ONE_PERSON)] if pg else [CHECKED_BALLOT, CHECKED_BALLOT]


def _mode(rnd) -> int:
    """0: a household-counted round, 1: a person-counted one (its casts also move the person counters)."""
    return 1 if rnd.counting_mode == "person" else 0


def _identity(value):
    return value


_DIALECTS: dict[str, _Dialect] = {}


def _dialect(conn) -> _Dialect:
    d = _DIALECTS.get(conn.dialect.name)
    if d is None:
        d = _DIALECTS[conn.dialect.name] = _Dialect(conn.dialect)
    return d


def _run(cursor, name: str, sql: str, params: dict) -> None:
    """Every statement of the cast path goes through here (tests wrap it to see which ones run). The driver's own
    errors (this path runs on the driver's cursor) are raised as SQLAlchemy's, as every other statement's are: a
    server restarting under a cast is then the 503 of ops/faults.py, not an unknown error's 500."""
    try:
        cursor.execute(sql, params)
    except Exception as err:
        base = _driver_error(cursor)
        if base is None or not isinstance(err, base):
            raise
        broken = bool(getattr(cursor.connection, "closed", False) or getattr(cursor.connection, "broken", False))
        raise sa.exc.DBAPIError.instance(sql, params, err, base, connection_invalidated=broken) from err


def _driver_error(cursor) -> type | None:
    """The DB-API module's base Error class of this cursor's driver (psycopg or sqlite3)."""
    module = sys.modules.get(type(cursor).__module__.split(".")[0])
    return getattr(module, "Error", None)


def _cursor(conn):
    # The session's connection, inside the transaction the session has begun (BEGIN IMMEDIATE on SQLite; on
    # PostgreSQL psycopg's own BEGIN, or ours if the connection serves a GET's reads in autocommit).
    begin_if_in_autocommit(conn.connection)
    return conn.connection.dbapi_connection.cursor()


@dataclass(slots=True)
class CastRound:
    """What casting needs of a round, as plain values (no ORM object to build, track and expire)."""

    id: int
    estate_id: int
    kind: str
    status: str
    opens_at: datetime
    closes_at: datetime
    options: list
    item_menu: list
    counting_mode: str = "household"

    option_labels = property(Round.option_labels.fget)


@dataclass(slots=True)
class SessionRound:
    """One row of READ_SQL: the session's link and ownership, the round, and whether the unit is on its roll."""

    link_revoked: bool
    token_hash: str
    owns_unit: bool
    round: CastRound | None
    on_roll: bool


def read_for_cast(link_id: int, unit_id: int, owner_id: int, round_id: int) -> SessionRound | None:
    """None when the link does not exist or is not the unit's."""
    db.session.flush()
    conn = db.session.connection()
    d = _dialect(conn)
    cur = _cursor(conn)
    try:
        _run(cur, "read", d.read, {"link_id": link_id, "unit_id": unit_id, "owner_id": owner_id,
                                   "round_id": round_id})
        row = cur.fetchone()
    finally:
        cur.close()
    if row is None:
        return None
    rnd = None
    if row[3] is not None:
        rnd = CastRound(id=row[3], estate_id=row[4], kind=row[5], status=row[6], opens_at=d.read_dt(row[7]),
                        closes_at=d.read_dt(row[8]), options=d.read_json(row[9]) or [],
                        item_menu=d.read_json(row[10]) or [], counting_mode=row[12])
    return SessionRound(link_revoked=row[0] is not None, token_hash=row[1], owns_unit=row[2] is not None,
                        round=rnd, on_roll=row[11] is not None)


@dataclass(slots=True)
class Written:
    ballot_id: int
    receipt_code: str


def _defers(d: _Dialect, defer_audit: bool) -> bool:
    """PostgreSQL defers when asked: the cast then commits without waiting for the chain lock. SQLite does not
    (unless AUDIT_DEFER_ON_SQLITE, for tests of the mechanism): its transaction already holds the database's
    only write lock, so appending in place costs two short statements and waits for nothing."""
    if not defer_audit:
        return False
    return d.name == "postgresql" or bool(current_app.config.get("AUDIT_DEFER_ON_SQLITE"))


def _params(d: _Dialect, rnd, unit_id: int, owner_id: int, choice: str, items: list[str], rating: int | None,
            comment: str, now: datetime, actor: str, client: dict | None) -> tuple[dict, dict]:
    """The bind values of the writes, and the audit event's data (with a fresh receipt code)."""
    receipt = new_receipt()
    data: dict[str, Any] = {"round_id": rnd.id, "unit_id": unit_id, "choice": choice, "channel": "online",
                            "items": items, "cast_at": now.isoformat(), "receipt": receipt}
    if client:
        data.update({k: v for k, v in client.items() if k in ("ip_hash", "ua_hash") and v})
    params = {"round_id": rnd.id, "unit_id": unit_id, "choice": choice, "items": d.bind_json(items),
              "rating": rating, "comment": (comment or "").strip()[:500], "owner_id": owner_id, "channel": "online",
              "cast_at": d.bind_dt(now),
              "receipt": receipt, "chain": rnd.estate_id, "actor": actor, "data": d.bind_json(data),
              "slot": slot_of(unit_id)}
    return params, data


def write_online(rnd, unit_id: int, owner_id: int, *, choice: str, items: list[str], rating: int | None,
                 comment: str, now: datetime, actor: str, client: dict | None, defer_audit: bool) -> Written:
    """Insert the online ballot of a unit (already checked: window, roll, ownership, choice), make it the
    counted one, and write its audit event: to audit_pending (deferred) or onto the chain in this transaction."""
    conn = db.session.connection()
    d = _dialect(conn)
    defer = _defers(d, defer_audit)
    params, data = _params(d, rnd, unit_id, owner_id, choice, items, rating, comment, now, actor, client)
    writes = d.writes[_mode(rnd)]
    cur = _cursor(conn)
    try:
        if d.name == "postgresql":
            _run(cur, "write", writes[0][1], params)
            row = cur.fetchone()
            if row is None:  # the round closed after the caller's checks (the only thing that can change)
                raise window_closed()
            ballot_id, replaced = row
            if replaced:
                _run(cur, "supersede", d.supersede, {"round_id": rnd.id, "unit_id": unit_id, "ballot_id": ballot_id})
            seal_now = not defer
        else:
            _run(cur, "ballot", writes[0][1], params)
            ballot_id = cur.fetchone()[0]
            seal_now = _sqlite_after_ballot(cur, writes, ballot_id, params, data, now, defer)
    finally:
        cur.close()
    return _written(rnd.estate_id, ballot_id, params["receipt"], defer, seal_now)


def _sqlite_after_ballot(cur, writes: tuple, ballot_id: int, params: dict, data: dict, now: datetime,
                         defer: bool) -> bool:
    """SQLite, the ballot row written: the counted ballot, the earlier one superseded, the audit event. True when
    the event was left pending and must be sealed in this transaction (events were already pending)."""
    params.update(ballot_id=ballot_id, subject_id=str(ballot_id))
    for name, sql in writes[1:]:
        _run(cur, name, sql, params)
    if defer:
        _run(cur, "pending", SQLITE_PENDING, params)
        return False
    _run(cur, "pending?", SQLITE_PENDING_EXISTS, params)
    if cur.fetchone() is None:
        _append_sqlite(cur, params, data, now)
        return False
    # Events still pending on this chain go first: join them, then seal all in order.
    _run(cur, "pending", SQLITE_PENDING, params)
    return True


def _written(chain: int, ballot_id: int, receipt: str, defer: bool, seal_now: bool) -> Written:
    if seal_now:
        seal_chain(chain)
    elif defer:
        sealer.deferred(chain)
    return Written(ballot_id=ballot_id, receipt_code=receipt)


# Rounds this process has seen open, by (engine, id): kind, options, item menu and estate are frozen once a
# round opens (Round.ensure_editable) and rounds are never deleted, so they can be checked without a query;
# what can still change is checked by the insert itself (_CHECKS).
_SEEN_OPEN: dict[tuple[int, int], CastRound] = {}


def remember_round(rnd: CastRound) -> None:
    if rnd.status != "draft":
        _SEEN_OPEN[(id(db.engine), rnd.id)] = rnd


def forget_round(round_id: int) -> None:
    """A round id (re)created in this process (SQLite reuses the id of a round whose creation rolled back)."""
    _SEEN_OPEN.pop((id(db.engine), round_id), None)


def known_round(round_id: int) -> CastRound | None:
    return _SEEN_OPEN.get((id(db.engine), round_id))


def cast_in_one(rnd: CastRound, unit_id: int, owner_id: int, link_id: int, token_hash: str, *, choice: str,
                items: list[str], rating: int | None, comment: str, now: datetime, actor: str,
                client: dict | None, defer_audit: bool) -> Written | None:
    """A round already seen open: the checks in the ballot's insert (PostgreSQL: the whole cast is one statement;
    SQLite: the bind values are prepared before the transaction takes the write lock). None: a check failed,
    nothing was written; the caller takes the checked path, which says why."""
    d = _dialect(db.session.get_bind())
    defer = _defers(d, defer_audit)
    params, data = _params(d, rnd, unit_id, owner_id, choice, items, rating, comment, now, actor, client)
    params.update(link_id=link_id, token_hash=token_hash, kind=rnd.kind)
    cur = _cursor(db.session.connection())
    try:
        _run(cur, "cast", d.cast_one[_mode(rnd)], params)
        row = cur.fetchone()
        if row is None:
            return None
        if d.name == "postgresql":
            ballot_id, replaced = row
            if replaced:
                _run(cur, "supersede", d.supersede, {"round_id": rnd.id, "unit_id": unit_id, "ballot_id": ballot_id})
            defer, seal_now = True, False  # the statement wrote the event to audit_pending
        else:
            ballot_id = row[0]
            seal_now = _sqlite_after_ballot(cur, d.writes[_mode(rnd)], ballot_id, params, data, now, defer)
    finally:
        cur.close()
    return _written(rnd.estate_id, ballot_id, params["receipt"], defer, seal_now)


def _append_sqlite(cur, params: dict, data: dict, now: datetime) -> None:
    _run(cur, "head", SQLITE_HEAD, params)
    head = cur.fetchone()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    entry = chain_entry(chain=params["chain"], seq=seq + 1, kind="ballot.cast", at=now, actor=params["actor"],
                        subject_type="ballot", subject_id=params["subject_id"],
                        data=json.loads(canonical_json(data)), prev_hash=prev)
    _run(cur, "append", SQLITE_APPEND, {**params, "seq": entry["seq"], "prev_hash": prev, "hash": entry["hash"]})
