"""residents_app/read_commit.py: a GET that only read ends with COMMIT on PostgreSQL (psycopg keeps its prepared
statements); anything that may have written still ends with the rollback, on both databases."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from residents_app import read_commit
from residents_app.extensions import db
from residents_app.registry.models import StreetOffice
from tests.conftest import TEST_DB

from .conftest import create_schema


def _app(make_database_url, make_app):
    app = make_app(make_database_url())
    create_schema(app)
    with app.app_context():
        db.session.add(StreetOffice(code="S1", name="东街道", district="东区"))
        db.session.commit()

    def read():
        return jsonify({"offices": db.session.execute(sa.select(sa.func.count(StreetOffice.id))).scalar_one()})

    def flushed():  # a GET that flushes a new row and never commits it
        db.session.add(StreetOffice(code="S2", name="西街道", district="西区"))
        db.session.flush()
        return jsonify({"ok": True})

    def text_insert():  # a statement that is not a SELECT, outside the ORM
        db.session.execute(sa.text("INSERT INTO street_office (code, name, district) VALUES ('S3', '南街道', '')"))
        return jsonify({"ok": True})

    def dirty():  # an object changed in memory (for display), never flushed
        office = db.session.execute(sa.select(StreetOffice)).scalar_one()
        office.name = "改过的名字"
        return jsonify({"ok": True})

    def not_found():
        db.session.execute(sa.select(StreetOffice)).all()
        return jsonify({"code": "not_found"}), 404

    for rule, view in (("/t/read", read), ("/t/flushed", flushed), ("/t/text-insert", text_insert),
                       ("/t/dirty", dirty), ("/t/not-found", not_found)):
        app.add_url_rule(rule, rule, view)
    return app


def _prepared(app) -> list[str]:
    """The statements the pooled connection has prepared on the server (PostgreSQL)."""
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            return [r[0] for r in raw.dbapi_connection.execute("SELECT statement FROM pg_prepared_statements")]
        finally:
            raw.close()


def test_gets_that_may_have_written_keep_the_rollback(make_database_url, make_app):
    app = _app(make_database_url, make_app)
    client = app.test_client()
    for url in ("/t/flushed", "/t/text-insert", "/t/dirty", "/t/not-found"):
        assert client.get(url).status_code in (200, 404)
    with app.app_context():
        rows = db.session.execute(sa.select(StreetOffice.code, StreetOffice.name)).all()
    assert rows == [("S1", "东街道")]  # nothing flushed, inserted or changed by a GET was kept
    assert client.get("/t/read").get_json() == {"offices": 1}


def test_a_get_that_only_read_commits_and_keeps_prepared_statements(make_database_url, make_app, monkeypatch):
    app = _app(make_database_url, make_app)
    client = app.test_client()
    if TEST_DB == "sqlite":
        # Not installed: SQLite's module keeps its own statement cache; its requests end as they always did.
        assert not any(getattr(f, "__name__", "") == "_commit_reads" for f in app.after_request_funcs.get(None, []))
        assert [client.get("/t/read").get_json() for _ in range(6)] == [{"offices": 1}] * 6
        return
    # Ended by ROLLBACK, psycopg forgets what it counted and prepared: the 6th run is still not prepared.
    monkeypatch.setattr(read_commit, "READ_METHODS", ())
    assert [client.get("/t/read").get_json() for _ in range(6)] == [{"offices": 1}] * 6
    assert _prepared(app) == []
    # Ended by COMMIT: from the 5th run psycopg prepares the statement and the server keeps its plan.
    monkeypatch.setattr(read_commit, "READ_METHODS", ("GET", "HEAD"))
    assert [client.get("/t/read").get_json() for _ in range(6)] == [{"offices": 1}] * 6
    prepared = _prepared(app)
    assert len(prepared) == 1 and prepared[0].startswith("SELECT count(street_office.id)")
    # A GET that wrote in between ends with ROLLBACK again: the prepared statements are gone with it.
    client.get("/t/flushed")
    assert _prepared(app) == []
