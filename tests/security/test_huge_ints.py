"""Numbers from outside (path segments, query strings, JSON bodies) and spreadsheets whose XML the parser
refuses: never a 500. An integer the database cannot hold (past 64 bits on SQLite; past 32 bits in an id
column on PostgreSQL) is a 404 (a path: no such object) or a 422 (a field), in the one error shape, with a
Chinese message on pages (issue 14, finding 6)."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

INT64_MAX = 2**63 - 1
ID_MAX = 2**31 - 1  # id columns are INTEGER: 32-bit on PostgreSQL
HUGE = "9999999999999999999999"
SHAPE = {"code", "status", "message", "errors"}
INT_PARAM = re.compile(r"<int(?:\([^)]*\))?:(\w+)>")
OTHER_PARAM = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def site(db, factory):
    estate = factory.estate(code="DEMO", buildings={"1幢": [("101", "88.50")]})
    admin = factory.user("admin")
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    return estate, admin, committee


@pytest.fixture
def admin_client(client, site, login_as):
    login_as(client, site[1])
    return client


def int_rules(app):
    return sorted((r for r in app.url_map.iter_rules() if INT_PARAM.search(r.rule)), key=lambda r: r.rule)


def fill(rule, value: str) -> str:
    """The rule's path with `value` in every integer segment and plausible values elsewhere."""
    def other(m):
        return {"estate_code": "DEMO", "filename": "css/app.css"}.get(m.group(2), "AAAAAAAAAAAAAAAAAAAAAAAAAAA")

    return OTHER_PARAM.sub(other, INT_PARAM.sub(value, rule.rule))


def call(client, method: str, url: str):
    if method == "GET":
        return client.get(url)
    if url.startswith("/api/"):
        return client.open(url, method=method, json={})
    return client.open(url, method=method, data={})


def assert_not_found(resp, url):
    assert resp.status_code == 404, (url, resp.status_code)
    if url.startswith("/api/"):
        body = resp.get_json()
        assert set(body) == SHAPE and (body["code"], body["status"]) == ("not_found", 404)
    else:
        assert "找不到" in resp.get_data(as_text=True)


def test_the_reported_urls_are_404_not_500(admin_client, app):
    anonymous = app.test_client()
    resp = anonymous.get(f"/p/DEMO/documents/{HUGE}")  # documents are addressed by token now (finding 5)
    assert resp.status_code == 404 and "找不到该文件" in resp.get_data(as_text=True)
    resp = admin_client.get(f"/api/rounds/{HUGE}")
    assert resp.status_code == 404
    assert resp.get_json() == {"code": "not_found", "status": 404, "message": "找不到该页面或内容", "errors": {}}
    resp = admin_client.get(f"/estates/{HUGE}/units")
    assert resp.status_code == 404 and "找不到该页面或内容" in resp.get_data(as_text=True)


@pytest.mark.parametrize("value", [HUGE, str(INT64_MAX + 1), str(INT64_MAX), str(ID_MAX + 1), "1" + "0" * 5000])
def test_every_integer_route_answers_404_for_ids_no_id_column_holds(app, admin_client, value):
    anonymous = app.test_client()
    rules = int_rules(app)
    assert len(rules) > 50
    for rule in rules:
        url = fill(rule, value)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            assert_not_found(call(admin_client, method, url), url)
            assert_not_found(call(anonymous, method, url), url)


def test_the_largest_id_is_simply_not_found(app, admin_client):
    for rule in int_rules(app):
        url = fill(rule, str(ID_MAX))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = call(admin_client, method, url)
            assert resp.status_code < 500, (method, url, resp.status_code)


_segments = st.one_of(
    st.integers(min_value=ID_MAX + 1, max_value=10**40).map(str),
    st.integers(min_value=2**20, max_value=ID_MAX).map(str),
    st.integers(min_value=-(10**30), max_value=-1).map(str),
    st.text(alphabet="0123456789", min_size=19, max_size=400),
    st.text(alphabet="0123456789٠١٢٣٤٥٦٧٨٩０１２３４５６７８９-+.eExX_ %", min_size=1, max_size=40),
)


def test_property_integer_routes_never_answer_500(app, admin_client, db):
    """Property: any route with an integer converter, fed huge or malformed ids, as an administrator (who
    reaches every handler) and anonymously, never answers 5xx; past the id range the answer is exactly 404."""
    from residents_app.extensions import limiter

    rules = int_rules(app)
    anonymous = app.test_client()

    @given(rule=st.sampled_from(rules), segment=_segments, as_admin=st.booleans())
    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(rule, segment, as_admin):
        limiter.reset()
        url = fill(rule, segment.replace("%", "%25").replace(" ", "%20"))
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = call(admin_client if as_admin else anonymous, method, url)
            assert resp.status_code < 500, (method, url, resp.status_code)
            if segment.isascii() and segment.isdigit() and int(segment) > ID_MAX:
                assert_not_found(resp, url)

    run()


