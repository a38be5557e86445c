"""Cross-site request forgery on the API (issue 14, finding 2).

The API is exempt from the forms' CSRF token because a cross-site HTML form cannot send JSON; but the roster
import takes multipart/form-data, which any form can send, and it applied with a foreign Origin. Now every
state-changing /api/ call that carries the session cookie is refused from another site (Origin, else
Referer, checked whether or not WTF_CSRF_ENABLED is on), and one that is not JSON needs the CSRF token in
the X-CSRFToken header (the login API hands it out in the same header).
"""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from residents_app.registry.models import Unit

CSV = "楼栋,房号,产权面积,业主姓名,手机号\n1幢,101,88.50,张三,13900000001\n2幢,201,60.00,李四,13900000002\n".encode()
REFUSED = {"code": "cross_site_refused", "status": 403, "message": "拒绝来自其他网站的请求", "errors": {}}
CSRF_MISSING = {"code": "csrf_failed", "status": 400,
                "message": "缺少或无效的 CSRF 令牌：非 JSON 的请求须在请求头 X-CSRFToken 中携带令牌",
                "errors": {}}


@pytest.fixture
def estate(db, factory):
    e = factory.estate(buildings={"1幢": [("101", "88.50")]})
    db.session.commit()
    return e


@pytest.fixture
def committee(db, factory, estate):
    user = factory.user("committee", estate=estate)
    db.session.commit()
    return user


def unit_count(db, estate) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Unit).where(Unit.estate_id == estate.id)
                              ).scalar_one()


def import_roster(client, estate, **headers):
    return client.post(f"/api/estates/{estate.id}/import", data={"file": (io.BytesIO(CSV), "名册.csv")},
                       content_type="multipart/form-data", headers=headers)


@pytest.mark.parametrize("headers", [
    {"Origin": "https://evil.example"},
    {"Origin": "http://localhost.evil.example"},
    {"Origin": "http://localhost:8080"},
    {"Origin": "null"},  # a sandboxed frame, or a page that hides its origin
    {"Referer": "https://evil.example/form.html"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "null"},
])
def test_a_multipart_import_from_another_site_is_refused(client, login_as, committee, estate, db, headers):
    login_as(client, committee)
    resp = import_roster(client, estate, **headers)
    assert (resp.status_code, resp.get_json()) == (403, REFUSED)
    assert unit_count(db, estate) == 1


def test_a_json_call_from_another_site_is_refused_too(client, login_as, committee, estate, db):
    login_as(client, committee)
    unit = db.session.execute(sa.select(Unit).where(Unit.estate_id == estate.id)).scalar_one()
    resp = client.patch(f"/api/estates/{estate.id}/units/{unit.id}", json={"is_hardship": True},
                        headers={"Origin": "https://evil.example"})
    assert (resp.status_code, resp.get_json()) == (403, REFUSED)
    db.session.expire_all()
    assert unit.is_hardship is False


@pytest.mark.parametrize("headers", [
    {},  # a script: no Origin, no Referer
    {"Origin": "http://localhost"},
    {"Referer": "http://localhost/estates/1/import"},
    {"Origin": "null", "Sec-Fetch-Site": "same-origin"},  # our own page (Referrer-Policy: no-referrer)
    {"Origin": "https://localhost"},  # behind a TLS-terminating proxy the app sees http
    {"Referer": "https://servicewechat.com/wx0123456789abcdef/3/page-frame.html"},  # the WeChat mini-program
])
def test_same_site_calls_and_scripts_still_work(client, login_as, committee, estate, db, headers):
    login_as(client, committee)
    resp = import_roster(client, estate, **headers)
    assert resp.status_code == 200, resp.get_json()
    assert unit_count(db, estate) == 2


def test_calls_without_the_session_cookie_are_not_checked(client, committee):
    resp = client.post("/api/auth/login", json={"username": committee.username, "password": "wrong-password"},
                       headers={"Origin": "https://evil.example"})
    assert (resp.status_code, resp.get_json()["code"]) == (401, "invalid_credentials")


def test_trusted_origins_are_configurable(app, client, login_as, committee, estate):
    login_as(client, committee)
    old = app.config["TRUSTED_ORIGINS"]
    app.config["TRUSTED_ORIGINS"] = ("https://admin.example.org",)
    try:
        assert import_roster(client, estate, Origin="https://admin.example.org").status_code == 200
        mini_program = import_roster(client, estate, Referer="https://servicewechat.com/wx0123456789abcdef/3/x")
        assert (mini_program.status_code, mini_program.get_json()) == (403, REFUSED)
    finally:
        app.config["TRUSTED_ORIGINS"] = old


def test_with_csrf_on_a_multipart_call_needs_the_token(csrf_app, client, login_as, committee, estate, db):
    token = login_as(client, committee).headers["X-CSRFToken"]
    resp = import_roster(client, estate, Origin="http://localhost")
    assert (resp.status_code, resp.get_json()) == (400, CSRF_MISSING)
    resp = import_roster(client, estate, **{"X-CSRFToken": "forged"})
    assert (resp.status_code, resp.get_json()) == (400, CSRF_MISSING)
    assert unit_count(db, estate) == 1
    resp = import_roster(client, estate, **{"X-CSRFToken": token})
    assert resp.status_code == 200 and unit_count(db, estate) == 2
    assert client.get("/api/auth/me").headers["X-CSRFToken"]


def test_with_csrf_on_json_needs_no_token_but_other_bodies_do(csrf_app, client, login_as, committee, estate, db):
    login_as(client, committee)
    unit = db.session.execute(sa.select(Unit).where(Unit.estate_id == estate.id)).scalar_one()
    resp = client.patch(f"/api/estates/{estate.id}/units/{unit.id}", json={"is_hardship": True})
    assert resp.status_code == 200 and resp.get_json()["is_hardship"] is True
    for kwargs in ({}, {"data": "x=1", "content_type": "application/x-www-form-urlencoded"},
                   {"data": "{}", "content_type": "text/plain"}):
        resp = client.post("/api/auth/logout", **kwargs)
        assert (resp.status_code, resp.get_json()) == (400, CSRF_MISSING)
    assert client.get("/api/auth/me").status_code == 200  # still logged in
    assert client.post("/api/auth/logout", json={}).status_code == 204
    assert client.get("/api/auth/me").status_code == 401
