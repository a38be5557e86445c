"""Acceptance participants that are the project's construction parties: each signs online through its own
`party` account, limited to this project; it cannot sign for another participant nor reach another project."""

from __future__ import annotations

from datetime import date
from unittest import mock

import pytest

from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.works.acceptance import services
from residents_app.works.construction import services as construction
from tests.conftest import login
from tests.works.acceptance.conftest import PARTIES
from tests.works.construction.conftest import project  # noqa: F401  (fixture)

PASSWORD = "Contractor-site-2026"


def _party(project, world, kind="contractor", name="市政建设公司", username="contractor16"):  # noqa: F811
    return construction.add_party(project, kind=kind, name=name, contact_name="孙施", contact_phone="13800000001",
                                  sign_mode="account", username=username, password=PASSWORD, user=world.committee,
                                  now=world.now)


def _open(world, db, **links):
    """The 8 participants; links: role -> ParticipantInput fields (user_id / party_id)."""
    rows = [services.ParticipantInput(role=r, organisation=o, name=n, **links.get(r, {})) for r, o, n in PARTIES]
    acc = services.open_acceptance(world.estate, title="竣工共同验收", held_on=date(2026, 9, 1), place="",
                                   participants=rows, user=world.committee, now=world.now)
    db.session.commit()
    return acc


def _other_project(world, factory, db):
    """Another estate (another street office), its own approved project and contractor account."""
    from residents_app.works.models import StartApplication
    from tests.plan_world import PlanWorld

    w2 = PlanWorld(factory, db, world.now)
    estate = w2.estate
    app_ = StartApplication(estate_id=estate.id, plan_version_id=w2.plan().id, status="approved",
                            submitted_at=world.now, checklist=[], decided_at=world.now, comment="")
    db.session.add(app_)
    db.session.flush()
    party = _party(app_, world, username="other16")
    db.session.commit()
    return estate, party


def test_party_account_links_the_participant_and_signs_its_own_row_only(project, world, db):  # noqa: F811
    contractor = _party(project, world)
    designer = _party(project, world, kind="designer", name="市建筑设计院", username="designer16")
    # linked by the account (as the form does) or by the party itself
    acc = _open(world, db, contractor={"user_id": contractor.user_id}, designer={"party_id": designer.id})
    by_role = {p.role: p for p in acc.participants}
    assert (by_role["contractor"].party_id, by_role["contractor"].user_id) == (contractor.id, contractor.user_id)
    assert (by_role["designer"].party_id, by_role["designer"].user_id) == (designer.id, designer.user_id)
    assert by_role["builder"].party_id is None
    # the contractor cannot sign for the designer, nor for a participant without an account
    for role in ("designer", "supervisor"):
        with pytest.raises(Conflict) as info:
            services.sign_online(acc, by_role[role].id, user=contractor.user, opinion="", now=world.now)
        assert info.value.code == "not_the_signatory"
    services.sign_online(acc, by_role["contractor"].id, user=contractor.user, opinion="同意", now=world.now)
    assert (by_role["contractor"].signature_method, by_role["contractor"].signed_at) == ("online", world.now)
    assert not by_role["designer"].is_signed and acc.status == "open"


def test_another_projects_party_cannot_be_a_participant(project, world, factory, db):  # noqa: F811
    _, other = _other_project(world, factory, db)
    for link in ({"party_id": other.id}, {"user_id": other.user_id}):
        with pytest.raises(ValidationFailed) as info:
            _open(world, db, contractor=link)
        assert list(info.value.errors) == ["p6.party"]
    mine = _party(project, world)
    with pytest.raises(ValidationFailed) as info:  # a party, but someone else's account
        _open(world, db, contractor={"party_id": mine.id, "user_id": world.street.id})
    assert info.value.errors == {"p6.party": "签字账号与参建单位的账号不一致"}


def test_party_of_another_project_cannot_sign_here(project, world, factory, db):  # noqa: F811
    mine = _party(project, world)
    acc = _open(world, db, contractor={"user_id": mine.user_id})
    _, other = _other_project(world, factory, db)
    contractor_row = next(p for p in acc.participants if p.role == "contractor")
    with pytest.raises(NotFound):
        services.sign_online(acc, contractor_row.id, user=other.user, opinion="", now=world.now)
    assert not contractor_row.is_signed


def test_party_pages_over_http(project, world, factory, db, client):  # noqa: F811
    mine = _party(project, world)
    acc = _open(world, db, contractor={"user_id": mine.user_id})
    other_estate, other = _other_project(world, factory, db)
    theirs = services.open_acceptance(other_estate, title="另一验收", held_on=date(2026, 9, 1), place="",
                                      participants=[services.ParticipantInput("contractor", "某公司", "某人",
                                                                              user_id=other.user_id)],
                                      user=world.committee, now=world.now)
    db.session.commit()
    rows = {p.role: p for p in acc.participants}
    login(client, mine.user, PASSWORD)
    page = client.get(f"/acceptance/{acc.id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="sign-online"') == 1 and "（参建单位账号）" in html
    assert 'id="add-issue"' not in html and "enter-scan" not in html  # the committee's forms are not shown
    assert client.get(f"/acceptance/{acc.id}/record.pdf").status_code == 200
    construction_page = client.get(f"/estates/{world.estate.id}/construction").get_data(as_text=True)
    assert f'href="/acceptance/{acc.id}">竣工共同验收（2026-09-01）</a>' in construction_page
    assert "待您签字" in construction_page
    # another participant's row: refused (409), nothing signed
    resp = client.post(f"/api/works/acceptance/{acc.id}/participants/{rows['builder'].id}/sign", json={})
    assert resp.status_code == 409 and resp.get_json()["code"] == "not_the_signatory"
    # another project's acceptance: not found, even its own party's row there
    assert client.get(f"/acceptance/{theirs.id}").status_code == 404
    resp = client.post(f"/api/works/acceptance/{theirs.id}/participants/{theirs.participants[0].id}/sign", json={})
    assert resp.status_code == 404
    # the committee's actions stay closed
    assert client.post(f"/acceptance/{acc.id}/issues", data={"description": "x"}).status_code == 404
    assert client.get(f"/estates/{world.estate.id}/acceptance").status_code == 404
    # its own row: signed
    with mock.patch("residents_app.works.acceptance.views.utcnow", return_value=world.now):
        resp = client.post(f"/api/works/acceptance/{acc.id}/participants/{rows['contractor'].id}/sign",
                           json={"opinion": "同意"})
    assert resp.status_code == 200
    signed = {p["role"]: p["signed"] for p in resp.get_json()["participants"]}
    construction_page = client.get(f"/estates/{world.estate.id}/construction").get_data(as_text=True)
    assert "待您签字" not in construction_page and "已签字 2026-09-01 10:00" in construction_page
    assert signed == {"builder": False, "street": False, "community": False, "owners": False, "designer": False,
                      "contractor": True, "supervisor": False, "utility": False}
