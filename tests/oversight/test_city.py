"""The city view and the district housing bureau's role (issue 19 item 3).

Two districts: 鹿城区 with the street offices A and B, 瓯海区 with the street office C. The bureau of 鹿城区 sees
A's and B's estates (read-only) and never C's. Estates come from the district tests' builder: 1幢 101 (80.00 m²)
and 102 (70.00 m²), an open round with 101's ballot (turnout 1 / 2), and every third estate (by its number) a
closed round not signed off yet (1 to verify).
"""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from residents_app.errors import DomainError, ValidationFailed
from residents_app.oversight import city as city_svc
from residents_app.oversight import district as district_svc
from tests.oversight.test_district_scale import build, planned
from tests.querycount import count_statements

BOUND = 20
JSON = {"Accept": "application/json"}


@pytest.fixture
def world(factory, db):
    a = factory.street_office(name="五马街道")
    b = factory.street_office(name="南汇街道")
    c = factory.street_office(name="景山街道")
    a.name, b.name, c.name = "五马街道", "南汇街道", "景山街道"
    a.district = b.district = "鹿城区"
    c.district = "瓯海区"
    bureau = factory.user("bureau")
    bureau.district = "鹿城区"
    db.session.commit()
    return a, b, c, bureau


def _get(client, db, url):
    db.session.expire_all()
    with count_statements(db.engine) as counted:
        resp = client.get(url)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.get_data(as_text=True), counted


def _codes(html):
    return [part.split("（", 1)[1].split("）", 1)[0] for part in html.split('<tr id="estate-')[1:]]


def test_city_view_runs_the_same_few_statements_at_3_and_at_30_estates(client, login_as, factory, db, world):
    a, b, c, bureau = world
    build(factory, db, a, 2, start=0)
    build(factory, db, b, 1, start=100)
    build(factory, db, c, 2, start=200)  # another district: never on the bureau's page
    login_as(client, bureau)
    html, small = _get(client, db, "/city")
    assert small.total <= BOUND, small.report()
    assert "共 3 个小区" in html and _codes(html) == ["D000", "D001", "D100"]
    build(factory, db, a, 13, start=2)
    build(factory, db, b, 14, start=101)
    html, large = _get(client, db, "/city")
    assert "共 30 个小区" in html and len(_codes(html)) == 30
    assert large.total <= BOUND, large.report()
    assert large.total == small.total, (small.report(), large.report())
    assert "D200" not in html and "景山街道" not in html
    assert "<svg" not in html


def test_city_table_per_office_lines_filters_sorts_pages_and_exports(client, login_as, factory, db, now, world,
                                                                       monkeypatch):
    a, b, c, bureau = world
    build(factory, db, a, 4, start=0)  # D000 and D003 have a closed round to verify
    build(factory, db, b, 2, start=102)  # D102 has one
    plan = planned(factory, db, b, now, 250_000)  # in B: funding 200,000 / 1,100,000
    build(factory, db, c, 1, start=200)
    login_as(client, bureau)
    html, _ = _get(client, db, "/city")
    assert "全区总览：鹿城区" in html and "共 7 个小区，符合条件 7 个" in html
    # One line per street office of the district, by name (code point order: 五 U+4E94 before 南 U+5357).
    assert html.index(f'id="office-{a.id}"') < html.index(f'id="office-{b.id}"')
    assert f'id="office-{c.id}"' not in html
    line_a = html.split(f'id="office-{a.id}"')[1].split("</tr>")[0]
    assert [x.split(">")[-1] for x in line_a.split("</td>")[1:4]] == ["4", "4", "2"]
    line_b = html.split(f'id="office-{b.id}"')[1].split("</tr>")[0]
    assert [x.split(">")[-1] for x in line_b.split("</td>")[1:4]] == ["3", "2", "1"]
    row = html.split(f'id="estate-{plan.estate.id}"')[1].split("</tr>")[0]
    assert "南汇街道" in row and "筹资中" in row and "18.18% · 未缴清 2 户" in row

    html, _ = _get(client, db, f"/city?office={b.id}")
    assert "符合条件 3 个" in html and sorted(_codes(html)) == sorted(["D102", "D103", plan.estate.code])
    html, _ = _get(client, db, f"/city?office={c.id}")  # another district's office: nothing
    assert "共 7 个小区，符合条件 0 个" in html and "没有符合条件的小区。" in html
    html, _ = _get(client, db, "/city?overdue=1")
    assert _codes(html) == ["D000", "D003", "D102"]
    html, _ = _get(client, db, f"/city?overdue=1&office={a.id}")
    assert _codes(html) == ["D000", "D003"]
    html, _ = _get(client, db, "/city?stage=筹资中")
    assert _codes(html) == [plan.estate.code]
    html, _ = _get(client, db, "/city?sort=office&dir=desc")  # 南汇 (B) before 五马 (A), each by code, reversed
    assert _codes(html) == [*sorted(["D102", "D103", plan.estate.code], reverse=True), "D003", "D002", "D001",
                            "D000"]
    html, _ = _get(client, db, "/city?sort=funding&dir=desc")
    assert _codes(html)[0] == plan.estate.code

    monkeypatch.setattr(district_svc, "PAGE_SIZE", 3)
    html, _ = _get(client, db, "/city?page=3&sort=code")
    assert "第 3 / 3 页" in html and html.count('<tr id="estate-') == 1
    html, _ = _get(client, db, "/city?page=99")
    assert "第 3 / 3 页" in html

    lines = client.get("/city/export.csv?overdue=1&sort=code").get_data().decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(["街道", *district_svc.HEADER])
    assert [line.split(",")[:2] for line in lines[1:]] == [["五马街道", "D000"], ["五马街道", "D003"],
                                                           ["南汇街道", "D102"]]
    assert lines[1].split(",")[3:13] == ["投票中：改造意愿征求（改不改）", "1", "50.00%", "1", "2", "户", "—", "0", "1",
                                         "1"]
    resp = client.get(f"/city/export.xlsx?office={a.id}&sort=code&dir=desc")
    ws = load_workbook(io.BytesIO(resp.get_data())).active
    assert [r[:2] for r in ws.iter_rows(min_row=2, values_only=True)] == [
        ("五马街道", "D003"), ("五马街道", "D002"), ("五马街道", "D001"), ("五马街道", "D000")]
    lines = client.get(f"/city/export.csv?office={c.id}").get_data().decode("utf-8-sig").splitlines()
    assert lines == [",".join(city_svc.EXPORT_HEADER)]


