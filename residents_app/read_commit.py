"""A GET that only read ends its transaction with COMMIT, not ROLLBACK (PostgreSQL).

psycopg forgets its prepared statements at every ROLLBACK (a table a statement uses might have been made in the
transaction rolled back), and Flask-SQLAlchemy ends every request's transaction with one: no statement of a page
was ever prepared, and every view had the server parse and plan every statement again. To the database COMMIT
and ROLLBACK of a transaction that wrote nothing are the same; ending those with COMMIT lets psycopg prepare what a
pooled connection runs often (from the 5th run) and the server reuse the plans.

Only when nothing can have been written: a GET or HEAD answered below 400; no statement other than a SELECT (or
the test suite's SAVEPOINT / RELEASE) sent during the request, so any INSERT, UPDATE, DELETE, flush, lock or text
statement that is not a SELECT keeps the rollback; nothing pending in the session (an object changed in memory
for display is never saved). If the COMMIT itself fails the transaction is rolled back as before. SQLite is left
alone (its module keeps its own statement cache).
"""

from __future__ import annotations

import logging

from flask import Flask, g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

READ_METHODS = ("GET", "HEAD")
_READS = ("SELECT", "SAVEPOINT", "RELEASE")
WROTE = "_rapp_statement_not_a_read"


@event.listens_for(Engine, "before_cursor_execute")
def _note_writes(conn, cursor, statement, parameters, context, executemany):
    if has_request_context() and not statement.lstrip()[:9].upper().startswith(_READS):
        g.setdefault(WROTE, True)


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
        try:
            session.commit()
        except Exception:  # noqa: BLE001 - the transaction could not end well: rolled back as before
            log.warning("read-only request %s: COMMIT failed, rolled back", request.path)
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 - the connection is gone (ops.faults.end_session discards it)
                log.warning("read-only request %s: ROLLBACK failed too", request.path)
        return resp
