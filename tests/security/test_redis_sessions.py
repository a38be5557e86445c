"""Server-side sessions in Redis (REDIS_URL): one session across app nodes, ended everywhere, never fixed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from residents_app import create_app
from residents_app.config import load_config
from residents_app.extensions import db as _db
from residents_app.sessions import KEY_PREFIX, RedisSessionInterface, SessionInterface

SID = re.compile(r"^[A-Za-z0-9_-]{43}$")
MONTH = 31 * 24 * 3600  # Flask's default PERMANENT_SESSION_LIFETIME


@pytest.fixture
def nodes(db, database_url, redis_url):
    """Two app instances ("nodes") sharing the database and Redis, as two gunicorn processes would."""
    apps = [create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "test-secret",
                        "WTF_CSRF_ENABLED": False, "AUDIT_SEALER": "inline", "REDIS_URL": redis_url})
            for _ in range(2)]
    yield apps
    for a in apps:
        with a.app_context():
            _db.engines[None].dispose()


@pytest.fixture
def store(redis_url):
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


def _sid(client) -> str | None:
    cookie = client.get_cookie("session")
    return None if cookie is None else cookie.value


def _login(client, user):
    resp = client.post("/api/auth/login", json={"username": user.username, "password": "correct-horse-1"})
    assert resp.status_code == 200, resp.get_json()
    return resp


def test_a_session_opened_on_one_node_works_on_the_other_and_ends_on_both(nodes, factory, store):
    a_app, b_app = nodes
    assert isinstance(a_app.session_interface, RedisSessionInterface)
    user = factory.user("street", office=factory.street_office())
    a, b = a_app.test_client(), b_app.test_client()
    _login(a, user)
    sid = _sid(a)
    assert SID.match(sid)  # the cookie is an opaque id: the contents are in Redis, not in the browser
    assert 0 <= MONTH - store.ttl(KEY_PREFIX + sid) <= 5  # lives as long as a session may
    b.set_cookie("session", sid)
    me = b.get("/api/auth/me")
    assert me.status_code == 200 and me.get_json()["username"] == user.username
    assert b.post("/api/auth/logout").status_code == 204  # signed out on node B ...
    assert store.exists(KEY_PREFIX + sid) == 0
    assert a.get("/api/auth/me").status_code == 401  # ... is signed out on node A, with the same cookie
    assert _sid(b) != sid and b.get("/api/auth/me").status_code == 401  # what remains has a new id


def test_the_session_id_is_replaced_when_someone_signs_in(nodes, factory, store):
    """An id planted in a victim's browser (one the attacker got from the site) never becomes the victim's."""
    a_app, b_app = nodes
    user = factory.user("street", office=factory.street_office())
    planted = "p" * 43
    store.set(KEY_PREFIX + planted, '{"lang": "zh"}', ex=60)  # what the attacker's own visit stored
    victim, attacker = a_app.test_client(), b_app.test_client()
    victim.set_cookie("session", planted)
    _login(victim, user)
    sid = _sid(victim)
    assert SID.match(sid) and sid != planted
    assert store.exists(KEY_PREFIX + planted) == 0
    attacker.set_cookie("session", planted)
    assert attacker.get("/api/auth/me").status_code == 401
    assert victim.get("/api/auth/me").status_code == 200
    assert _sid(victim) == sid  # not rotated again while the same person stays signed in


@pytest.mark.parametrize("cookie", ["abc", "x" * 43, "../" + "a" * 40, "a.b.c"])
def test_an_unknown_or_malformed_cookie_is_a_new_empty_session(nodes, store, cookie):
    client = nodes[0].test_client()
    client.set_cookie("session", cookie)
    resp = client.get("/api/auth/me")
    assert resp.status_code == 401 and resp.get_json()["code"] == "unauthorized"
    assert _sid(client) == cookie  # nothing stored, nothing set: the browser keeps what it sent


def test_a_damaged_entry_in_redis_is_a_new_empty_session(nodes, store):
    sid = "d" * 43
    store.set(KEY_PREFIX + sid, b"\xff not json", ex=60)
    client = nodes[0].test_client()
    client.set_cookie("session", sid)
    assert client.get("/api/auth/me").status_code == 401


def test_without_redis_the_session_is_the_signed_cookie(app):
    assert type(app.session_interface) is SessionInterface


def test_redis_url_is_the_rate_limit_store_unless_another_is_named(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("SECRET_KEY", "k")
    monkeypatch.delenv("RATELIMIT_STORAGE_URI", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert load_config(tmp_path)["RATELIMIT_STORAGE_URI"] == "memory://"
    monkeypatch.setenv("REDIS_URL", "redis://10.0.0.5:6379/1")
    cfg = load_config(tmp_path)
    assert (cfg["REDIS_URL"], cfg["RATELIMIT_STORAGE_URI"]) == ("redis://10.0.0.5:6379/1", "redis://10.0.0.5:6379/1")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://10.0.0.6:6379/2")
    assert load_config(tmp_path)["RATELIMIT_STORAGE_URI"] == "redis://10.0.0.6:6379/2"


def test_behind_a_proxy_the_client_address_is_the_forwarded_one(database_url):
    """PROXY_COUNT=1 (nginx in front): rate limits and lockouts count the resident's address, not nginx's."""
    from flask import request

    seen = []
    for count in (0, 1):
        a = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "s",
                        "PROXY_COUNT": count})
        a.add_url_rule("/t-addr", "t_addr", lambda: seen.append(request.remote_addr) or "ok")
        a.test_client().get("/t-addr", headers={"X-Forwarded-For": "10.9.8.7"},
                            environ_base={"REMOTE_ADDR": "127.0.0.1"})
        with a.app_context():
            _db.engines[None].dispose()
    assert seen == ["127.0.0.1", "10.9.8.7"]


def test_redis_down_is_a_503_for_what_needs_the_session_and_nothing_else(db, database_url, factory):
    from tests.processes import free_port

    down = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "test-secret",
                       "WTF_CSRF_ENABLED": False, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    user = factory.user("street", office=factory.street_office())
    client = down.test_client()
    login = client.post("/api/auth/login", json={"username": user.username, "password": "correct-horse-1"})
    assert login.status_code == 503 and login.get_json()["code"] == "service_unavailable"
    assert client.get_cookie("session") is None  # nothing was kept: the user is not told they are signed in
    client.set_cookie("session", "s" * 43)
    me = client.get("/api/auth/me")
    assert me.status_code == 503 and me.get_json()["message"] == "服务暂时不可用，请稍后再试"
    page = client.get("/login")
    assert page.status_code == 503 and "服务暂时不可用" in page.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # no session needed
    with down.app_context():
        _db.engines[None].dispose()


def test_a_request_racing_a_sign_out_does_not_bring_the_session_back(nodes, factory, store):
    from flask import request, session

    a_app = nodes[0]

    def touch():
        store.delete(KEY_PREFIX + request.cookies["session"])  # signed out on node B while this request runs
        session["seen"] = 1
        return "ok"

    a_app.add_url_rule("/t-touch", "t_touch", touch)
    user = factory.user("street", office=factory.street_office())
    a = a_app.test_client()
    _login(a, user)
    sid = _sid(a)
    assert a.get("/t-touch").status_code == 200
    assert store.exists(KEY_PREFIX + sid) == 0  # not written back
    assert a.get("/api/auth/me").status_code == 401
