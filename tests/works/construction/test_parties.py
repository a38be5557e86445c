"""Item 1: the project's parties, the site contact shown to residents, accounts limited to one project."""

from __future__ import annotations

import pytest

from residents_app.errors import Conflict, ValidationFailed
from residents_app.works.construction import services
from tests.conftest import login


def _add(project, world, **kw):
    args = dict(kind="contractor", name="宏达建设", contact_name="王工", contact_phone="13800000001",
                user=world.committee, now=world.now)
    args.update(kw)
    return services.add_party(project, **args)


def test_parties_listed_in_kind_order_and_one_site_contact(project, world, db):
    _add(project, world, kind="supervisor", name="诚信监理", contact_name="李工", contact_phone="13800000002",
         is_site_contact=True)
    c = _add(project, world, is_site_contact=True)
    _add(project, world, kind="builder", name="区住建局")
    assert [p.name for p in services.parties_of(project)] == ["区住建局", "宏达建设", "诚信监理"]
    assert services.site_contact(project).id == c.id  # the later site contact replaces the earlier
    assert [p.is_site_contact for p in services.parties_of(project)] == [False, True, False]


def test_site_contact_needs_a_name_and_phone(project, world):
    with pytest.raises(ValidationFailed) as info:
        _add(project, world, contact_phone="", is_site_contact=True)
    assert info.value.errors == {"contact_name": ["现场联络人须填写姓名和电话"]}
    p = _add(project, world, kind="utility", name="自来水公司", contact_name="", contact_phone="")
    with pytest.raises(Conflict) as info:
        services.set_site_contact(project, p, user=world.committee, now=world.now)
    assert info.value.code == "contact_missing"


def test_party_account_sees_its_project_only(project, world, factory, db, client):
    p = _add(project, world, sign_mode="account", username="hongda", password="Hongda-site-2026")
    assert p.user.role == "party" and p.user.estate_id == world.estate.id
    other = factory.estate(office=world.office)
    db.session.commit()
    login(client, p.user, "Hongda-site-2026")
    assert client.get(f"/estates/{world.estate.id}/construction").status_code == 200
    assert client.get(f"/estates/{other.id}/construction").status_code == 404
    # staff pages stay closed to a party account
    assert client.get(f"/estates/{world.estate.id}/start").status_code == 404
    assert client.get(f"/estates/{world.estate.id}/dashboard").status_code == 404
    # a party cannot add parties (the committee's)
    resp = client.post(f"/estates/{world.estate.id}/construction/parties", data={"kind": "designer", "name": "x"})
    assert resp.status_code == 404


def test_committee_adds_party_over_http_and_resident_sees_site_contact(project, world, client, resident_login, db):
    login(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/construction/parties", data={
        "kind": "contractor", "name": "宏达建设", "contact_name": "王工", "contact_phone": "13800000001",
        "is_site_contact": "1", "sign_mode": "paper"})
    assert resp.status_code == 302
    page = client.get(f"/estates/{world.estate.id}/construction").get_data(as_text=True)
    assert "现场联络人：<strong>王工</strong>（宏达建设）13800000001" in page
    rc = client.application.test_client()
    resident_login(rc, world.u101)
    page = rc.get("/r/construction").get_data(as_text=True)
    assert "现场联络人：<strong>王工</strong>（宏达建设）" in page
    assert 'href="tel:13800000001"' in page


def test_resident_page_before_the_start(world, client, resident_login):
    resident_login(client, world.u101)
    page = client.get("/r/construction").get_data(as_text=True)
    assert "本小区的改造项目还没有开工。" in page


def test_party_workbench_links_to_its_construction_page(project, world, client, db):
    p = _add(project, world, sign_mode="account", username="hongda", password="Hongda-site-2026")
    db.session.commit()
    login(client, p.user, "Hongda-site-2026")
    page = client.get("/dashboard").get_data(as_text=True)
    assert f'href="/estates/{world.estate.id}/construction">施工期监督</a>' in page
    assert "房号与业主" not in page


def test_party_account_reaches_no_other_staff_page(project, world, client, db, app):
    """Every GET page with only id arguments, filled with this estate's ids: a party account gets its own
    construction pages, the workbench and public pages, and nothing of the staff's."""
    p = _add(project, world, sign_mode="account", username="hongda", password="Hongda-site-2026")
    db.session.commit()
    login(client, p.user, "Hongda-site-2026")
    opened = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if any(f"<int:{a}>" not in rule.rule for a in rule.arguments):
            continue
        url = rule.rule
        for a in rule.arguments:
            url = url.replace(f"<int:{a}>", str(world.estate.id))
        resp = client.get(url)
        if resp.status_code == 200:
            opened.append(rule.endpoint)
    public_or_own = {"api-docs.openapi_json", "auth_api.api_me", "rounds.receipt", "ops.healthz"}
    staff = [e for e in opened if not e.startswith(("construction.", "auth.")) and e not in public_or_own]
    assert "construction.index" in opened
    assert staff == [], staff
