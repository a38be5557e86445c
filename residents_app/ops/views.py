"""/healthz (the process answers) and /readyz (database reachable, migrations at head).

Registering this blueprint also installs the log redaction filter, the database-fault handler and the end of
the request's session that survives a connection lost after the answer (faults.end_session).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from residents_app.ops.faults import end_session, handle_database_error
from residents_app.ops.redaction import install_log_redaction
from residents_app.ops.services import check_readiness

bp = Blueprint("ops", __name__)


@bp.record_once
def _on_register(state) -> None:
    install_log_redaction()
    state.app.register_error_handler(sa.exc.DBAPIError, handle_database_error)
    state.app.teardown_appcontext(end_session)  # runs before Flask-SQLAlchemy's (registered earlier)


def _no_store(resp):
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/healthz")
def healthz():
    """Liveness: no database access, so a database outage does not get the process restarted."""
    return _no_store(jsonify({"status": "ok"}))


@bp.get("/readyz")
def readyz():
    """Readiness: take traffic only when the database answers and its schema is the code's."""
    result = check_readiness()
    if result.ok:
        return _no_store(jsonify({"status": "ok", "revision": result.revision}))
    message = "服务尚未就绪：" + "；".join(result.problems.values())
    resp = jsonify({"code": "not_ready", "status": 503, "message": message, "errors": result.problems})
    resp.status_code = 503
    resp.headers["Retry-After"] = "10"
    return _no_store(resp)