def test_bureau_never_sees_another_district_and_changes_nothing(app, client, login_as, factory, db, world):
    a, b, c, bureau = world
    build(factory, db, a, 1, start=0)
    build(factory, db, c, 1, start=200)
    from tests.oversight.test_district_scale import _estates

    mine, theirs = _estates(db, a)[0], _estates(db, c)[0]
    login_as(client, bureau)
    assert client.get(f"/estates/{mine.id}/dashboard").status_code == 200
    resp = client.get(f"/estates/{theirs.id}/dashboard", headers=JSON)
    assert (resp.status_code, resp.get_json()) == (404, {"code": "not_found", "status": 404,
                                                          "message": "找不到该小区", "errors": {}})
    not_found = {"code": "not_found", "status": 404, "message": "找不到该内容", "errors": {}}
    # The street office's pages, the verification desk, a sign-off, the register: not a bureau's.
    rnd = _open_round(db, mine)
    for method, url in (("get", "/district"), ("get", "/district/export.csv"), ("get", f"/rounds/{rnd}/verify"),
                        ("post", f"/rounds/{rnd}/verify"), ("get", f"/rounds/{rnd}/report.pdf")):
        resp = getattr(client, method)(url, headers=JSON)
        assert (resp.status_code, resp.get_json()) == (404, not_found), url
    # Editing an estate it sees: 403 (estate_or_404(edit=True), as every write path asks).
    from flask_login import login_user

    from residents_app.auth.scoping import estate_or_404

    with app.test_request_context():
        login_user(bureau)
        assert estate_or_404(mine.id).id == mine.id
        with pytest.raises(DomainError) as exc:
            estate_or_404(mine.id, edit=True)
        assert (exc.value.status, exc.value.code, exc.value.message) == (
            403, "forbidden", "只有本小区业委会可以进行此操作")
        with pytest.raises(DomainError) as exc:
            estate_or_404(theirs.id)
        assert (exc.value.status, exc.value.message) == (404, "找不到该小区")
    # The street office's staff has no city view.
    street = factory.user("street", office=a)
    db.session.commit()
    login_as(client, street)
    resp = client.get("/city", headers=JSON)
    assert (resp.status_code, resp.get_json()) == (404, not_found)


def test_bureau_without_a_district_sees_nothing(client, login_as, factory, db, world):
    a, _, _, _ = world
    build(factory, db, a, 1, start=0)
    lost = factory.user("bureau")
    db.session.commit()
    login_as(client, lost)
    html, _ = _get(client, db, "/city")
    assert "共 0 个小区" in html and "辖区内还没有小区。" in html


def _open_round(db, estate):
    import sqlalchemy as sa

    from residents_app.rounds.models import Round

    return db.session.execute(sa.select(Round.id).where(Round.estate_id == estate.id, Round.status == "open")
                              ).scalar_one()


def test_bureau_accounts_are_created_for_a_registered_district(app, client, db, world):
    from residents_app.auth.services import create_user

    user = create_user(username="bureau_lc", password="Lucheng-2026-ok", role="bureau", district=" 鹿城区 ")
    assert (user.role, user.district, user.street_office_id, user.estate_id, user.role_label) == (
        "bureau", "鹿城区", None, None, "区住建局")
    for district in (None, "", "龙湾区"):
        with pytest.raises(ValidationFailed) as exc:
            create_user(username="bureau_x", password="Lucheng-2026-ok", role="bureau", district=district)
        assert exc.value.errors == {"district": "区住建局角色需要有效的区名（须与街道登记的所属区一致）"}
    db.session.commit()
    resp = client.post("/login", data={"username": "bureau_lc", "password": "Lucheng-2026-ok"})
    assert (resp.status_code, resp.headers["Location"]) == (302, "/city")
    me = client.get("/api/auth/me").get_json()
    assert (me["role"], me["district"]) == ("bureau", "鹿城区")
    html = client.get("/city").get_data(as_text=True)
    assert '<a href="/city">全区总览</a>' in html


def test_users_create_cli_makes_a_bureau(app, db, world):
    result = app.test_cli_runner().invoke(args=["users", "create", "bureau_cli", "--role", "bureau",
                                                "--district", "瓯海区", "--password", "Ouhai-2026-ok"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "已创建账户 bureau_cli（区住建局）"
    result = app.test_cli_runner().invoke(args=["users", "create", "bureau_bad", "--role", "bureau",
                                                "--district", "龙湾区", "--password", "Ouhai-2026-ok"])
    assert result.exit_code == 1
    assert "错误 district: 区住建局角色需要有效的区名（须与街道登记的所属区一致）" in result.output
