"""Issue 14, finding 1: whoever holds a unit's link can lock out only themselves, not the owner.

Wrong identity answers on /v/<token> are counted per link and client (address + User-Agent + device cookie); the
client is told how many tries it has left; the committee can unlock a link (CSRF protected, on the audit chain).
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g

from residents_app.audit.models import AuditEvent
from residents_app.auth import identity
from residents_app.auth.identity import Client
from residents_app.auth.resident import resolve_token
from residents_app.db import utcnow
from residents_app.errors import DomainError, ValidationFailed
from residents_app.rounds import links as links_svc
from tests.conftest import login

LOCKED = "验证失败次数过多，本设备已暂停验证 15 分钟。请稍后再试，或联系业委会解锁"


@pytest.fixture
def estate(db, factory):
    e = factory.estate(buildings={"1幢": [("101", "88.50"), ("102", "70.00")]})
    db.session.commit()
    return e


@pytest.fixture
def tokens(db, estate):
    out = {unit.label: token for unit, token in links_svc.issue_links(estate.id, utcnow())}
    db.session.commit()
    return out


@pytest.fixture
def owner(estate):
    unit = estate.buildings[0].units[0]
    return {"name": unit.owners[0].name, "phone_last4": unit.owners[0].phone[-4:]}


def second_device(app, client):
    """Another browser (its own cookies) at the same address as `client`."""
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = client.environ_base["REMOTE_ADDR"]
    return other


def message_of(resp) -> str:
    return re.search(r'id="identity-error">([^<]*)<', resp.get_data(as_text=True)).group(1)


def test_wrong_answers_lock_only_the_device_that_gave_them(app, client, db, tokens, owner):
    token = tokens["1幢-101"]
    wrong = {"name": owner["name"], "phone_last4": "0000"}
    answers = [client.post(f"/v/{token}", data=wrong) for _ in range(5)]
    assert [r.status_code for r in answers] == [422] * 5
    assert [message_of(r) for r in answers] == [
        "姓名或手机号后 4 位与本户登记信息不符，还可以再试 4 次",
        "姓名或手机号后 4 位与本户登记信息不符，还可以再试 3 次",
        "姓名或手机号后 4 位与本户登记信息不符，还可以再试 2 次",
        "姓名或手机号后 4 位与本户登记信息不符，还可以再试 1 次",
        "姓名或手机号后 4 位与本户登记信息不符。" + LOCKED,
    ]
    # The locked device is refused even with the right answer.
    locked = client.post(f"/v/{token}", data=owner)
    assert (locked.status_code, message_of(locked)) == (429, LOCKED)
    home = client.get("/r/home")
    assert (home.status_code, home.headers["Location"]) == (302, "/r/expired")
    # The owner's phone, behind the same address (home Wi-Fi), still gets in.
    phone = second_device(app, client)
    first = phone.post(f"/v/{token}", data=owner)
    assert first.status_code == 302 and first.headers["Location"].endswith("/r/home")
    assert phone.get("/r/home").status_code == 200
    # The lock is the link's and the device's: the same device may still confirm on another unit's link.
    other_unit = client.post(f"/v/{tokens['1幢-102']}", data={"name": "x", "phone_last4": "0000"})
    assert message_of(other_unit) == "姓名或手机号后 4 位与本户登记信息不符，还可以再试 4 次"


def test_the_identity_api_counts_per_device_too(app, client, db, tokens, owner):
    url = f"/api/ballot/{tokens['1幢-101']}/identity"
    wrong = [client.post(url, json={"name": owner["name"], "phone_last4": "0000"}) for _ in range(5)]
    assert [r.status_code for r in wrong] == [422] * 5
    assert wrong[0].get_json() == {
        "code": "identity_mismatch", "status": 422, "message": "姓名或手机号后 4 位与本户登记信息不符，还可以再试 4 次",
        "errors": {"name": "与登记信息不符", "phone_last4": "与登记信息不符"}}
    locked = client.post(url, json=owner)
    assert locked.get_json() == {"code": "identity_locked", "status": 429, "message": LOCKED, "errors": {}}
    ok = second_device(app, client).post(url, json=owner)
    assert ok.status_code == 200 and ok.get_json()["unit"] == "1幢-101"


def test_the_device_cookie_is_long_lived_and_http_only(client, db, tokens):
    resp = client.get(f"/v/{tokens['1幢-101']}")
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith(identity.DEVICE_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=34560000" in cookie
    # Kept, not replaced, on the next request.
    again = client.get(f"/v/{tokens['1幢-101']}")
    assert not [h for h in again.headers.getlist("Set-Cookie") if h.startswith(identity.DEVICE_COOKIE + "=")]


def test_dropping_the_device_cookie_does_not_reset_the_address_budget(db, tokens, owner, now):
    link = resolve_token(tokens["1幢-101"])
    # Twenty fresh devices behind one address (a script that drops its cookie each time) ...
    for n in range(20):
        with pytest.raises(ValidationFailed):
            links_svc.confirm_identity(link, "猜的", "0000", now, Client.of("10.9.9.9", "curl", f"device-{n}"))
    # ... exhaust the address on this link: a twenty-first is locked before its first try.
    with pytest.raises(DomainError) as exc:
        links_svc.confirm_identity(link, owner["name"], owner["phone_last4"], now, Client.of("10.9.9.9", "curl", "new"))
    assert (exc.value.code, exc.value.status) == ("identity_locked", 429)
    # The owner elsewhere is not; and the address is free again after the window.
    elsewhere = Client.of("10.1.1.1", "Mozilla/5.0 (iPhone)", "owner-phone")
    assert links_svc.confirm_identity(link, owner["name"], owner["phone_last4"], now, elsewhere).name == owner["name"]
    later = now + timedelta(minutes=15, seconds=1)
    fresh = Client.of("10.9.9.9", "curl", "new")
    assert links_svc.confirm_identity(link, owner["name"], owner["phone_last4"], later, fresh).name == owner["name"]


def test_a_lock_lifts_after_fifteen_minutes(db, tokens, owner, now):
    link = resolve_token(tokens["1幢-101"])
    device = Client.of("10.2.2.2", "Mozilla/5.0", "a-device")
    lefts = []
    for _ in range(5):
        with pytest.raises(ValidationFailed) as exc:
            links_svc.confirm_identity(link, owner["name"], "0000", now, device)
        lefts.append(exc.value.message)
    assert lefts[0].endswith("还可以再试 4 次") and lefts[3].endswith("还可以再试 1 次")
    with pytest.raises(DomainError) as locked:
        links_svc.confirm_identity(link, owner["name"], owner["phone_last4"], now + timedelta(minutes=14), device)
    assert locked.value.code == "identity_locked"
    assert identity.tries_left(link.id, device, now + timedelta(minutes=15)) == 5
    assert links_svc.confirm_identity(link, owner["name"], owner["phone_last4"], now + timedelta(minutes=15),
                                device).name == owner["name"]


def _csrf(page_html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_html).group(1)


def test_the_committee_unlocks_a_link_with_a_csrf_protected_post(app, csrf_app, client, db, factory, estate, tokens,
                                                                  owner):
    unit = estate.buildings[0].units[0]
    resident = app.test_client()
    resident.environ_base["REMOTE_ADDR"] = "10.77.0.1"
    page = resident.get(f"/v/{tokens['1幢-101']}")
    form_token = _csrf(page.get_data(as_text=True))
    for _ in range(5):
        resident.post(f"/v/{tokens['1幢-101']}", data={"name": "x", "phone_last4": "0000", "csrf_token": form_token})
    assert resident.post(f"/v/{tokens['1幢-101']}", data={**owner, "csrf_token": form_token}).status_code == 429

    committee = factory.user("committee", estate=estate)
    db.session.commit()
    # The test's app context (and so g) outlives each request: the resident's CSRF token must not be the
    # committee's.
    g.pop("csrf_token", None)
    login(client, committee)
    links = client.get(f"/estates/{estate.id}/links").get_data(as_text=True)
    cell = re.search(rf'<td id="locks-{unit.id}">(.*?)</td>', links, re.S).group(1)
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", cell)).strip() == "5 次填错， 1 台设备已锁定 解除锁定"
    assert client.post(f"/units/{unit.id}/link/unlock").status_code == 400  # no CSRF token
    assert db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "links.identity_unlocked")).first() is None
    done = client.post(f"/units/{unit.id}/link/unlock", data={"csrf_token": _csrf(links)})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/estates/{estate.id}/links")
    event = db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "links.identity_unlocked")).scalar_one()
    assert (event.chain, event.actor, event.subject_type, event.subject_id, event.data) == (
        estate.id, f"user:{committee.id}:{committee.username}", "unit", str(unit.id),
        {"unit": "1幢-101", "failures_cleared": 5})
    assert f'id="locks-{unit.id}"></td>' in client.get(f"/estates/{estate.id}/links").get_data(as_text=True)
    # The device that was locked out may try again (with its full budget).
    wrong = {"name": "x", "phone_last4": "0000", "csrf_token": form_token}
    again = resident.post(f"/v/{tokens['1幢-101']}", data=wrong)
    assert message_of(again) == "姓名或手机号后 4 位与本户登记信息不符，还可以再试 4 次"
    assert resident.post(f"/v/{tokens['1幢-101']}", data={**owner, "csrf_token": form_token}).status_code == 302


def test_only_the_estates_own_committee_unlocks(client, db, factory, estate, tokens):
    unit = estate.buildings[0].units[0]
    other = factory.estate(buildings={"9幢": [("901", "50.00")]})
    street = factory.user("street", estate=estate)
    outsider = factory.user("committee", estate=other)
    db.session.commit()
    assert client.post(f"/units/{unit.id}/link/unlock").status_code == 302  # anonymous: to the login page
    login(client, outsider)
    assert client.post(f"/units/{unit.id}/link/unlock").status_code == 404
    client.post("/logout")
    login(client, street)
    assert client.post(f"/units/{unit.id}/link/unlock").status_code == 403
    assert db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == "links.identity_unlocked")).first() is None
