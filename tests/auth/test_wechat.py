"""WeChat login binding against a local fake of WeChat's jscode2session: bind after the identity check, later
visits without it, several units per openid, unbinding by the resident and by the committee, WeChat's errors."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.auth.wechat import openid_ref
from residents_app.auth.wechat_models import WechatBinding
from residents_app.db import utcnow
from residents_app.rounds import links as links_svc
from tests.notify import conftest as fakes

fake_wechat = fakes.fake_wechat


@pytest.fixture
def wechat_app(app, fake_wechat, monkeypatch):
    monkeypatch.setitem(app.config, "WECHAT_APP_ID", fake_wechat.app_id)
    monkeypatch.setitem(app.config, "WECHAT_APP_SECRET", fake_wechat.app_secret)
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", fake_wechat.url)
    return fake_wechat


@pytest.fixture
def estate(db, factory):
    e = factory.estate(buildings={"1幢": [("101", "90.00"), ("102", "70.00")]})
    db.session.commit()
    return e


@pytest.fixture
def tokens(db, estate):
    out = {u.label: t for u, t in links_svc.issue_links(estate.id, utcnow())}
    db.session.commit()
    return out


def _units(estate):
    return {u.label: u for b in estate.buildings for u in b.units}


def _identify(client, token, owner):
    resp = client.post(f"/api/ballot/{token}/identity", json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200, resp.get_json()


def _audit(db, kind):
    return [(e.subject_id, e.data, e.actor) for e in db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)).scalars()]


def test_bind_after_identity_then_later_visits_need_none(app, db, client, estate, tokens, wechat_app):
    u101 = _units(estate)["1幢-101"]
    owner = u101.owners[0]
    first = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-zhang")})
    assert first.get_json() == {"signed_in": None, "units": [], "next": "identity"}
    early = client.post("/api/auth/wechat/bind", json={})
    assert (early.status_code, early.get_json()["code"]) == (401, "identity_required")
    _identify(client, tokens["1幢-101"], owner)
    bound = client.post("/api/auth/wechat/bind", json={})
    assert bound.status_code == 200
    [unit] = bound.get_json()["units"]
    assert (unit["unit_id"], unit["label"], unit["estate"]) == (u101.id, "1幢-101", estate.name)
    assert client.post("/api/auth/wechat/bind", json={}).get_json()["units"] == [unit]  # idempotent
    [(subject, data, actor)] = _audit(db, "wechat_bound")
    assert (subject, data["owner_id"], data["openid"], actor) == (
        str(u101.id), owner.id, openid_ref("o-zhang"), f"resident:owner:{owner.id}")
    assert "o-zhang" not in str(data)
    # a later visit, a new phone session: the code alone signs in, no identity check
    later = app.test_client()
    later.environ_base["REMOTE_ADDR"] = client.environ_base["REMOTE_ADDR"]
    before = later.get(f"/api/ballot/{tokens['1幢-101']}").get_json()
    assert before["identified"] is False
    resp = later.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-zhang")})
    assert resp.get_json() == {"signed_in": unit, "units": [unit], "next": "home"}
    info = later.get(f"/api/ballot/{tokens['1幢-101']}").get_json()
    assert info["identified"] is True and info["unit"]["area_m2"] == "90.00"
    assert db.session.execute(sa.select(WechatBinding.last_login_at)).scalar_one() is not None


def test_one_openid_several_units_choose_then_unbind_on_the_phone(db, client, estate, tokens, wechat_app):
    units = _units(estate)
    client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-family")})
    for label in ("1幢-101", "1幢-102"):
        _identify(client, tokens[label], units[label].owners[0])
        assert client.post("/api/auth/wechat/bind", json={}).status_code == 200
    resp = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-family")}).get_json()
    assert (resp["signed_in"], resp["next"], [u["label"] for u in resp["units"]]) == (
        None, "choose_unit", ["1幢-101", "1幢-102"])
    assert client.get(f"/api/ballot/{tokens['1幢-102']}").get_json()["identified"] is False
    resp = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-family"),
                                                       "unit_id": units["1幢-102"].id}).get_json()
    assert (resp["signed_in"]["label"], resp["next"]) == ("1幢-102", "home")
    assert client.get(f"/api/ballot/{tokens['1幢-102']}").get_json()["identified"] is True
    # unbind the unit of the session: signed out, the other binding stays
    gone = client.delete(f"/api/auth/wechat/bindings/{units['1幢-102'].id}")
    assert [u["label"] for u in gone.get_json()["units"]] == ["1幢-101"]
    assert client.get(f"/api/ballot/{tokens['1幢-102']}").get_json()["identified"] is False
    assert [(s, d["by"]) for s, d, _ in _audit(db, "wechat_unbound")] == [(str(units["1幢-102"].id), "resident")]
    again = client.delete(f"/api/auth/wechat/bindings/{units['1幢-102'].id}")
    assert again.status_code == 404
    mine = client.get("/api/auth/wechat/bindings").get_json()
    assert [u["label"] for u in mine["units"]] == ["1幢-101"]


def test_wechat_errors_invalid_code_used_code_rate_limit_not_configured(app, db, client, estate, tokens,
                                                                        wechat_app, monkeypatch):
    bad = client.post("/api/auth/wechat/login", json={"code": "made-up"})
    assert bad.get_json() == {"code": "wechat_code_invalid", "status": 401,
                              "message": "登录凭证无效或已过期，请重新打开小程序", "errors": {}}
    code = wechat_app.issue_code("o-1")
    assert client.post("/api/auth/wechat/login", json={"code": code}).status_code == 200
    used = client.post("/api/auth/wechat/login", json={"code": code})
    assert (used.status_code, used.get_json()["message"]) == (401, "登录凭证已使用过，请重新打开小程序")
    wechat_app.rate_limited = True
    limited = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-1")})
    assert (limited.status_code, limited.get_json()["code"]) == (429, "rate_limited")
    wechat_app.rate_limited = False
    unknown = client.post("/api/auth/wechat/login", json={"code": "x", "openid": "o-1"})
    assert unknown.status_code == 422 and "openid" in unknown.get_json()["errors"]["json"]
    monkeypatch.setitem(app.config, "WECHAT_APP_SECRET", "wrong")
    wrong = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-1")})
    assert (wrong.status_code, wrong.get_json()["code"]) == (503, "wechat_unavailable")
    monkeypatch.setitem(app.config, "WECHAT_APP_ID", "")
    off = client.post("/api/auth/wechat/login", json={"code": "x"})
    assert (off.status_code, off.get_json()["code"]) == (404, "wechat_not_configured")
    assert wechat_app.used_codes == {code}


def test_revoked_link_ends_wechat_sign_in(db, client, estate, tokens, wechat_app):
    u101 = _units(estate)["1幢-101"]
    client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-2")})
    _identify(client, tokens["1幢-101"], u101.owners[0])
    client.post("/api/auth/wechat/bind", json={})
    links_svc.revoke_link(u101.id, utcnow())
    db.session.commit()
    resp = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-2")})
    assert (resp.status_code, resp.get_json()["code"]) == (409, "link_revoked")


def test_committee_sees_and_removes_bindings(app, db, client, factory, login_as, estate, tokens, wechat_app):
    u101 = _units(estate)["1幢-101"]
    client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-3")})
    _identify(client, tokens["1幢-101"], u101.owners[0])
    client.post("/api/auth/wechat/bind", json={})
    committee = factory.user("committee", estate=estate)
    other = factory.user("committee", estate=factory.estate(buildings={"1幢": [("101", "50.00")]}))
    db.session.commit()
    staff = app.test_client()
    staff.environ_base["REMOTE_ADDR"] = "10.250.0.9"
    login_as(staff, other)
    binding_id = db.session.execute(sa.select(WechatBinding.id)).scalar_one()
    assert staff.get(f"/api/auth/wechat/estates/{estate.id}/bindings").status_code == 404
    assert staff.delete(f"/api/auth/wechat/binding/{binding_id}").status_code == 404
    staff.post("/api/auth/logout")
    login_as(staff, committee)
    listed = staff.get(f"/api/auth/wechat/estates/{estate.id}/bindings").get_json()["bindings"]
    assert [(b["label"], b["owner_name"]) for b in listed] == [("1幢-101", u101.owners[0].name)]
    assert staff.delete(f"/api/auth/wechat/binding/{binding_id}").status_code == 204
    assert db.session.execute(sa.select(sa.func.count()).select_from(WechatBinding)).scalar_one() == 0
    [(_, data, actor)] = _audit(db, "wechat_unbound")
    assert (data["by"], actor) == ("committee", f"user:{committee.id}:{committee.username}")
    # the next visit needs the identity check again
    resp = client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-3")}).get_json()
    assert resp["next"] == "identity"


def test_resident_opts_out_and_back_in_on_the_phone(db, client, estate, tokens, wechat_app):
    u101 = _units(estate)["1幢-101"]
    assert client.get("/api/r/notify/preferences").status_code == 401
    client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-4")})
    _identify(client, tokens["1幢-101"], u101.owners[0])
    assert client.get("/api/r/notify/preferences").get_json() == {"opted_out": [], "channels": ["sms"]}
    client.post("/api/auth/wechat/bind", json={})
    assert client.get("/api/r/notify/preferences").get_json()["channels"] == ["wechat", "sms"]
    out = client.post("/api/r/notify/opt-out", json={"channel": "sms"})
    assert out.get_json() == {"opted_out": ["sms"], "channels": ["wechat"]}
    out = client.post("/api/r/notify/opt-out", json={"channel": "all"})
    assert out.get_json() == {"opted_out": ["all", "sms"], "channels": []}
    bad = client.post("/api/r/notify/opt-out", json={"channel": "fax"})
    assert bad.status_code == 422
    back = client.post("/api/r/notify/opt-in", json={"channel": "all"})
    assert back.get_json() == {"opted_out": [], "channels": ["wechat", "sms"]}


def test_committee_page_lists_and_unbinds(app, db, client, factory, login_as, estate, tokens, wechat_app):
    u102 = _units(estate)["1幢-102"]
    client.post("/api/auth/wechat/login", json={"code": wechat_app.issue_code("o-5")})
    _identify(client, tokens["1幢-102"], u102.owners[0])
    client.post("/api/auth/wechat/bind", json={})
    committee = factory.user("committee", estate=estate)
    street = factory.user("street", estate=estate)
    db.session.commit()
    binding_id = db.session.execute(sa.select(WechatBinding.id)).scalar_one()
    staff = app.test_client()
    staff.environ_base["REMOTE_ADDR"] = "10.250.0.10"
    login_as(staff, street)  # the street office sees, cannot unbind
    page = staff.get(f"/estates/{estate.id}/wechat-bindings").get_data(as_text=True)
    assert "1幢-102" in page and u102.owners[0].name in page and "解除绑定</button>" not in page
    assert staff.post(f"/wechat-bindings/{binding_id}/unbind").status_code == 403
    staff.post("/api/auth/logout")
    login_as(staff, committee)
    assert f'href="/estates/{estate.id}/wechat-bindings"' in staff.get(f"/estates/{estate.id}").get_data(as_text=True)
    done = staff.post(f"/wechat-bindings/{binding_id}/unbind", follow_redirects=True).get_data(as_text=True)
    assert "已解除 1幢-102 的微信绑定" in done and "尚无住户绑定微信" in done
    assert [d["by"] for _, d, _ in _audit(db, "wechat_unbound")] == ["committee"]
