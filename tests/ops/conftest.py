"""Separate, really committed databases for backup/restore, readiness and fault tests."""

from __future__ import annotations

import itertools
import os

import pytest

from residents_app import create_app
from residents_app.extensions import db as _db
from tests.conftest import PG_ADMIN, TEST_DB

_n = itertools.count(1)

# The deployment of several app nodes (nginx, gunicorn, Redis) is PostgreSQL's (advisory locks, replicas): on the
# SQLite pass it is not collected at all (never reported as skipped).
collect_ignore = [] if TEST_DB == "postgresql" else ["test_multinode.py"]


@pytest.fixture
def make_database_url(tmp_path):
    """Factory: a new empty database on the backend under test; all dropped after the test."""
    created: list[str] = []

    def make() -> str:
        n = next(_n)
        if TEST_DB != "postgresql":
            return f"sqlite:///{tmp_path / f'ops_{n}.db'}"
        import psycopg
        from psycopg import sql

        name = f"rapp_ops_{os.getpid()}_{n}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        created.append(name)
        return PG_ADMIN.rsplit("/", 1)[0] + "/" + name

    yield make
    if created:
        import psycopg
        from psycopg import sql

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in created:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def make_app():
    """Factory: create_app on a given database URL; engines disposed after the test."""
    apps = []

    def make(url: str, **extra):
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "ops-test",
                          "WTF_CSRF_ENABLED": False, **extra})
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            _db.session.remove()
            _db.engine.dispose()


def create_schema(app) -> None:
    from residents_app.audit import db_guards

    with app.app_context():
        # The default database only: an app with a replica (test_multinode) leaves its bind key in the shared
        # extension's metadatas, which create_all() would otherwise try on every later app.
        _db.create_all(bind_key=None)
        db_guards.install(_db.engine)


def add_write_routes(app) -> None:
    """Test-only routes standing in for any endpoint that writes (a vote, an import, a pledge)."""
    from flask import jsonify, render_template_string

    from residents_app.audit.services import record
    from residents_app.db import utcnow

    def write():
        ev = record("test.write", chain=0, actor="system", now=utcnow(), data={"blob": "x" * 20000})
        _db.session.commit()
        return jsonify({"seq": ev.seq})

    def page():
        from residents_app.registry.models import Estate

        count = _db.session.query(Estate).count()
        return render_template_string("{{ n }}", n=count)

    def suicide():
        # The server ends this very connection mid-request, as a restart would.
        _db.session.execute(_sa().text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return jsonify({"unreachable": True})

    app.add_url_rule("/api/test-write", "test_write", write, methods=["POST"])
    app.add_url_rule("/test-write", "test_write_page", write, methods=["POST"])
    app.add_url_rule("/test-read", "test_read", page)
    app.add_url_rule("/api/test-killed", "test_killed", suicide)


def _sa():
    import sqlalchemy

    return sqlalchemy


def pg_admin(sql_text: str, *params) -> list:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        cur = conn.execute(sql_text, params or None)
        return cur.fetchall() if cur.description else []


def db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]
