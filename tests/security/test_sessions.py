"""Issue 14, finding 3: a session ends for real.

A staff session cookie copied before logout (or before a password change or deactivation) no longer works after
it; a resident's session no longer works once the unit's link is revoked or reissued.
"""

from __future__ import annotations

import pytest
from flask import g

from residents_app.auth.services import change_password, deactivate_user
from residents_app.db import utcnow
from residents_app.rounds import links
from tests.conftest import login

RESIDENT_PAGES = ("/r/home", "/r/plan", "/r/statement", "/r/publicity", "/r/objections")


def fresh(who):
    """`who`, about to make a request as a new process would: the test's app context (and so g) outlives each
    request, and Flask-Login caches the user it loaded (or the anonymous one logout leaves) in g."""
    g.pop("_login_user", None)
    return who


def replay(app, cookie: str):
    """A fresh client (another machine) presenting a copied session cookie."""
    thief = app.test_client()
    thief.environ_base["REMOTE_ADDR"] = "10.250.0.1"
    thief.set_cookie("session", cookie)
    return fresh(thief)


@pytest.fixture
def committee(db, factory):
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    user = factory.user("committee", estate=estate)
    db.session.commit()
    return user


def signed_in_cookie(client, user) -> str:
    form = client.post("/login", data={"username": user.username, "password": "correct-horse-1"})
    assert form.status_code == 302 and form.headers["Location"].endswith("/dashboard")
    assert client.get("/dashboard").status_code == 200
    return client.get_cookie("session").value


def assert_signed_out(thief):
    page = fresh(thief).get("/dashboard")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert fresh(thief).get("/api/auth/me").get_json() == {
        "code": "unauthorized", "status": 401, "message": "请先登录", "errors": {}}


def test_a_cookie_copied_before_logout_is_refused_after_it(app, client, db, committee):
    copied = signed_in_cookie(client, committee)
    assert replay(app, copied).get("/dashboard").status_code == 200  # the copy works while the session lives
    assert client.post("/logout").status_code == 302
    assert_signed_out(replay(app, copied))
    assert_signed_out(client)
    # Signing in again makes a new session that works.
    assert replay(app, signed_in_cookie(client, committee)).get("/api/auth/me").get_json()["id"] == committee.id


def test_api_logout_ends_the_copied_session_too(app, client, db, committee):
    login(client, committee)
    copied = client.get_cookie("session").value
    assert client.post("/api/auth/logout").status_code == 204
    assert_signed_out(replay(app, copied))


def test_a_new_password_ends_every_session(app, client, db, committee):
    copied = signed_in_cookie(client, committee)
    change_password(committee, "a-much-better-passphrase")
    db.session.commit()
    assert_signed_out(replay(app, copied))
    assert_signed_out(client)


def test_deactivation_ends_every_session(app, client, db, committee):
    copied = signed_in_cookie(client, committee)
    deactivate_user(committee)
    db.session.commit()
    assert_signed_out(replay(app, copied))
    refused = client.post("/api/auth/login", json={"username": committee.username, "password": "correct-horse-1"})
    assert refused.status_code == 401


def test_the_cli_changes_passwords_and_deactivates_accounts(app, client, db, committee):
    runner = app.test_cli_runner()
    copied = signed_in_cookie(client, committee)
    weak = runner.invoke(args=["users", "password", committee.username, "--password", "12345678"])
    assert (weak.exit_code, weak.output.strip()) == (1, "错误 password: 密码至少 10 位")
    assert replay(app, copied).get("/dashboard").status_code == 200
    ok = runner.invoke(args=["users", "password", committee.username, "--password", "a-much-better-passphrase"])
    assert (ok.exit_code, ok.output.strip()) == (0, f"已为账户 {committee.username} 设置新密码，其所有登录会话已失效")
    assert_signed_out(replay(app, copied))
    copied = signed_in_cookie_with(client, committee, "a-much-better-passphrase")
    off = runner.invoke(args=["users", "deactivate", committee.username])
    assert (off.exit_code, off.output.strip()) == (0, f"已停用账户 {committee.username}，其所有登录会话已失效")
    assert_signed_out(replay(app, copied))


def signed_in_cookie_with(client, user, password: str) -> str:
    assert client.post("/login", data={"username": user.username, "password": password}).status_code == 302
    return client.get_cookie("session").value


@pytest.fixture
def resident(app, client, db, factory):
    """A resident signed in through the unit's QR link; returns (client, unit, copied session cookie)."""
    estate = factory.estate(buildings={"1幢": [("101", "88.50")]})
    db.session.commit()
    unit = estate.buildings[0].units[0]
    [(_, token)] = links.issue_links(estate.id, utcnow())
    db.session.commit()
    owner = unit.owners[0]
    signed = client.post(f"/v/{token}", data={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert signed.status_code == 302
    for path in RESIDENT_PAGES:
        assert client.get(path).status_code == 200, path
    return client, unit, token, client.get_cookie("session").value


def assert_resident_refused(app, client, cookie, token):
    for who in (client, replay(app, cookie)):
        for path in RESIDENT_PAGES:
            resp = who.get(path)
            assert (resp.status_code, resp.headers.get("Location")) == (302, "/r/expired"), path
        assert who.get(f"/api/ballot/{token}").status_code == 404


def test_a_resident_session_ends_when_the_link_is_revoked(app, db, resident):
    client, unit, token, copied = resident
    links.revoke_link(unit.id, utcnow())
    db.session.commit()
    assert_resident_refused(app, client, copied, token)


def test_a_resident_session_ends_when_the_link_is_reissued(app, db, resident):
    client, unit, token, copied = resident
    new_token = links.reissue_link(unit.id, utcnow())
    db.session.commit()
    assert_resident_refused(app, client, copied, token)
    # The new link works (after confirming identity again).
    owner = unit.owners[0]
    fresh = app.test_client()
    assert fresh.post(f"/v/{new_token}", data={"name": owner.name, "phone_last4": owner.phone[-4:]}).status_code == 302
    assert fresh.get("/r/home").status_code == 200
