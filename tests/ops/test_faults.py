"""A database that is read-only, full, unreachable or restarted: a clear 503, never a traceback,
and the app recovers by itself when the database comes back."""

from __future__ import annotations

import logging
import os

import pytest
import sqlalchemy as sa

from residents_app.extensions import db
from tests.conftest import TEST_DB

from .conftest import add_write_routes, create_schema, db_name, pg_admin

UNAVAILABLE = {"code": "service_unavailable", "status": 503, "message": "服务暂时不可用，请稍后再试", "errors": {}}


@pytest.fixture
def working(make_database_url, make_app):
    url = make_database_url()
    app = make_app(url)
    create_schema(app)
    add_write_routes(app)
    return url, app


def _assert_clean_503(resp, caplog):
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "30"
    assert not any(r.exc_info for r in caplog.records)
    assert "Traceback" not in caplog.text
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].startswith("database unavailable on ")


def make_read_only(url: str, make_app):
    """The same database, opened read-only (a read-only mount, a hot standby)."""
    if TEST_DB == "postgresql":
        pg_admin(f'ALTER DATABASE "{db_name(url)}" SET default_transaction_read_only = on')
        app = make_app(url)
    else:
        app = make_app("sqlite:///file:" + url.removeprefix("sqlite:///") + "?mode=ro&uri=true")
    add_write_routes(app)
    return app


def test_write_to_read_only_database_is_503_json_and_page(working, make_app, caplog):
    url, app = working
    assert app.test_client().post("/api/test-write").status_code == 200
    ro = make_read_only(url, make_app)
    client = ro.test_client()
    assert client.get("/test-read").get_data(as_text=True) == "0"  # reading still works
    with caplog.at_level(logging.INFO):
        resp = client.post("/api/test-write")
    assert resp.get_json() == UNAVAILABLE
    _assert_clean_503(resp, caplog)
    page = client.post("/test-write")
    assert page.status_code == 503
    html = page.get_data(as_text=True)
    assert "<h1>服务暂时不可用，请稍后再试</h1>" in html
    assert "service_unavailable（503）" in html
    assert "Traceback" not in html and "sqlalchemy" not in html.lower()


def test_full_database_is_503(working, caplog):
    url, app = working
    with app.app_context():
        if TEST_DB == "postgresql":
            # A disk-full error as PostgreSQL raises it (SQLSTATE 53100), from a trigger.
            with db.engine.begin() as conn:
                conn.execute(sa.text("""
                    CREATE FUNCTION fake_disk_full() RETURNS trigger AS $$
                    BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                          USING ERRCODE = 'disk_full'; END; $$ LANGUAGE plpgsql"""))
                conn.execute(sa.text("CREATE TRIGGER disk_is_full BEFORE INSERT ON audit_event "
                                     "FOR EACH ROW EXECUTE FUNCTION fake_disk_full()"))
        else:
            # SQLite answers SQLITE_FULL ("database or disk is full") once max_page_count is reached.
            def cap(dbapi_connection, record):
                pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
                dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 1}")

            db.engine.dispose()
            sa.event.listen(db.engine, "connect", cap)
    with caplog.at_level(logging.INFO):
        resp = app.test_client().post("/api/test-write")
    assert resp.get_json() == UNAVAILABLE
    _assert_clean_503(resp, caplog)


def test_unreachable_database_page_for_a_logged_in_user_is_503_not_a_crash(working, make_app, tmp_path, caplog):
    url, app = working
    from residents_app.auth.models import User

    with app.app_context():
        user = User(username="c1", display_name="委员甲", role="admin")
        user.set_password("correct-horse-1")
        db.session.add(user)
        db.session.commit()
    client = app.test_client()
    assert client.post("/api/auth/login", json={"username": "c1", "password": "correct-horse-1"}).status_code == 200
    assert "委员甲" in client.get("/dashboard").get_data(as_text=True)
    with app.app_context():
        db.engine.dispose()
        if TEST_DB == "postgresql":
            pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS false')
        else:
            path = url.removeprefix("sqlite:///")
            os.rename(path, path + ".gone")
            os.makedirs(path)  # a directory where the file was: sqlite cannot open it
    with caplog.at_level(logging.INFO):
        resp = client.get("/dashboard")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 503, html
    assert "<h1>服务暂时不可用，请稍后再试</h1>" in html
    assert "委员甲" not in html  # the page could not load the user, and does not try
    _assert_clean_503(resp, caplog)
    api = client.get("/api/auth/me")
    assert (api.status_code, api.get_json()) == (503, UNAVAILABLE)


def _break(url: str) -> None:
    if TEST_DB == "postgresql":
        # What a restart does: every server process for this database ends; no new one for now.
        pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS false')
        pg_admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", db_name(url))
    else:
        path = url.removeprefix("sqlite:///")
        os.rename(path, path + ".away")
        os.makedirs(path)


def _repair(url: str) -> None:
    if TEST_DB == "postgresql":
        pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS true')
    else:
        path = url.removeprefix("sqlite:///")
        os.rmdir(path)
        os.rename(path + ".away", path)


