"""residents_app/read_commit.py, reads in autocommit (PostgreSQL): a GET's plain SELECTs run outside any transaction
(no BEGIN round trip); the first statement that is not a plain read gets a BEGIN before it, so a GET's writes are
still one transaction; other methods, and the option turned off, keep psycopg's own transactions. On SQLite the
same views give the same results (nothing is changed there)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import jsonify

from residents_app import read_commit
from residents_app.extensions import db
from residents_app.registry.models import StreetOffice
from residents_app.rounds import castpath
from tests.conftest import TEST_DB

from .conftest import create_schema

PG = TEST_DB == "postgresql"


def _status() -> str:
    """The server's transaction status of the request's connection: IDLE (no transaction) or INTRANS."""
    raw = db.session.connection().connection.dbapi_connection
    if not PG:
        return "INTRANS" if raw.in_transaction else "IDLE"
    return raw.info.transaction_status.name


def _offices() -> list[str]:
    return list(db.session.execute(sa.select(StreetOffice.code).order_by(StreetOffice.code)).scalars())


def _app(make_database_url, make_app, **config):
    app = make_app(make_database_url(), **config)
    create_schema(app)
    with app.app_context():
        db.session.add(StreetOffice(code="S1", name="东街道", district="东区"))
        db.session.commit()

    def read():
        return jsonify({"offices": _offices(), "status": _status()})

    def write_then_read():  # an INSERT, then a read that must see it: one transaction, committed by the view
        db.session.execute(sa.text("INSERT INTO street_office (code, name, district) VALUES ('S2', '西街道', '')"))
        during = _status()
        seen = _offices()
        db.session.commit()
        return jsonify({"during": during, "seen": seen, "after": _status()})

    def two_writes_then_fail():  # two inserts, then an error answer: neither is kept
        db.session.add(StreetOffice(code="S3", name="南街道", district=""))
        db.session.flush()
        db.session.add(StreetOffice(code="S4", name="北街道", district=""))
        db.session.flush()
        return jsonify({"status": _status()}), 409

    def lock():  # a row lock lasts for a transaction: BEGIN first
        db.session.execute(sa.select(StreetOffice.id).where(StreetOffice.code == "S1").with_for_update()).all()
        return jsonify({"status": _status()})

    def stream():  # yield_per: a server-side cursor on PostgreSQL, which needs a transaction
        rows = db.session.execute(sa.select(StreetOffice.code).execution_options(yield_per=1))
        return jsonify({"codes": [r[0] for r in rows], "status": _status()})

    def driver_write():  # a statement on the driver's own cursor (rounds/castpath.py) after a read: BEGIN first
        _offices()
        cur = castpath._cursor(db.session.connection())
        cur.execute("INSERT INTO street_office (code, name, district) VALUES ('S5', '中街道', '')")
        return jsonify({"status": _status()}), 409  # not committed: the row goes with the rollback

    for rule, view, methods in (("/t/driver", driver_write, ["GET"]), ("/t/read", read, ["GET", "POST"]),
                                ("/t/write", write_then_read, ["GET"]),
                                ("/t/fail", two_writes_then_fail, ["GET"]), ("/t/lock", lock, ["GET"]),
                                ("/t/stream", stream, ["GET"])):
        app.add_url_rule(rule, rule, view, methods=methods)
    return app


def test_plain_reads():
    assert read_commit.plain_read("SELECT a FROM t WHERE id = %(id)s")
    assert read_commit.plain_read("  select count(*) FROM round_count GROUP BY choice")
    assert read_commit.plain_read("SELECT updated_at, before_update FROM t")  # names, not keywords
    assert read_commit.plain_read("WITH page AS (SELECT id FROM roll_entry LIMIT 50) SELECT * FROM page")
    for statement in ("INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t",
                      "WITH x AS (UPDATE t SET a = 1 RETURNING id) SELECT * FROM x",
                      "WITH x AS (DELETE FROM t RETURNING id) SELECT count(*) FROM x", "SAVEPOINT sa_1",
                      "SET LOCAL synchronous_commit = off",
                      "SELECT id FROM round WHERE id = 1 FOR UPDATE", "SELECT id FROM t FOR NO KEY UPDATE",
                      "SELECT id FROM t\nFOR SHARE", "SELECT id FROM t FOR KEY SHARE",
                      "SELECT pg_advisory_xact_lock(1, 2)", "SELECT nextval('s')", "SELECT setval('s', 3)",
                      "SELECT set_config('a', 'b', true)", "SELECT a INTO t2 FROM t", "BEGIN", ""):
        assert not read_commit.plain_read(statement), statement


def test_a_get_reads_outside_any_transaction(make_database_url, make_app):
    app = _app(make_database_url, make_app)
    client = app.test_client()
    for _ in range(3):  # the same pooled connection, each time back in autocommit for the GET
        assert client.get("/t/read").get_json() == {"offices": ["S1"], "status": "IDLE" if PG else "INTRANS"}
    # A POST keeps the driver's transaction, and the connection left autocommit when it went back to the pool.
    assert client.post("/t/read").get_json() == {"offices": ["S1"], "status": "INTRANS"}
    with app.app_context():
        raw = db.engine.raw_connection()
        try:
            assert not PG or raw.dbapi_connection.autocommit is False
        finally:
            raw.close()


def test_turned_off_a_get_keeps_the_transaction(make_database_url, make_app):
    app = _app(make_database_url, make_app, READS_IN_AUTOCOMMIT=False)
    assert app.test_client().get("/t/read").get_json() == {"offices": ["S1"], "status": "INTRANS"}


def test_a_get_that_writes_does_it_in_one_transaction(make_database_url, make_app):
    app = _app(make_database_url, make_app)
    client = app.test_client()
    assert client.get("/t/write").get_json() == {"during": "INTRANS", "seen": ["S1", "S2"],
                                                 "after": "IDLE" if PG else "INTRANS"}
    assert client.get("/t/fail").get_json() == {"status": "INTRANS"}
    assert client.get("/t/lock").get_json() == {"status": "INTRANS"}
    assert client.get("/t/driver").get_json() == {"status": "INTRANS"}
    with app.app_context():
        assert _offices() == ["S1", "S2"]  # the committed write kept; both flushed rows of the failed GET gone


def test_a_streamed_read_in_a_get(make_database_url, make_app):
    app = _app(make_database_url, make_app)
    client = app.test_client()
    for _ in range(2):  # the server-side cursor got its transaction; the connection is fine afterwards
        assert client.get("/t/stream").get_json() == {"codes": ["S1"], "status": "INTRANS"}
        assert client.get("/t/read").get_json() == {"offices": ["S1"], "status": "IDLE" if PG else "INTRANS"}
