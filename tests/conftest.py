"""Fixtures: app (one per session, on SQLite or PostgreSQL), db rolled back per test, client.

RAPP_TEST_DB=sqlite (default) uses a temporary SQLite file; RAPP_TEST_DB=postgresql creates a
scratch database on the local server (RAPP_PG_ADMIN_URL) and drops it at the end. If PostgreSQL
cannot be reached the run fails (it never silently skips).
"""

from __future__ import annotations

import itertools
import os
import threading
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from flask_sqlalchemy.session import Session as FlaskSession

from residents_app import create_app
from residents_app.extensions import db as _db
from residents_app.extensions import limiter

TEST_DB = os.environ.get("RAPP_TEST_DB", "sqlite")
PG_ADMIN = os.environ.get("RAPP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _create_pg_database() -> tuple[str, callable]:
    import psycopg
    from psycopg import sql

    name = f"rapp_test_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:  # fail loudly: never skip the PostgreSQL run
        pytest.exit(f"PostgreSQL is required for RAPP_TEST_DB=postgresql but unreachable: {exc}", returncode=3)
    base = PG_ADMIN.rsplit("/", 1)[0]

    def drop():
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return f"{base}/{name}", drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if TEST_DB == "postgresql":
        url, drop = _create_pg_database()
        yield url
        drop()
    else:
        path = tmp_path_factory.mktemp("db") / "test.db"
        yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def app(database_url):
    app = create_app({
        "TESTING": True,
        "AUDIT_SEALER": "inline",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "SERVER_NAME": None,
    })
    with app.app_context():
        _db.create_all()  # tests only; the app itself uses migrations
        from residents_app.audit import db_guards

        db_guards.install(_db.engine)
    yield app
    with app.app_context():
        _db.session.remove()
        _db.engine.dispose()


class _ConnectionBoundSession(FlaskSession):
    """Flask-SQLAlchemy's session, but always on the test's connection (its get_bind ignores bind=)."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        return self.bind


@pytest.fixture
def db(app):
    """A session whose work is rolled back after the test, even what the code under test commits."""
    with app.app_context():
        connection = _db.engine.connect()
        outer = connection.begin()
        original = _db.session
        _db.session = _db._make_scoped_session({
            "bind": connection,
            "join_transaction_mode": "create_savepoint",
            "class_": _ConnectionBoundSession,
        })
        try:
            yield _db
        finally:
            _db.session.remove()
            _db.session = original
            outer.rollback()
            connection.close()


_addresses = itertools.count(1)


@pytest.fixture
def client(app, db):
    """A test client with its own client address, so rate limits do not leak between tests."""
    limiter.reset()
    n = next(_addresses)
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
    return c


@pytest.fixture
def csrf_app(app):
    """Temporarily turn CSRF checking on (it is off for the rest of the suite)."""
    app.config["WTF_CSRF_ENABLED"] = True
    yield app
    app.config["WTF_CSRF_ENABLED"] = False


NOW = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


@pytest.fixture
def now():
    return NOW


class Factory:
    """Builds register data directly through the models (fast, explicit)."""

    def __init__(self, db):
        self.db = db
        self._n = itertools.count(1)

    def street_office(self, code=None, name="测试街道"):
        from residents_app.registry.models import StreetOffice

        n = next(self._n)
        office = StreetOffice(code=code or f"S{n}", name=f"{name}{n}", district="测试区")
        self.db.session.add(office)
        self.db.session.flush()
        return office

    def estate(self, office=None, code=None, name="测试小区", buildings=None):
        """buildings: {"1幢": [("101", "88.50"), ...]} -> each unit gets one owner."""
        from residents_app.registry.models import Building, Estate, Owner, Ownership, Unit

        office = office or self.street_office()
        n = next(self._n)
        estate = Estate(code=code or f"E{n}", name=f"{name}{n}", street_office_id=office.id)
        self.db.session.add(estate)
        self.db.session.flush()
        for bname, units in (buildings or {}).items():
            b = Building(estate_id=estate.id, name=bname)
            self.db.session.add(b)
            self.db.session.flush()
            for number, area in units:
                u = Unit(estate_id=estate.id, building_id=b.id, number=number, title_area_m2=Decimal(area))
                self.db.session.add(u)
                self.db.session.flush()
                k = next(self._n)
                o = Owner(estate_id=estate.id, name=f"业主{k}", phone=f"139{k:08d}")
                self.db.session.add(o)
                self.db.session.flush()
                self.db.session.add(Ownership(unit_id=u.id, owner_id=o.id))
        self.db.session.flush()
        return estate

    def user(self, role, *, estate=None, office=None, username=None, password="correct-horse-1"):
        from residents_app.auth.models import User

        n = next(self._n)
        user = User(username=username or f"{role}{n}", display_name=f"{role}{n}", role=role)
        if role == "committee":
            user.estate_id = estate.id
            user.street_office_id = estate.street_office_id
        if role == "street":
            user.street_office_id = (office or estate.street_office).id
        user.set_password(password)
        self.db.session.add(user)
        self.db.session.flush()
        return user


@pytest.fixture
def factory(db):
    return Factory(db)


def login(client, user, password="correct-horse-1"):
    resp = client.post("/api/auth/login", json={"username": user.username, "password": password})
    assert resp.status_code == 200, resp.get_json()
    return resp


@pytest.fixture
def login_as():
    return login


# ---- Live server and headless Chromium (end-to-end tests) ------------------------------------

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def live_app(app):
    """The session app with real commits (no rollback); every table is emptied afterwards. Rate limits start
    fresh, as for `client`: one test's sign-ins must not count against the next one's."""
    limiter.reset()
    yield app
    with app.app_context():
        _db.session.remove()
        truncate_all()


def truncate_all() -> None:
    tables = [t.name for t in reversed(_db.metadata.sorted_tables)]
    with _db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            from residents_app.audit import db_guards

            with db_guards.allow_writes(conn):
                for t in tables:
                    conn.execute(sa.text(f'DELETE FROM "{t}"'))


@pytest.fixture
def live_server(live_app):
    from werkzeug.serving import make_server

    live_app.config["WTF_CSRF_ENABLED"] = True
    srv = make_server("127.0.0.1", 0, live_app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}"
    srv.shutdown()
    live_app.config["WTF_CSRF_ENABLED"] = False


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def phone_page(browser):
    ctx = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
    yield ctx.new_page()
    ctx.close()


@pytest.fixture
def laptop_page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    yield ctx.new_page()
    ctx.close()


def browser_login(page, base_url: str, username: str, password: str = "correct-horse-1") -> None:
    """Sign a staff user in through the login page and wait for the landing page (the committee's estate
    dashboard, the street office's district view)."""
    import re

    page.goto(base_url + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("#login")
    page.wait_for_url(re.compile(r".*/(dashboard|district)$"))


def pytest_addoption(parser):
    parser.addoption("--screenshots", action="store_true", default=False,
                     help="write the end-to-end tests' screenshots to docs/screenshots (otherwise a temporary folder)")


@pytest.fixture
def screenshot_dir(request, tmp_path):
    """docs/screenshots only on request (`pytest --screenshots` or RAPP_SCREENSHOTS=1): a test run leaves the
    work tree clean."""
    if request.config.getoption("--screenshots") or os.environ.get("RAPP_SCREENSHOTS") == "1":
        path = os.path.join(os.path.dirname(__file__), "..", "docs", "screenshots")
        os.makedirs(path, exist_ok=True)
        return path
    return str(tmp_path)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A private redis-server for this test session (server-side sessions, shared rate limits)."""
    from tests.processes import start_redis, stop

    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    yield url
    stop(proc)
