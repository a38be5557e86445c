"""Read replicas: with DATABASE_REPLICA_URL set, the read-only pages of the district and the city read from it.

config.replica_binds makes the replica Flask-SQLAlchemy's bind "replica". A view decorated with
@reads_replica marks the request's session; while marked, the session sends its SELECT statements to the
replica engine; every write (a flush, an UPDATE, a text statement) still goes to the primary. The signed-in
user is loaded before the view runs (its roles and session version are checked on the primary). Without the
setting the decorator changes nothing. A replica lags its primary by the replication delay: only pages whose
figures may be seconds old use it (never the ballot, the tally or the verification desk).
"""

from __future__ import annotations

import functools

from flask import current_app
from flask_sqlalchemy.session import Session as FlaskSession

READ_REPLICA = "residents_app.read_replica"
BIND = "replica"


class Session(FlaskSession):
    """Flask-SQLAlchemy's session; SELECTs go to the replica while the session is marked (reads_replica)."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.info.get(READ_REPLICA) and getattr(clause, "is_select", False):
            engine = self._db.engines.get(BIND)
            if engine is not None:
                return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def replica_configured() -> bool:
    return BIND in (current_app.config.get("SQLALCHEMY_BINDS") or {})


def reads_replica(view):
    """The view's reads come from the replica when one is configured (see the module's docstring)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not replica_configured():
            return view(*args, **kwargs)
        session = current_app.extensions["sqlalchemy"].session
        session.info[READ_REPLICA] = True
        try:
            return view(*args, **kwargs)
        finally:
            session.info.pop(READ_REPLICA, None)

    return wrapper
