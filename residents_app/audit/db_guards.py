"""Database-level refusal of UPDATE and DELETE on audit_event (triggers on both databases).

The migration installs the same statements; tests call install() after create_all().
"""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

PG_INSTALL = [
    """
    CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_event is append-only (% refused)', TG_OP;
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event",
    """
    CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event
    FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()
    """,
]
PG_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event",
    "DROP FUNCTION IF EXISTS audit_event_append_only()",
]
SQLITE_INSTALL = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (UPDATE refused)'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (DELETE refused)'); END""",
]
SQLITE_UNINSTALL = [
    "DROP TRIGGER IF EXISTS audit_event_no_update",
    "DROP TRIGGER IF EXISTS audit_event_no_delete",
]


def statements(dialect: str, *, install_: bool = True) -> list[str]:
    if dialect == "postgresql":
        return PG_INSTALL if install_ else PG_UNINSTALL
    return SQLITE_INSTALL if install_ else SQLITE_UNINSTALL


def install(engine_or_conn) -> None:
    if isinstance(engine_or_conn, sa.engine.Engine):
        with engine_or_conn.begin() as conn:
            _run(conn, statements(conn.dialect.name))
    else:
        _run(engine_or_conn, statements(engine_or_conn.dialect.name))


def _run(conn, stmts):
    for s in stmts:
        conn.execute(sa.text(s))


@contextmanager
def allow_writes(conn):
    """Lift the guard inside one transaction (tests that tamper on purpose, and test cleanup)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
    else:
        _run(conn, SQLITE_UNINSTALL)
        yield
        _run(conn, SQLITE_INSTALL)
