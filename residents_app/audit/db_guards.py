"""Database-level refusal of UPDATE and DELETE on audit_event, and of UPDATE on audit_pending (triggers on
both databases; a pending event is only ever inserted, then moved onto its chain by the sealer).

The migrations install the same statements (each migration names the tables it guards, so an old revision
keeps installing exactly what it installed); tests call install() after create_all().
"""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa

ALL_TABLES = ("audit_event", "audit_pending")

_PG = {
    "audit_event": (
        [
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
        ],
        [
            "DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event",
            "DROP FUNCTION IF EXISTS audit_event_append_only()",
        ],
    ),
    "audit_pending": (
        [
            """
            CREATE OR REPLACE FUNCTION audit_pending_insert_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_pending is insert-only (% refused)', TG_OP;
            END;
            $$ LANGUAGE plpgsql
            """,
            "DROP TRIGGER IF EXISTS audit_pending_no_update ON audit_pending",
            """
            CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
            FOR EACH ROW EXECUTE FUNCTION audit_pending_insert_only()
            """,
        ],
        [
            "DROP TRIGGER IF EXISTS audit_pending_no_update ON audit_pending",
            "DROP FUNCTION IF EXISTS audit_pending_insert_only()",
        ],
    ),
}
_SQLITE = {
    "audit_event": (
        [
            "DROP TRIGGER IF EXISTS audit_event_no_update",
            "DROP TRIGGER IF EXISTS audit_event_no_delete",
            """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
               BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (UPDATE refused)'); END""",
            """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
               BEGIN SELECT RAISE(ABORT, 'audit_event is append-only (DELETE refused)'); END""",
        ],
        [
            "DROP TRIGGER IF EXISTS audit_event_no_update",
            "DROP TRIGGER IF EXISTS audit_event_no_delete",
        ],
    ),
    "audit_pending": (
        [
            "DROP TRIGGER IF EXISTS audit_pending_no_update",
            """CREATE TRIGGER audit_pending_no_update BEFORE UPDATE ON audit_pending
               BEGIN SELECT RAISE(ABORT, 'audit_pending is insert-only (UPDATE refused)'); END""",
        ],
        ["DROP TRIGGER IF EXISTS audit_pending_no_update"],
    ),
}


def statements(dialect: str, *, install_: bool = True, tables: tuple[str, ...] = ALL_TABLES) -> list[str]:
    groups = _PG if dialect == "postgresql" else _SQLITE
    out: list[str] = []
    for table in tables if install_ else tuple(reversed(tables)):
        out.extend(groups[table][0 if install_ else 1])
    return out


def install(engine_or_conn, tables: tuple[str, ...] = ALL_TABLES) -> None:
    if isinstance(engine_or_conn, sa.engine.Engine):
        with engine_or_conn.begin() as conn:
            _run(conn, statements(conn.dialect.name, tables=tables))
    else:
        _run(engine_or_conn, statements(engine_or_conn.dialect.name, tables=tables))


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
        _run(conn, statements("sqlite", install_=False))
        yield
        _run(conn, statements("sqlite"))
