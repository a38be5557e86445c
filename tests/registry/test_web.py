"""Pages and JSON API of the register: summary, search, edits, import with preview, scoping."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
import sqlalchemy as sa

from residents_app.registry.models import Unit
from residents_app.registry.services import register_summary
from tests.registry.conftest import csv_bytes, snapshot, xlsx_bytes

ROWS = [
    ["1幢", "101", "88.50", "张三", "13900000001", "", "否", "住宅"],
    ["1幢", "101", "88.50", "李四", "13900000002", "", "否", "住宅"],
    ["1幢", "102", "102.30", "张三", "13900000001", "", "是", "商铺"],
]


@pytest.fixture
def world(db, factory):
    """Estate A (committee a), estate B (committee b) of the same street office, and its street officer."""
    office = factory.street_office()
    a = factory.estate(office=office, buildings={"1幢": [("101", "88.50"), ("102", "70.00")]})
    b = factory.estate(office=office, buildings={"9幢": [("901", "60.00")]})
    far = factory.estate(buildings={"8幢": [("801", "60.00")]})  # another street office
    users = {
        "committee_a": factory.user("committee", estate=a),
        "committee_b": factory.user("committee", estate=b),
        "street": factory.user("street", office=office),
        "admin": factory.user("admin"),
    }
    db.session.commit()  # an error response rolls the session back to here (not to the empty database)
    return {
        "a": a, "b": b, "far": far, **users}


def _unit(estate, number):
    from residents_app.extensions import db

    return db.session.execute(sa.select(Unit).where(Unit.estate_id == estate.id, Unit.number == number)).scalar_one()


def test_overview_page_shows_exact_summary_and_links(client, login_as, world):
    login_as(client, world["committee_a"])
    resp = client.get(f"/estates/{world['a'].id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "158.50" in html and "全小区合计" in html
    for path in ("rounds", "links", "publicity", "plans", "funding", "start", "dashboard"):
        assert f'href="/estates/{world["a"].id}/{path}"' in html
    assert f'href="/estates/{world["a"].id}/import"' in html


def test_units_page_search_and_edit_form(client, login_as, world):
    login_as(client, world["committee_a"])
    html = client.get(f"/estates/{world['a'].id}/units?q=1幢-102").get_data(as_text=True)
    assert "共 1 户" in html and "1幢-102" in html and "1幢-101" not in html
    unit = _unit(world["a"], "101")
    resp = client.post(f"/estates/{world['a'].id}/units/{unit.id}",
                       data={"title_area_m2": "88.55", "kind": "residential", "is_hardship": "1"})
    assert resp.status_code == 302
    assert (unit.title_area_m2, unit.is_hardship) == (Decimal("88.55"), True)
    resp = client.post(f"/estates/{world['a'].id}/units/{unit.id}",
                       data={"title_area_m2": "88.555", "kind": "residential"})
    assert resp.status_code == 422
    assert "面积「88.555」超过两位小数" in resp.get_data(as_text=True)
    assert unit.title_area_m2 == Decimal("88.55")


def test_owner_add_and_remove_pages(client, login_as, world):
    login_as(client, world["committee_a"])
    unit = _unit(world["a"], "101")
    first = unit.owners[0]
    resp = client.post(f"/estates/{world['a'].id}/units/{unit.id}/owners",
                       data={"name": "配偶", "phone": "13812345678", "id_last4": ""})
    assert resp.status_code == 302
    assert sorted(o.name for o in unit.owners) == sorted([first.name, "配偶"])
    resp = client.post(f"/estates/{world['a'].id}/units/{unit.id}/owners", data={"name": "x", "phone": "123"})
    assert resp.status_code == 422 and "手机号「123」格式不正确" in resp.get_data(as_text=True)
    assert client.post(f"/estates/{world['a'].id}/units/{unit.id}/owners/{first.id}/remove").status_code == 302
    assert [o.name for o in unit.owners] == ["配偶"]
    last = unit.owners[0]
    resp = client.post(f"/estates/{world['a'].id}/units/{unit.id}/owners/{last.id}/remove")
    assert resp.status_code == 409 and "每户至少保留一名业主" in resp.get_data(as_text=True)


def test_import_preview_then_commit_reparses_the_stored_file(client, login_as, world, roster_upload_dir):
    login_as(client, world["committee_a"])
    a = world["a"]
    before = snapshot()
    resp = client.post(f"/estates/{a.id}/import",
                       data={"file": (io.BytesIO(csv_bytes(ROWS, encoding="gb18030")), "名册.csv")},
                       content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert '<td class="num" id="units-changed">1</td>' in html  # 1幢-102: area, kind, hardship
    assert '<td class="num" id="units-added">0</td>' in html
    assert '<td class="num" id="owners-added">2</td>' in html
    assert snapshot() == before  # the preview writes nothing
    token = html.split('name="token" value="')[1].split('"')[0]
    assert len(list(roster_upload_dir.rglob("*.csv"))) == 1
    # a forged token is refused; the file on the server is what gets imported
    resp = client.post(f"/estates/{a.id}/import/commit", data={"token": "../../etc/passwd"})
    assert resp.status_code == 422 and "上传的文件已失效" in resp.get_data(as_text=True)
    resp = client.post(f"/estates/{a.id}/import/commit", data={"token": token})
    assert resp.status_code == 302
    s = register_summary(a.id)
    # the factory's owners were replaced: persons are now 张三 and 李四 only
    assert (s.unit_count, s.owner_count, s.title_area_m2, s.commercial.unit_count) == (2, 2, Decimal("190.80"), 1)
    assert list(roster_upload_dir.rglob("*.csv")) == []
    # the token of another estate's upload cannot be used here either
    resp = client.post(f"/estates/{a.id}/import/commit", data={"token": token})
    assert resp.status_code == 422


def test_import_page_reports_every_bad_row(client, login_as, world, roster_upload_dir):
    login_as(client, world["committee_a"])
    before = snapshot()
    bad = ROWS + [["1幢", "103", "0.001", "王五", "139", "", "", ""]]
    resp = client.post(f"/estates/{world['a'].id}/import", data={"file": (io.BytesIO(csv_bytes(bad)), "bad.csv")},
                       content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "名册有 2 处错误，未导入任何数据" in html
    assert "面积「0.001」超过两位小数" in html and "手机号「139」格式不正确" in html
    assert snapshot() == before


def test_export_xlsx_download(client, login_as, world):
    from openpyxl import load_workbook

    login_as(client, world["street"])
    resp = client.get(f"/estates/{world['a'].id}/export.xlsx")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(values_only=True))
    assert rows[0] == ("楼栋", "房号", "产权面积", "类型", "困难户", "业主姓名", "手机号", "身份证后四位")
    assert [r[:5] for r in rows[1:]] == [("1幢", "101", 88.5, "住宅", "否"), ("1幢", "102", 70.0, "住宅", "否")]


# ---- scoping --------------------------------------------------------------------------------------

def _paths(estate, unit):
    return [f"/estates/{estate.id}", f"/estates/{estate.id}/units", f"/estates/{estate.id}/units/{unit.id}",
            f"/estates/{estate.id}/import", f"/estates/{estate.id}/export.xlsx",
            f"/api/estates/{estate.id}", f"/api/estates/{estate.id}/units",
            f"/api/estates/{estate.id}/units/{unit.id}"]


@pytest.mark.parametrize("who,target", [("committee_a", "b"), ("committee_b", "a"), ("street", "far"),
                                        ("committee_a", "far")])
def test_outside_scope_is_404_everywhere(client, login_as, world, who, target, roster_upload_dir):
    login_as(client, world[who])
    estate = world[target]
    unit = estate.buildings[0].units[0]
    before = snapshot()
    for path in _paths(estate, unit):
        resp = client.get(path)
        assert resp.status_code == 404, path
    writes = [
        client.post(f"/estates/{estate.id}/units/{unit.id}", data={"title_area_m2": "1.00"}),
        client.post(f"/estates/{estate.id}/units/{unit.id}/owners", data={"name": "x", "phone": "13800000000"}),
        client.post(f"/estates/{estate.id}/units/{unit.id}/owners/{unit.owners[0].id}/remove"),
        client.post(f"/estates/{estate.id}/import", data={"file": (io.BytesIO(csv_bytes(ROWS)), "r.csv")},
                    content_type="multipart/form-data"),
        client.patch(f"/api/estates/{estate.id}/units/{unit.id}", json={"title_area_m2": "1.00"}),
        client.post(f"/api/estates/{estate.id}/units/{unit.id}/owners", json={"name": "x", "phone": "13800000000"}),
        client.delete(f"/api/estates/{estate.id}/units/{unit.id}/owners/{unit.owners[0].id}"),
        client.post(f"/api/estates/{estate.id}/import", data={"file": (io.BytesIO(csv_bytes(ROWS)), "r.csv")},
                    content_type="multipart/form-data"),
    ]
    assert [r.status_code for r in writes] == [404] * len(writes)
    assert writes[4].get_json() == {"code": "not_found", "status": 404, "message": "找不到该小区", "errors": {}}
    assert snapshot() == before


def test_committee_cannot_reach_another_estates_unit_through_its_own_estate(client, login_as, world):
    login_as(client, world["committee_a"])
    foreign = world["b"].buildings[0].units[0]
    assert client.get(f"/estates/{world['a'].id}/units/{foreign.id}").status_code == 404
    resp = client.patch(f"/api/estates/{world['a'].id}/units/{foreign.id}", json={"title_area_m2": "1.00"})
    assert resp.status_code == 404
    assert foreign.title_area_m2 == Decimal("60.00")


def test_street_office_reads_its_estates_but_cannot_change_them(client, login_as, world, roster_upload_dir):
    login_as(client, world["street"])
    a = world["a"]
    unit = a.buildings[0].units[0]
    for path in _paths(a, unit):
        if path.endswith("/import"):
            continue
        assert client.get(path).status_code == 200, path
    html = client.get(f"/estates/{a.id}/units/{unit.id}").get_data(as_text=True)
    assert "<form method=\"post\" class=\"form\"" not in html and "本页只读" not in html
    assert "本页只读" in client.get(f"/estates/{a.id}").get_data(as_text=True)
    before = snapshot()
    assert client.get(f"/estates/{a.id}/import").status_code == 403
    assert client.post(f"/estates/{a.id}/units/{unit.id}", data={"title_area_m2": "1.00"}).status_code == 403
    resp = client.patch(f"/api/estates/{a.id}/units/{unit.id}", json={"title_area_m2": "1.00"})
    assert resp.status_code == 403
    assert resp.get_json()["message"] == "只有本小区业委会可以进行此操作"
    resp = client.post(f"/api/estates/{a.id}/import", data={"file": (io.BytesIO(csv_bytes(ROWS)), "r.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 403
    assert snapshot() == before
    codes = sorted(e["code"] for e in client.get("/api/estates/").get_json())
    assert codes == sorted([a.code, world["b"].code])


def test_anonymous_gets_401_on_api_and_login_redirect_on_pages(client, world):
    assert client.get("/api/estates/").status_code == 401
    resp = client.get(f"/estates/{world['a'].id}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


# ---- API --------------------------------------------------------------------------------------

def test_api_estate_summary_and_units(client, login_as, world):
    login_as(client, world["committee_a"])
    a = world["a"]
    assert [e["code"] for e in client.get("/api/estates/").get_json()] == [a.code]
    body = client.get(f"/api/estates/{a.id}").get_json()
    assert body["summary"]["title_area_m2"] == "158.50"
    assert (body["summary"]["unit_count"], body["summary"]["owner_count"], body["can_edit"]) == (2, 2, True)
    assert body["summary"]["buildings"][0]["name"] == "1幢"
    page = client.get(f"/api/estates/{a.id}/units?per_page=1&page=2").get_json()
    assert (page["total"], page["pages"], [u["label"] for u in page["items"]]) == (2, 2, ["1幢-102"])
    resp = client.get(f"/api/estates/{a.id}/units?per_page=0&page=0")
    assert resp.status_code == 422
    assert set(resp.get_json()["errors"]["query"]) == {"per_page", "page"}


def test_api_unit_update_and_owner_changes(client, login_as, world):
    login_as(client, world["committee_a"])
    a = world["a"]
    unit = _unit(a, "101")
    resp = client.patch(f"/api/estates/{a.id}/units/{unit.id}", json={"title_area_m2": "90.1", "is_hardship": True})
    assert resp.status_code == 200
    assert (resp.get_json()["title_area_m2"], resp.get_json()["is_hardship"]) == ("90.10", True)
    resp = client.patch(f"/api/estates/{a.id}/units/{unit.id}", json={"title_area_m2": 0.1 + 0.2})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {"title_area_m2": "面积「0.30000000000000004」超过两位小数"}
    resp = client.patch(f"/api/estates/{a.id}/units/{unit.id}", json={"owner": "x"})
    assert resp.status_code == 422 and "owner" in resp.get_json()["errors"]["json"]
    resp = client.post(f"/api/estates/{a.id}/units/{unit.id}/owners", json={"name": "配偶", "phone": "13812345678"})
    assert resp.status_code == 201
    owners = resp.get_json()["owners"]
    assert sorted(o["name"] for o in owners) == sorted([unit.owners[0].name, "配偶"])
    spouse = next(o for o in owners if o["name"] == "配偶")
    resp = client.delete(f"/api/estates/{a.id}/units/{unit.id}/owners/{spouse['id']}")
    assert resp.status_code == 200 and len(resp.get_json()["owners"]) == 1
    resp = client.delete(f"/api/estates/{a.id}/units/{unit.id}/owners/{unit.owners[0].id}")
    assert resp.status_code == 409 and resp.get_json()["code"] == "last_owner"


def test_api_import_dry_run_then_real_and_bad_file(client, login_as, world):
    login_as(client, world["committee_a"])
    a = world["a"]
    before = snapshot()
    rows = [["2幢", 201, 102.3, "新人", 13900000011, None, "否", "住宅"]]
    resp = client.post(f"/api/estates/{a.id}/import", data={"dry_run": "true",
                       "file": (io.BytesIO(xlsx_bytes(rows)), "r.xlsx")}, content_type="multipart/form-data")
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["applied"], body["counts"]["units_added"], body["units_missing"]) == (False, 1, ["1幢-101", "1幢-102"])
    assert snapshot() == before
    resp = client.post(f"/api/estates/{a.id}/import", data={"file": (io.BytesIO(xlsx_bytes(rows)), "r.xlsx")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200 and resp.get_json()["applied"] is True
    assert register_summary(a.id).title_area_m2 == Decimal("260.80")
    after_good = snapshot()
    bad = [["2幢", 202, 0.1 + 0.2, "坏", 1, None, None, None]]
    resp = client.post(f"/api/estates/{a.id}/import", data={"file": (io.BytesIO(xlsx_bytes(bad)), "r.xlsx")},
                       content_type="multipart/form-data")
    body = resp.get_json()
    assert resp.status_code == 422
    assert body["code"] == "roster_rejected"
    assert body["errors"]["rows"] == [
        {"row": 2, "column": "手机号", "message": "手机号「1」格式不正确（应为 11 位大陆手机号）"}]
    assert snapshot() == after_good
    resp = client.post(f"/api/estates/{a.id}/import", data={}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "file" in resp.get_json()["errors"]["files"]


def test_owner_page_and_api_update(client, login_as, world):
    from residents_app.audit.models import AuditEvent
    from residents_app.extensions import db

    a = world["a"]
    owner = _unit(a, "101").owners[0]
    other = _unit(a, "102").owners[0]
    login_as(client, world["committee_a"])
    assert "1幢-101" in client.get(f"/estates/{a.id}/owners/{owner.id}").get_data(as_text=True)
    resp = client.post(f"/estates/{a.id}/owners/{owner.id}", data={"name": "更正名", "phone": "13811112222",
                                                                    "id_last4": "0001"})
    assert resp.status_code == 302
    assert (owner.name, owner.phone, owner.id_last4) == ("更正名", "13811112222", "0001")
    ev = db.session.execute(sa.select(AuditEvent).where(AuditEvent.chain == a.id)
                            .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()
    assert ev.data["after"] == {"name": "更正名", "phone": "138****2222", "id_last4": "0001"}
    resp = client.post(f"/estates/{a.id}/owners/{owner.id}", data={"name": "更正名", "phone": other.phone})
    assert resp.status_code == 422 and "已登记为另一位业主" in resp.get_data(as_text=True)
    resp = client.put(f"/api/estates/{a.id}/owners/{owner.id}", json={"name": "再改", "phone": "13811112222"})
    assert resp.status_code == 200 and resp.get_json()["name"] == "再改"
    b_owner = world["b"].buildings[0].units[0].owners[0]
    assert client.get(f"/estates/{a.id}/owners/{b_owner.id}").status_code == 404
    assert client.put(f"/api/estates/{a.id}/owners/{b_owner.id}",
                      json={"name": "x", "phone": "13811113333"}).status_code == 404
    assert client.get(f"/estates/{world['b'].id}/owners/{b_owner.id}").status_code == 404
    login_as(client, world["street"])
    assert client.get(f"/estates/{a.id}/owners/{owner.id}").status_code == 200
    resp = client.post(f"/estates/{a.id}/owners/{owner.id}", data={"name": "x", "phone": "13811114444"})
    assert resp.status_code == 403


def test_units_page_filters_by_building(client, login_as, world, factory):
    from residents_app.extensions import db
    from residents_app.registry.models import Building

    login_as(client, world["committee_a"])
    a = world["a"]
    b2 = Building(estate_id=a.id, name="2幢")
    db.session.add(b2)
    db.session.flush()
    db.session.add(Unit(estate_id=a.id, building_id=b2.id, number="201", title_area_m2=Decimal("50.00")))
    db.session.commit()
    html = client.get(f"/estates/{a.id}/units?building={b2.id}").get_data(as_text=True)
    assert "共 1 户" in html and "2幢-201" in html and "1幢-101" not in html
    assert "共 3 户" in client.get(f"/estates/{a.id}/units?building=").get_data(as_text=True)
