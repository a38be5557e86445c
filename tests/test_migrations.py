"""Migrations build exactly the schema the models describe, on the database under test."""

from __future__ import annotations

import os

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from residents_app import create_app
from residents_app.extensions import db

from .conftest import PG_ADMIN, TEST_DB


@pytest.fixture
def empty_database_url(tmp_path):
    if TEST_DB != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"rapp_mig_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_upgrade_matches_models_and_downgrades(empty_database_url):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == []
        with db.engine.begin() as conn:
            # the append-only guard is installed by the migration, not only by tests
            conn.execute(sa.text(
                "INSERT INTO audit_event (chain, seq, kind, at, actor, subject_type, subject_id, data, prev_hash, hash)"
                " VALUES (0, 1, 'k', CURRENT_TIMESTAMP, 'a', '', '', '{}', 'p', 'h')"))
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE audit_event SET kind = 'x'"))
        downgrade(revision="base")
        with db.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["alembic_version"]
        db.engine.dispose()