def test_app_recovers_by_itself_when_the_database_comes_back(working):
    url, app = working
    client = app.test_client()
    assert client.post("/api/test-write").get_json() == {"seq": 1}
    if TEST_DB == "sqlite":
        with app.app_context():
            db.engine.dispose()  # SQLite keeps the open file; a restart of the app is what reopens it
    _break(url)
    resp = client.post("/api/test-write")
    assert (resp.status_code, resp.get_json()) == (503, UNAVAILABLE)
    _repair(url)
    # No restart of the app: the pool's pre-ping (PostgreSQL) or a fresh open (SQLite) reconnects.
    assert client.post("/api/test-write").get_json() == {"seq": 2}
    assert client.post("/api/test-write").get_json() == {"seq": 3}
    if TEST_DB == "postgresql":
        # killed in the middle of a request: 503, and the next request works
        resp = client.get("/api/test-killed")
        assert (resp.status_code, resp.get_json()) == (503, UNAVAILABLE)
        assert client.post("/api/test-write").get_json() == {"seq": 4}


def _kill_connections(url: str) -> None:
    """What a restart does to the pool's connections: their server processes end (the database stays up)."""
    pg_admin("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = %s "
             "AND pid <> pg_backend_pid()", db_name(url))  # each gone (its goodbye sent) before this returns


def test_a_connection_idle_longer_than_the_window_is_pinged_a_recent_one_is_not(working, monkeypatch):
    """residents_app/db.py: no `SELECT 1` before every request; a connection idle for PING_AFTER_IDLE seconds is
    checked (a dead one replaced unseen), one used a moment ago goes straight to work unless the server's goodbye
    is on its socket (replaced unseen too, no round trip); one that died without a word: one 503, and the pool
    starts afresh."""
    import sqlite3

    from residents_app import db as db_module

    url, app = working
    client = app.test_client()
    assert client.post("/api/test-write").get_json() == {"seq": 1}
    if TEST_DB == "sqlite":
        # A file has no server to lose: never pinged, whatever the idle time.
        assert db_module._is_server_connection(sqlite3.connect(":memory:")) is False
        monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
        with app.app_context():
            raw = db.engine.raw_connection()
            assert db_module._is_server_connection(raw.dbapi_connection) is False
            raw.close()
        assert client.post("/api/test-write").get_json() == {"seq": 2}
        return
    import time

    import psycopg

    with app.app_context():
        db.engine.dispose()
        opened = time.monotonic()
        raw = db.engine.raw_connection()  # a new connection counts as just used: alive, not pinged again
        assert opened <= raw.info["rapp_used"] <= time.monotonic()
        raw.close()
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 0.0)
    with app.app_context():
        raw = db.engine.raw_connection()  # pinged (idle past a window of 0 s) and handed out idle: no open transaction
        assert db_module._is_server_connection(raw.dbapi_connection) is True
        assert raw.dbapi_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        raw.dbapi_connection.autocommit = True  # what the tick's closing lanes do (refused inside a transaction)
        raw.dbapi_connection.autocommit = False
        raw.close()
    # Idle past the window (0 s: every checkout): the dead connection is replaced before the request uses it.
    _kill_connections(url)
    assert client.post("/api/test-write").get_json() == {"seq": 2}
    # Within the window (an hour): handed out unchecked; killed, its request answers 503 and the next one works.
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE", 3600.0)
    assert client.post("/api/test-write").get_json() == {"seq": 3}
    _kill_connections(url)  # each server process sends its FATAL message and closes the socket
    assert client.post("/api/test-write").get_json() == {"seq": 4}
    # A death the socket does not show yet (the goodbye still on its way, a network gone): the request fails.
    monkeypatch.setattr(db_module, "_socket_alive", lambda dbapi_connection: True)
    _kill_connections(url)
    resp = client.post("/api/test-write")
    assert (resp.status_code, resp.get_json()) == (503, UNAVAILABLE)
    assert client.post("/api/test-write").get_json() == {"seq": 5}


def test_a_connection_lost_after_the_answer_does_not_turn_it_into_a_500(working, monkeypatch):
    """The server ends the request's connection after the view made its answer (a restart at that moment): the
    closing ROLLBACK (a POST) or a read-only GET's COMMIT (read_commit) fails; the answer goes out as made, the
    lost connection is discarded, and the next request works (ops.faults.end_session)."""
    import time

    from flask import jsonify

    url, app = working

    def answer_then_lose():
        if TEST_DB == "postgresql":
            pid = db.session.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
            pg_admin("SELECT pg_terminate_backend(%s)", pid)
            for _ in range(200):  # gone for sure before the request ends
                if not pg_admin("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid):
                    break
                time.sleep(0.01)
        else:
            db.session.execute(sa.text("SELECT 1")).scalar_one()
        return jsonify({"answered": True}), 201

    app.add_url_rule("/api/test-answer-then-lose", "answer_then_lose", answer_then_lose, methods=["GET", "POST"])
    client = app.test_client()
    if TEST_DB == "sqlite":
        # No server to lose: the session's end fails as a lost connection's ROLLBACK does, once.
        import sqlalchemy.orm

        real_close, failed = sqlalchemy.orm.Session.close, []

        def close_once_lost(self):
            if not failed:
                failed.append(True)
                raise sa.exc.OperationalError("ROLLBACK", {}, Exception("server closed the connection"))
            return real_close(self)

        monkeypatch.setattr(sqlalchemy.orm.Session, "close", close_once_lost)
    for method in ("post", "get"):
        resp = getattr(client, method)("/api/test-answer-then-lose")
        assert (resp.status_code, resp.get_json()) == (201, {"answered": True}), method
        assert client.post("/api/test-write").get_json() == {"seq": {"post": 1, "get": 2}[method]}
