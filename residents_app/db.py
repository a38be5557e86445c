"""Declarative base with a constraint naming convention, exact column types, SQLite pragmas."""

from __future__ import annotations

import contextlib
import json
import os
import select
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

from residents_app.files import PRIVATE_FILE, narrow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite drops the zone otherwise)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Hundredths(sa.TypeDecorator):
    """An exact Decimal with two places stored as an integer count of hundredths.

    SQLite has no exact decimal type; integers are exact on both databases and sum fast.
    """

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = Decimal(value)
        scaled = value * 100
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{value} has more than two decimal places")
        return int(scaled)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return Decimal(int(value)).scaleb(-2)


def hundredths_to_decimal(value: int | None) -> Decimal:
    return Decimal(int(value or 0)).scaleb(-2)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    module = type(dbapi_connection).__module__
    if "sqlite" not in module:
        return
    # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions break SAVEPOINT).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # The main database file, which keys the process-wide write lock ("" for in-memory databases).
    row = cursor.execute("PRAGMA database_list").fetchone()
    connection_record.info[_DB_FILE] = os.path.realpath(row[2]) if row and row[2] else ""
    if connection_record.info[_DB_FILE]:
        # The whole register: readable by the app's user only, before the first write (SQLite creates the -wal
        # and -shm files with the database file's mode; existing ones are narrowed too).
        for suffix in ("", "-wal", "-shm"):
            narrow(connection_record.info[_DB_FILE] + suffix, PRIVATE_FILE)
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# ---- SQLite writers queue on a lock instead of sleep-polling ------------------------------------
# pysqlite's busy handler retries a locked BEGIN IMMEDIATE after sleeping 1, 2, 5, 10, 15, 20, 25 ... ms,
# so under concurrent writes the lock is mostly free while the waiters sleep. Threads of one process
# therefore queue on a lock (per database file) taken just before BEGIN IMMEDIATE and released right
# after COMMIT or ROLLBACK: the next writer starts at once. Other processes still meet SQLite's own
# lock and busy handler, so correctness never depends on this lock. A waiter gives up queueing after
# the busy timeout and falls back to the busy handler (a thread that holds one write transaction and
# opens another one must not wait for itself forever).
SQLITE_BUSY_TIMEOUT_S = 5.0
_write_locks: dict[str, threading.Lock] = {}
_write_locks_guard = threading.Lock()
# A worker forked while some thread held a lock must not inherit it held.
os.register_at_fork(after_in_child=_write_locks.clear)
_HOLDS = "residents_app.sqlite_write_lock"
_DB_FILE = "residents_app.sqlite_file"


def _write_lock_for(info: dict) -> threading.Lock | None:
    key = info.get(_DB_FILE)
    if not key:  # in-memory or temporary databases are private to their connection
        return None
    with _write_locks_guard:
        return _write_locks.setdefault(key, threading.Lock())


def _release_write_lock(info: dict) -> None:
    lock = info.pop(_HOLDS, None)
    if lock is not None:
        lock.release()


@event.listens_for(Engine, "begin")
def _sqlite_begin(conn):
    if conn.dialect.name == "sqlite":
        info = conn.connection.info
        lock = _write_lock_for(info)
        if lock is not None and _HOLDS not in info and lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            info[_HOLDS] = lock
        # IMMEDIATE takes the write lock up front, so two writers queue on busy_timeout
        # instead of one failing with SQLITE_BUSY when it upgrades a read lock.
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _release_write_lock(info)
            raise


def _end_and_release(conn, end: str) -> None:
    # These events fire before SQLAlchemy ends the transaction: end it here (pysqlite's commit() and
    # rollback() are no-ops afterwards, outside a transaction), then let the next writer in.
    info = conn.connection.info
    if _HOLDS not in info:
        return
    dbapi_connection = conn.connection.dbapi_connection
    try:
        getattr(dbapi_connection, end)()
    finally:
        if dbapi_connection.in_transaction:
            with contextlib.suppress(Exception):
                dbapi_connection.rollback()
        _release_write_lock(info)


@event.listens_for(Engine, "commit")
def _sqlite_commit(conn):
    if conn.dialect.name == "sqlite":
        _end_and_release(conn, "commit")


@event.listens_for(Engine, "rollback")
def _sqlite_rollback(conn):
    if conn.dialect.name == "sqlite":
        _end_and_release(conn, "rollback")


@event.listens_for(Pool, "checkin")
def _sqlite_checkin(dbapi_connection, connection_record):
    # Safety net: a connection returned (and reset) without a commit/rollback event still lets go.
    if connection_record is not None:
        _release_write_lock(connection_record.info)


@event.listens_for(Pool, "close")
def _sqlite_close(dbapi_connection, connection_record):
    if connection_record is not None:
        _release_write_lock(connection_record.info)


