"""A database that is down, read-only or full answers 503 in the one error shape, never a traceback.

errors.py maps OperationalError to 503; PostgreSQL reports a read-only database
(default_transaction_read_only, a hot standby) as SQLSTATE 25006, which psycopg raises as
InternalError, and the error page itself needs the logged-in user, which needs the database.
This handler (registered for DBAPIError, so more specific than errors.py's Exception handler)
covers both.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import g, request

log = logging.getLogger(__name__)

# SQLSTATE classes/codes meaning "the database cannot serve now" rather than "this request is wrong".
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "25006", "40001", "40P01", "55P03", "57014")


def is_database_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa.exc.OperationalError):
        return True
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)
    return False


def handle_database_error(exc: sa.exc.DBAPIError):
    from flask_login import AnonymousUserMixin

    from residents_app.errors import HTTP_CODES, error_response, number_out_of_range, out_of_range_response
    from residents_app.extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection itself may be gone
        log.warning("rollback after database error failed")
    if number_out_of_range(exc):
        return out_of_range_response(exc)
    if not is_database_unavailable(exc):
        log.exception("unhandled database error on %s %s", request.method, request.path)
        code, message = HTTP_CODES[500]
        return error_response(code, 500, message)
    sqlstate = getattr(exc.orig, "sqlstate", None)
    log.error("database unavailable on %s %s: %s %s", request.method, request.path,
              type(exc.orig).__name__, sqlstate or "")
    # The error page shows the logged-in user's name; loading it would hit the same database.
    if "_login_user" not in g:
        g._login_user = AnonymousUserMixin()
    request.environ.setdefault("residents_app.resident", None)  # see auth.resident.current_resident
    code, message = HTTP_CODES[503]
    resp = error_response(code, 503, message)
    if isinstance(resp, tuple):
        body, status = resp
        return body, status, {"Retry-After": "30"}
    resp.headers["Retry-After"] = "30"
    return resp


def end_session(exc) -> None:
    """The request's session ended as Flask-SQLAlchemy ends it (at the app context's end), just before it does.

    A server that went away between the view's last statement and this end (a restart: the connection is
    terminated) makes the closing ROLLBACK fail after the answer was already made, and an error raised here would
    turn that answer into a 500. There is nothing left to undo on a connection the server has closed: the error is
    logged, the connection discarded (invalidated, no ROLLBACK sent) and the answer goes out as it was."""
    from residents_app.extensions import db

    try:
        db.session.remove()
    except sa.exc.DBAPIError as err:
        log.warning("database connection lost at the end of a request: %s", type(err.orig).__name__)
        try:
            db.session().invalidate()
        except Exception:  # noqa: BLE001 - the session is dropped below whatever state it is in
            log.warning("discarding the lost connection failed")
        db.session.registry.clear()