@pytest.mark.parametrize(("path", "field"), [
    ("/api/estates/{id}/units?page=" + HUGE, "page"),
    ("/api/estates/{id}/units?page=4611686018427387904", "page"),
    ("/api/estates/{id}/units?building_id=" + HUGE, "building_id"),
    ("/api/estates/{id}/units?building_id=2147483648", "building_id"),
    ("/api/estates/{id}/units?per_page=" + HUGE, "per_page"),
    ("/api/rounds?estate_id=" + HUGE, "estate_id"),
    ("/api/rounds?estate_id=2147483648", "estate_id"),
    ("/api/publicity/status?subject_type=round_result&subject_id=" + HUGE, "subject_id"),
])
def test_huge_query_integers_are_422_in_the_api(admin_client, site, path, field):
    resp = admin_client.get(path.format(id=site[0].id))
    assert resp.status_code == 422
    body = resp.get_json()
    assert (body["code"], body["status"]) == ("validation_failed", 422)
    assert set(body) == SHAPE and field in body["errors"]["query"]


@pytest.mark.parametrize(("query", "field"), [
    ("page=" + HUGE, "page"),
    ("page=4611686018427387904", "page"),
    ("building=" + HUGE, "building"),
    ("building=2147483648", "building"),
])
def test_huge_query_integers_are_422_on_pages(admin_client, site, query, field):
    resp = admin_client.get(f"/estates/{site[0].id}/units?{query}")
    assert resp.status_code == 422
    html = resp.get_data(as_text=True)
    assert "数字超出范围" in html and f"<strong>{field}</strong>" in html


def test_pages_keep_their_lenient_defaults(admin_client, site):
    for query in ("page=abc", "page=0", "page=-3", "building=x", "page=", "building="):
        assert admin_client.get(f"/estates/{site[0].id}/units?{query}").status_code == 200


def test_huge_integers_in_json_bodies_are_422(admin_client, site):
    estate = site[0]
    resp = admin_client.post("/api/rounds", json={
        "estate_id": int(HUGE), "kind": "willingness", "title": "改不改",
        "opens_at": "2026-09-01T10:00:00+08:00", "closes_at": "2026-09-10T10:00:00+08:00"})
    assert resp.status_code == 422 and resp.get_json()["code"] == "validation_failed"
    resp = admin_client.post(f"/api/plans/estates/{estate.id}/payments", json={
        "unit_id": int(HUGE), "amount_fen": 1, "method": "cash", "paid_on": "2026-09-01"})
    assert resp.status_code == 422 and set(resp.get_json()) == SHAPE
    resp = admin_client.post(f"/api/plans/estates/{estate.id}/payments", json={
        "unit_id": 2**40, "amount_fen": 1, "method": "cash", "paid_on": "2026-09-01"})
    assert resp.status_code == 422 and set(resp.get_json()) == SHAPE


# ---- XLSX the parser refuses ------------------------------------------------------------------------

def good_xlsx() -> bytes:
    wb = Workbook()
    wb.active.append(["楼栋", "房号", "产权面积", "业主姓名", "手机号"])
    wb.active.append(["1幢", "101", "88.50", "张三", "13900000001"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def with_part(data: bytes, name: str, content: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for info in src.infolist():
            zf.writestr(info.filename, content if info.filename == name else src.read(info.filename))
    return out.getvalue()


BROKEN = [
    ("xl/worksheets/sheet1.xml", b"<not xml"),
    ("xl/workbook.xml", b"<not xml"),
    ("xl/workbook.xml", b'<?xml version="1.0"?><workbook/>'),
    ("[Content_Types].xml", b"\xff\xfe garbage"),
    ("xl/styles.xml", b"<not xml"),
    ("xl/_rels/workbook.xml.rels", b"<not xml"),
    ("docProps/core.xml", b"<not xml"),
]


@pytest.mark.parametrize(("part", "content"), BROKEN)
def test_xlsx_with_broken_xml_is_a_422_on_the_import_page(admin_client, site, part, content, tmp_path, app):
    app.config["ROSTER_UPLOAD_DIR"] = str(tmp_path)
    try:
        resp = admin_client.post(f"/estates/{site[0].id}/import", data={
            "file": (io.BytesIO(with_part(good_xlsx(), part, content)), "名册.xlsx")},
            content_type="multipart/form-data")
    finally:
        app.config["ROSTER_UPLOAD_DIR"] = None
    assert resp.status_code == 422
    assert "无法读取 XLSX 文件" in resp.get_data(as_text=True)


@pytest.mark.parametrize(("part", "content"), BROKEN)
def test_xlsx_with_broken_xml_is_a_422_in_the_api(admin_client, site, part, content):
    resp = admin_client.post(f"/api/estates/{site[0].id}/import", data={
        "file": (io.BytesIO(with_part(good_xlsx(), part, content)), "名册.xlsx"), "dry_run": "true"},
        content_type="multipart/form-data")
    assert resp.status_code == 422
    body = resp.get_json()
    assert (body["code"], body["status"]) == ("roster_rejected", 422)
    [error] = body["errors"]["rows"]
    assert error["row"] == 1 and error["message"].startswith("无法读取 XLSX 文件")


def test_broken_xml_message_names_the_problem(admin_client, site):
    resp = admin_client.post(f"/api/estates/{site[0].id}/import", data={
        "file": (io.BytesIO(with_part(good_xlsx(), "xl/worksheets/sheet1.xml", b"<not xml")), "名册.xlsx"),
        "dry_run": "true"}, content_type="multipart/form-data")
    assert resp.get_json()["errors"]["rows"][0]["message"] == (
        "无法读取 XLSX 文件：文件内部的 XML 数据已损坏（xl/worksheets/sheet1.xml 第 1 行第 1 列），"
        "请在 Excel 中打开后重新另存为 .xlsx")
