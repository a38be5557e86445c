"""What a GET costs the database connection (PostgreSQL): its reads run outside any transaction, and a GET that
only read ends without a ROLLBACK.

**Reads in autocommit.** psycopg opens a transaction with a `BEGIN` of its own round trip before a request's first
statement, and the request ends with another (`COMMIT` or `ROLLBACK`): on a page of four statements two round
trips in six. Under READ COMMITTED (the app's level) every statement of a transaction takes its own snapshot
anyway, so a SELECT run on its own sees exactly what it would have seen inside one. A connection checked out for a
GET or HEAD request is therefore put in autocommit, and the first statement that is not a plain read (an INSERT,
UPDATE or DELETE, a flush, a lock `FOR UPDATE` / `FOR SHARE`, an advisory lock, a SAVEPOINT, any statement that is
not a SELECT or a WITH ... SELECT, a server-side cursor) gets a `BEGIN` sent before it: from there on the request's
writes are one transaction as on any other request, committed by the view or rolled back at its end (psycopg's
commit() and rollback() send COMMIT / ROLLBACK whenever the server is in a transaction). The connection leaves
autocommit when it goes back to the pool. Requests other than GET/HEAD, the scheduler, the commands and a session
bound to a given connection (tests) are not touched. `READS_IN_AUTOCOMMIT = False` turns it off.

**A read ends with COMMIT, not ROLLBACK** (when reads are not in autocommit): psycopg forgets its prepared
statements at every ROLLBACK, and Flask-SQLAlchemy ends every request's transaction with one: no statement of a
page was ever prepared. To the database COMMIT and ROLLBACK of a transaction that wrote nothing are the same;
ending those with COMMIT lets psycopg prepare what a pooled connection runs often (from the 5th run). Only when
nothing can have been written: a GET or HEAD answered below 400, no statement other than a SELECT (or the test
suite's SAVEPOINT / RELEASE) sent during the request, nothing pending in the session. If the COMMIT fails the
transaction is rolled back as before. (In autocommit a read never began a transaction: nothing to end.)

SQLite is left alone (its module keeps its own statement cache; its writers take BEGIN IMMEDIATE).
"""

from __future__ import annotations

import functools
import logging
import re

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from residents_app.db import IDLE, READS_IN_AUTOCOMMIT, begin_if_in_autocommit

log = logging.getLogger(__name__)

READ_METHODS = ("GET", "HEAD")
_READS = ("SELECT", "SAVEPOINT", "RELEASE")
WROTE = "_rapp_statement_not_a_read"
# A SELECT that locks or changes something: it needs the transaction its effect lasts for.
_NOT_PLAIN = re.compile(r"\bFOR\s+(UPDATE|SHARE|NO\s+KEY|KEY)\b|PG_ADVISORY|NEXTVAL|SETVAL|SET_CONFIG|"
                        r"\bINTO\b|\b(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)  # a page's statements are the same strings every time (SQLAlchemy's cache)
def plain_read(statement: str) -> bool:
    """A SELECT (or a WITH ... SELECT) that neither locks nor changes anything: no INSERT, UPDATE or DELETE anywhere in
    it, no row or advisory lock, no sequence or setting changed. Anything else is treated as a write."""
    head = statement.lstrip()[:7].upper()
    return head.startswith(("SELECT", "WITH")) and not _NOT_PLAIN.search(statement)


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany):
    if has_request_context() and not statement.lstrip()[:9].upper().startswith(_READS):
        g.setdefault(WROTE, True)
    fairy = conn.connection
    if fairy.info.get(READS_IN_AUTOCOMMIT) and (not plain_read(statement) or getattr(cursor, "name", None)):
        begin_if_in_autocommit(fairy)  # a write, a lock or a server-side cursor: in a transaction from here on


def _reads_in_autocommit() -> bool:
    return (has_request_context() and request.method in READ_METHODS
            and current_app.config.get("READS_IN_AUTOCOMMIT", True)
            and current_app.config.get("SQLALCHEMY_DATABASE_URI", "").startswith("postgresql"))


@event.listens_for(Pool, "checkout")
def _checkout(dbapi_connection, connection_record, connection_proxy):
    if not type(dbapi_connection).__module__.startswith("psycopg"):
        return
    if connection_record.info.pop(READS_IN_AUTOCOMMIT, None):  # left by a check-in that could not restore it
        dbapi_connection.autocommit = False
    if _reads_in_autocommit() and not dbapi_connection.autocommit:
        dbapi_connection.autocommit = True
        connection_record.info[READS_IN_AUTOCOMMIT] = True


@event.listens_for(Pool, "checkin")
def _checkin(dbapi_connection, connection_record):
    if connection_record is None or dbapi_connection is None or not connection_record.info.get(READS_IN_AUTOCOMMIT):
        return
    try:
        if dbapi_connection.info.transaction_status != IDLE:  # a BEGIN the reset did not end (it always should)
            dbapi_connection.rollback()
        dbapi_connection.autocommit = False
        connection_record.info.pop(READS_IN_AUTOCOMMIT, None)
    except Exception:  # noqa: BLE001 - a broken connection: the next checkout restores it (or the pool replaces it)
        log.warning("a connection could not leave autocommit at check-in", exc_info=True)


def nothing_begun(session) -> bool:
    """Whether the session's connection serves this request's reads in autocommit and no BEGIN was sent: nothing
    to end."""
    if not session.in_transaction():
        return False
    fairy = session.connection().connection
    return bool(fairy.info.get(READS_IN_AUTOCOMMIT)) and fairy.dbapi_connection.info.transaction_status == IDLE


def install(app: Flask, db) -> None:
    if not app.config.get("SQLALCHEMY_DATABASE_URI", "").startswith("postgresql"):
        return

    @app.before_request
    def _fresh_request():  # an app context can serve several requests (tests): each starts unmarked
        g.pop(WROTE, None)

    @app.after_request
    def _commit_reads(resp):
        if request.method not in READ_METHODS or resp.status_code >= 400 or g.get(WROTE):
            return resp
        session = db.session()  # the request's Session (not the scoped proxy)
        if not session.in_transaction() or session.new or session.dirty or session.deleted:
            return resp
        if nothing_begun(session):
            return resp  # nothing began: the connection goes back as it is
        try:
            session.commit()
        except Exception:  # noqa: BLE001 - the transaction could not end well: rolled back as before
            log.warning("read-only request %s: COMMIT failed, rolled back", request.path)
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 - the connection is gone (ops.faults.end_session discards it)
                log.warning("read-only request %s: ROLLBACK failed too", request.path)
        return resp