@event.listens_for(Pool, "invalidate")
def _sqlite_invalidate(dbapi_connection, connection_record, exception):
    if connection_record is not None:
        _release_write_lock(connection_record.info)


# ---- PostgreSQL: a connection idle for a while is checked before use -----------------------------------------
#
# pool_pre_ping would cost every request a `SELECT 1` round trip (on a page of four statements, one round trip in
# seven). A connection given back less than PING_AFTER_IDLE seconds ago was working a moment ago: it is handed out
# as it is (HikariCP's "alive bypass window"), as is one just opened, unless the server has closed it meanwhile
# and said so (what arrived on its socket is read without a round trip: a restart or pg_terminate_backend sends a
# FATAL message first). One idle longer is pinged first, and a dead one is
# replaced before the request sees it: after a PostgreSQL restart the app recovers by itself. A connection that
# dies within the window (the server restarted while the app was busy) fails its request with the 503 of
# ops/faults.py, and SQLAlchemy, seeing the disconnect, invalidates every connection of the pool opened before it:
# the next request connects afresh (tests/ops/test_faults.py).

PING_AFTER_IDLE = 1.0  # seconds


def _is_server_connection(dbapi_connection) -> bool:
    return type(dbapi_connection).__module__.startswith("psycopg")


@event.listens_for(Pool, "checkout")
def _ping_after_idle(dbapi_connection, connection_record, connection_proxy):
    if not _is_server_connection(dbapi_connection):
        return
    used = connection_record.info.get("rapp_used")
    if used is not None and time.monotonic() - used < PING_AFTER_IDLE:
        if not _socket_alive(dbapi_connection):  # the server ended it meanwhile (and said so): replaced
            raise sa.exc.DisconnectionError("the server closed the connection")
        return
    # In autocommit, as SQLAlchemy's own ping: no transaction is left open on the connection handed out.
    was_autocommit = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True
        try:
            dbapi_connection.execute("SELECT 1")
        finally:
            dbapi_connection.autocommit = was_autocommit
    except Exception as exc:  # dead: the pool replaces it (and tries again) before anyone uses it
        raise sa.exc.DisconnectionError(str(exc)) from exc


def _socket_alive(dbapi_connection) -> bool:
    """No round trip: an idle connection's socket has nothing to read unless the server sent something on its own,
    which here only ever is a goodbye (a shutdown or pg_terminate_backend sends its FATAL message, then closes the
    socket). Readable, or gone: not alive."""
    try:
        fd = dbapi_connection.pgconn.socket
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return not poller.poll(0)
    except Exception:  # noqa: BLE001 - closed or broken
        return False


@event.listens_for(Pool, "checkin")
def _note_use(dbapi_connection, connection_record):
    if connection_record is not None and dbapi_connection is not None:
        connection_record.info["rapp_used"] = time.monotonic()


@event.listens_for(Pool, "connect")
def _note_new(dbapi_connection, connection_record):
    # Just opened: alive, not pinged on its first checkout. (A ping failing on the connection that replaced a
    # dead one would exhaust the pool's attempts and end in a non-database error, a 500, not the 503.)
    connection_record.info["rapp_used"] = time.monotonic()


# On a pooled connection's record while it serves a GET's reads in autocommit (residents_app/read_commit.py).
READS_IN_AUTOCOMMIT = "rapp_reads_in_autocommit"
IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: no transaction open on the server


def begin_if_in_autocommit(fairy) -> None:
    """Before a statement that must be inside a transaction (a write, a lock; or any statement sent on the driver's
    own cursor, which SQLAlchemy's events do not see): on a connection that serves a GET's reads in autocommit,
    BEGIN first, so it is one transaction with what follows, as anywhere else."""
    if fairy.info.get(READS_IN_AUTOCOMMIT):
        raw = fairy.dbapi_connection
        if raw.info.transaction_status == IDLE:
            raw.execute("BEGIN")


def json_value(value):
    """A JSON column computed in SQL (json_agg, json_group_array) as Python: psycopg decodes it, SQLite gives text."""
    return json.loads(value) if isinstance(value, str) else value


def core_rows(session, statement, params: dict | None = None) -> list:
    """A Core statement of plain columns run without the ORM's pass (nothing to load: a good part of a small
    statement's cost), on the connection the session picks for it (its bind by statement: the replica for a
    read while the request is marked, residents_app/replica.py). Its rows, fetched at once."""
    return session.connection(bind_arguments={"clause": statement}).execute(statement, params or {}).all()


def ids_in(session, column, ids) -> sa.ColumnElement:
    """`column IN ids` for a list of ids that can be long (a district's estates, their rounds): one array parameter
    (`= ANY(:ids)`) on PostgreSQL, so the statement text is the same whatever the number of ids (no hundreds of
    parameters to render and parse on every view); the usual expanding IN elsewhere."""
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return column == sa.any_(sa.bindparam(None, ids, type_=ARRAY(sa.Integer)))
    return column.in_(ids)
