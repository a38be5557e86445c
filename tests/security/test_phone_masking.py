"""Issue 14 item 4: phone numbers are masked (138****0102) on every page, export and API answer; the estate's
committee alone sees a full number on the unit page, on request (a CSRF-protected POST), and each look is logged.
The masked register export still re-imports without change."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
import sqlalchemy as sa
from flask import g
from openpyxl import load_workbook

from residents_app.audit.models import AuditEvent
from residents_app.formatting import mask_phone
from residents_app.registry.models import Owner
from tests.security.test_export_logging import ExportWorld

CO_OWNER_PHONE = "13812340102"
REVEALED = "register.phone_revealed"


@pytest.fixture
def ew(factory, db, now):
    return ExportWorld(factory, db, now)


def _phones(db, estate_id: int) -> list[str]:
    return list(db.session.execute(sa.select(Owner.phone).where(Owner.estate_id == estate_id)
                                   .order_by(Owner.id)).scalars())


def _text(resp) -> str:
    """Everything a download carries, as text: an XLSX's XML parts, or the body."""
    if resp.data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(resp.data)) as z:
            return "".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xml"))
    return resp.get_data(as_text=True)


def _reveals(db) -> list[AuditEvent]:
    db.session.expire_all()
    return list(db.session.execute(sa.select(AuditEvent).where(AuditEvent.kind == REVEALED)
                                   .order_by(AuditEvent.id)).scalars())


@pytest.mark.parametrize(("phone", "masked"), [
    ("13812340102", "138****0102"),
    ("19900000001", "199****0001"),
    (" 13812340102 ", "138****0102"),
    ("12345678", "123****5678"),  # the shortest that keeps 3 + 4 digits
    ("1234567", "****"),  # too short: nothing shown
    ("", ""),
    (None, ""),
])
def test_mask_phone(phone, masked):
    assert mask_phone(phone) == masked


def test_mask_phone_is_a_jinja_filter(app):
    with app.app_context():
        assert app.jinja_env.from_string("{{ p|mask_phone }}").render(p="13812340102") == "138****0102"


# Every download, page and API answer that names owners, as (method, url, shows the co-owner's masked number);
# {estate} {unit} {owner} {plan} {round} resolved below.
SHOWN = [
    ("GET", "/estates/{estate}/export.xlsx", True),
    ("GET", "/plans/{plan}/settlement/dues.xlsx", True),
    ("GET", "/api/estates/{estate}/units", True),
    ("GET", "/api/estates/{estate}/units/{unit}", True),
    ("GET", "/estates/{estate}/units", True),
    ("GET", "/estates/{estate}/units/{unit}", True),
    ("GET", "/estates/{estate}/owners/{owner}", True),
    ("GET", "/rounds/{round}/roll.csv", False),
    ("GET", "/rounds/{round}/roll.xlsx", False),
    ("GET", "/rounds/{round}/verify/export.xlsx", False),
    ("GET", "/plans/{plan}/pledges.xlsx", False),
    ("GET", "/estates/{estate}/ledger.xlsx", False),
]


def _urls(ew) -> dict[str, int]:
    co_owner = next(o for o in ew.u101.owners if o.phone == CO_OWNER_PHONE)
    return {"estate": ew.estate.id, "unit": ew.u101.id, "owner": co_owner.id, "plan": ew.plan_v.id,
            "round": ew.round.id}


@pytest.mark.parametrize("role", ["committee", "street"])
@pytest.mark.parametrize(("method", "url", "shows_masked"), SHOWN, ids=[u for _, u, _ in SHOWN])
def test_no_full_phone_in_any_page_export_or_api(client, login_as, db, ew, role, method, url, shows_masked):
    login_as(client, getattr(ew, role))
    resp = client.open(url.format(**_urls(ew)), method=method)
    assert resp.status_code == 200
    body = _text(resp)
    full = _phones(db, ew.estate.id)
    assert len(full) == 4
    assert [p for p in full if p in body] == []
    assert ("138****0102" in body) is shows_masked  # the co-owner of 1幢-101, masked


def test_register_export_rows_for_the_street_office(client, login_as, ew):
    login_as(client, ew.street)
    resp = client.get(f"/estates/{ew.estate.id}/export.xlsx")
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert rows[0][5:7] == ("业主姓名", "手机号")
    phones = [r[6] for r in rows[1:]]
    assert len(phones) == 4 and all(re.fullmatch(r"1\d\d\*{4}\d{4}", p) for p in phones)
    assert "138****0102" in phones


def test_dues_export_masks_the_contact_column(client, login_as, ew):
    login_as(client, ew.committee)
    rows = list(load_workbook(io.BytesIO(client.get(f"/plans/{ew.plan_v.id}/settlement/dues.xlsx").data))
                ["待退补"].iter_rows(values_only=True))
    first = rows[1]
    assert first[0] == "1幢-101"
    assert first[4] == "、".join(mask_phone(o.phone) for o in ew.u101.owners)


def test_units_api_masks_every_owner(client, login_as, db, ew):
    login_as(client, ew.street)
    items = client.get(f"/api/estates/{ew.estate.id}/units").get_json()["items"]
    phones = sorted(o["phone"] for u in items for o in u["owners"])
    assert phones == sorted(mask_phone(p) for p in _phones(db, ew.estate.id))


def test_owner_update_api_answers_the_masked_number(client, login_as, ew):
    login_as(client, ew.committee)
    owner = ew.u102.owners[0]
    resp = client.put(f"/api/estates/{ew.estate.id}/owners/{owner.id}", json={"name": "更正", "phone": "13811112222"})
    assert resp.status_code == 200
    assert resp.get_json()["phone"] == "138****2222"


def test_owner_form_keeps_the_number_when_left_empty(client, login_as, db, ew):
    login_as(client, ew.committee)
    owner = ew.u102.owners[0]
    phone = owner.phone
    page = client.get(f"/estates/{ew.estate.id}/owners/{owner.id}").get_data(as_text=True)
    assert phone not in page and f'placeholder="{mask_phone(phone)}"' in page
    resp = client.post(f"/estates/{ew.estate.id}/owners/{owner.id}", data={"name": "改名", "phone": ""})
    assert resp.status_code == 302
    db.session.expire_all()
    assert (owner.name, owner.phone) == ("改名", phone)


# ---- the unit page: the full number on request, for the estate's committee only ---------------------------

def _reveal_url(ew, owner_id=None) -> str:
    owner_id = owner_id or next(o.id for o in ew.u101.owners if o.phone == CO_OWNER_PHONE)
    return f"/estates/{ew.estate.id}/units/{ew.u101.id}/owners/{owner_id}/phone"


def test_committee_reveals_a_number_and_the_look_is_logged(client, login_as, db, ew):
    login_as(client, ew.committee)
    page = client.get(f"/estates/{ew.estate.id}/units/{ew.u101.id}").get_data(as_text=True)
    assert CO_OWNER_PHONE not in page and "138****0102" in page
    assert page.count("显示完整号码") == 2  # one button per owner of 1幢-101
    assert 'id="phone-note"' in page
    resp = client.post(_reveal_url(ew))
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    body = resp.get_data(as_text=True)
    assert f'<a href="tel:{CO_OWNER_PHONE}"' in body
    other = next(o for o in ew.u101.owners if o.phone != CO_OWNER_PHONE)
    assert other.phone not in body and mask_phone(other.phone) in body  # only the one asked for
    (event,) = _reveals(db)
    co_owner = next(o for o in ew.u101.owners if o.phone == CO_OWNER_PHONE)
    assert (event.chain, event.actor, event.subject_type, event.subject_id, event.data) == (
        ew.estate.id, f"user:{ew.committee.id}:{ew.committee.username}", "owner", str(co_owner.id),
        {"unit_id": ew.u101.id, "unit": "1幢-101", "owner_id": co_owner.id, "owner": "共有人",
         "phone": "138****0102"})
    # the page shown afterwards is masked again
    assert CO_OWNER_PHONE not in client.get(f"/estates/{ew.estate.id}/units/{ew.u101.id}").get_data(as_text=True)


@pytest.mark.parametrize("who", ["street", "admin"])
def test_others_who_see_the_unit_never_get_the_number(client, login_as, db, ew, factory, who):
    user = ew.street if who == "street" else factory.user("admin")
    db.session.commit()
    login_as(client, user)
    page = client.get(f"/estates/{ew.estate.id}/units/{ew.u101.id}")
    assert page.status_code == 200 and "显示完整号码" not in page.get_data(as_text=True)
    resp = client.post(_reveal_url(ew))
    assert resp.status_code == 403
    assert CO_OWNER_PHONE not in resp.get_data(as_text=True)
    assert _reveals(db) == []


def test_another_estates_committee_gets_404(client, login_as, db, ew, factory):
    other = factory.user("committee", estate=factory.estate(buildings={"1幢": [("101", "50.00")]}))
    db.session.commit()
    login_as(client, other)
    assert client.post(_reveal_url(ew)).status_code == 404
    assert _reveals(db) == []


def test_an_owner_of_another_unit_is_not_revealed_through_this_unit(client, login_as, db, ew):
    login_as(client, ew.committee)
    assert client.post(_reveal_url(ew, owner_id=ew.u201.owners[0].id)).status_code == 404
    assert _reveals(db) == []


def test_reveal_needs_the_csrf_token(csrf_app, client, login_as, db, ew):
    g.pop("csrf_token", None)
    login_as(client, ew.committee)
    page = client.get(f"/estates/{ew.estate.id}/units/{ew.u101.id}").get_data(as_text=True)
    assert client.post(_reveal_url(ew)).status_code == 400
    assert _reveals(db) == []
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    resp = client.post(_reveal_url(ew), data={"csrf_token": token})
    assert resp.status_code == 200 and CO_OWNER_PHONE in resp.get_data(as_text=True)
    assert len(_reveals(db)) == 1


# ---- the masked export goes back in -------------------------------------------------------------------------

def test_masked_export_reimports_without_change_over_http(client, login_as, db, ew):
    login_as(client, ew.committee)
    data = client.get(f"/estates/{ew.estate.id}/export.xlsx").data
    resp = client.post(f"/api/estates/{ew.estate.id}/import", data={"dry_run": "false",
                                                                   "file": (io.BytesIO(data), "名册.xlsx")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200, resp.get_json()
    assert (resp.get_json()["has_changes"], resp.get_json()["counts"]["owners_added"]) == (False, 0)
    assert CO_OWNER_PHONE in _phones(db, ew.estate.id)


def _roster(*rows) -> bytes:
    lines = ["楼栋,房号,产权面积,业主姓名,手机号"] + [",".join(r) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_masked_phone_must_match_an_owner_of_that_unit(client, login_as, db, ew):
    login_as(client, ew.committee)
    other = mask_phone(ew.u201.owners[0].phone)
    csv = _roster(("1幢", "101", "60.00", "共有人", "138****0102"),   # matches the co-owner: kept
                  ("1幢", "102", "40.00", "某人", other),              # 2幢-101's owner, not 1幢-102's
                  ("3幢", "301", "50.00", "新人", "138****9999"))      # a new unit: nothing to match
    resp = client.post(f"/api/estates/{ew.estate.id}/import", data={"dry_run": "true",
                                                                   "file": (io.BytesIO(csv), "r.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422
    rows = resp.get_json()["errors"]["rows"]
    assert [(r["row"], r["column"]) for r in rows] == [(3, "手机号"), (4, "手机号")]
    assert rows[0]["message"] == (f"1幢-102 的手机号 {other} 已打码，且不能对应到本户唯一一位已登记业主："
                                  f"请填写完整手机号")
