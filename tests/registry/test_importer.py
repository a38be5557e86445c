"""Parsing roster files: encodings, headers, exact XLSX areas, every bad row reported."""

from __future__ import annotations

from decimal import Decimal

import pytest

from residents_app.registry.importer import RowError, parse_area, parse_roster
from tests.registry.conftest import csv_bytes, xlsx_bytes

GOOD = [
    ["1幢", "101", "88.50", "张三", "13900000001", "1234", "否", "住宅"],
    ["1幢", "101", "88.50", "李四", "13900000002", "", "否", "住宅"],
    ["2幢", "201", "102.30", "张三", "13900000001", "1234", "是", "商铺"],
]


def _summary(parsed):
    return [(r.row, r.building, r.unit, r.title_area_m2, r.owner_name, r.owner_phone, r.id_last4, r.is_hardship,
             r.kind) for r in parsed.rows]


EXPECTED = [
    (2, "1幢", "101", Decimal("88.50"), "张三", "13900000001", "1234", False, "residential"),
    (3, "1幢", "101", Decimal("88.50"), "李四", "13900000002", None, False, "residential"),
    (4, "2幢", "201", Decimal("102.30"), "张三", "13900000001", "1234", True, "commercial"),
]


@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("gb18030", False)])
def test_csv_encodings_give_the_same_rows(encoding, bom):
    data = csv_bytes(GOOD, encoding=encoding, bom=bom)
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # really not UTF-8
    parsed = parse_roster("名册.csv", data)
    assert parsed.errors == []
    assert _summary(parsed) == EXPECTED


def test_english_headers_and_any_column_order():
    header = ["owner_phone", "owner_name", "unit", "building", "title_area_m2", "kind", "hardship", "id_last4"]
    rows = [[r[4], r[3], r[1], r[0], r[2], r[7], r[6], r[5]] for r in GOOD]
    parsed = parse_roster("roster.csv", csv_bytes(rows, header=header))
    assert parsed.errors == []
    assert _summary(parsed) == EXPECTED


def test_xlsx_float_areas_are_exact():
    rows = [
        ["1幢", 101, 102.3, "张三", 13900000001, 123, "否", "住宅"],
        ["1幢", 102, 88.05, "李四", 13900000002, None, 0, None],
        ["1幢", 103, 90, "王五", "139 0000 0003", "123x", 1, "商铺"],
    ]
    parsed = parse_roster("名册.xlsx", xlsx_bytes(rows))
    assert parsed.format == "xlsx"
    assert parsed.errors == []
    assert [(r.unit, r.title_area_m2, r.owner_phone, r.id_last4, r.is_hardship, r.kind) for r in parsed.rows] == [
        ("101", Decimal("102.30"), "13900000001", "0123", False, "residential"),
        ("102", Decimal("88.05"), "13900000002", None, False, "residential"),
        ("103", Decimal("90.00"), "13900000003", "123X", True, "commercial"),
    ]
    assert str(parsed.rows[0].title_area_m2) == "102.30"


def test_xlsx_float_with_binary_noise_is_refused_as_more_than_two_places():
    area = 0.1 + 0.2
    assert repr(area) == "0.30000000000000004"
    rows = [["1幢", "101", 1.0, "张三", "13900000001", "", "", ""],
            ["1幢", "102", 1.0, "李四", "13900000002", "", "", ""],
            ["1幢", "103", 1.0, "王五", "13900000003", "", "", ""]]
    # Excel stores 17 significant digits: a computed 0.1+0.2 as 0.30000000000000004, a typed 88.05
    # as 88.049999999999997 (the same double as 88.05, so it is exact).
    data = xlsx_bytes(rows, raw={"C2": repr(area), "C3": "88.049999999999997", "C4": "264.15000000000003"})
    parsed = parse_roster("r.xlsx", data)
    assert parsed.rows == []
    assert parsed.errors == [
        RowError(2, "产权面积", "面积「0.30000000000000004」超过两位小数"),
        RowError(4, "产权面积", "面积「264.15000000000003」超过两位小数"),
    ]
    fixed = parse_roster("r.xlsx", xlsx_bytes(rows, raw={"C2": "0.3", "C3": "88.049999999999997", "C4": "264.15"}))
    assert fixed.errors == []
    assert [r.title_area_m2 for r in fixed.rows] == [Decimal("0.30"), Decimal("88.05"), Decimal("264.15")]


@pytest.mark.parametrize("value,expected", [
    ("102.3", Decimal("102.30")), ("0.01", Decimal("0.01")), ("1,234.5", Decimal("1234.50")),
    ("102.300", Decimal("102.30")), (99999.99, Decimal("99999.99")), (7, Decimal("7.00")),
])
def test_area_accepted(value, expected):
    got = parse_area(value)
    assert got == expected
    assert got.as_tuple().exponent == -2


@pytest.mark.parametrize("value,message", [
    ("0", "面积「0」必须大于 0"), ("-1.5", "面积「-1.5」必须大于 0"), ("0.001", "面积「0.001」超过两位小数"),
    ("abc", "面积「abc」不是数字"), ("", "面积不能为空"), (None, "面积不能为空"), ("NaN", "面积「NaN」不是数字"),
    (100000, "面积「100000」过大"), (True, "面积必须是数字"),
])
def test_area_refused(value, message):
    with pytest.raises(ValueError) as exc:
        parse_area(value)
    assert str(exc.value) == message


def test_every_bad_row_is_reported_with_row_column_reason():
    rows = [
        ["1幢", "101", "88.50", "张三", "13900000001", "", "", ""],      # row 2 ok
        ["1幢", "", "88.50", "李四", "13900000002", "", "", ""],         # row 3 missing unit
        ["1幢", "102", "0", "王五", "13900000003", "", "", ""],          # row 4 area not positive
        [],                                                             # row 5 blank (ignored, still counted)
        ["1幢", "103", "88.505", "赵六", "1390000", "", "", ""],         # row 6 two errors
        ["1幢", "101", "90.00", "钱七", "13900000007", "", "", ""],      # row 7 same unit, other area
        ["1幢", "104", "70", "孙八", "13900000008", "12345", "也许", "车库"],  # row 8 three errors
    ]
    parsed = parse_roster("r.csv", csv_bytes(rows))
    assert parsed.rows == []
    assert [str(e) for e in parsed.errors] == [
        "第 3 行「房号」列：房号不能为空",
        "第 4 行「产权面积」列：面积「0」必须大于 0",
        "第 6 行「产权面积」列：面积「88.505」超过两位小数",
        "第 6 行「手机号」列：手机号「1390000」格式不正确（应为 11 位大陆手机号）",
        "第 7 行「产权面积」列：1幢-101 的面积 90.00 与第 2 行的 88.50 不一致",
        "第 8 行「身份证后四位」列：身份证后四位「12345」格式不正确（应为 4 位数字，最后一位可为 X）",
        "第 8 行「困难户」列：困难户「也许」无法识别（填 是/否 或 1/0）",
        "第 8 行「类型」列：类型「车库」无法识别（填 住宅 或 商铺）",
    ]


def test_unit_consistency_is_checked_once_rows_are_valid():
    rows = [
        ["1幢", "101", "88.50", "张三", "13900000001", "", "否", "住宅"],
        ["1幢", "101", "90.00", "李四", "13900000002", "", "是", "商铺"],
        ["1幢", "102", "70.00", "张三", "13900000001", "", "", ""],
        ["1幢", "102", "70.00", "张叁", "13900000001", "", "", ""],
        ["1幢", "103", "70.00", "张三丰", "13900000001", "", "", ""],
    ]
    parsed = parse_roster("r.csv", csv_bytes(rows))
    assert [e.as_dict() for e in parsed.errors] == [
        {"row": 3, "column": "产权面积", "message": "1幢-101 的面积 90.00 与第 2 行的 88.50 不一致"},
        {"row": 3, "column": "类型", "message": "1幢-101 的类型与第 2 行不一致"},
        {"row": 3, "column": "困难户", "message": "1幢-101 的困难户标记与第 2 行不一致"},
        {"row": 5, "column": "手机号", "message": "1幢-102 的业主（手机号 13900000001）与第 4 行重复"},
        {"row": 5, "column": "业主姓名",
         "message": "手机号 13900000001 在第 2 行登记为「张三」，同一手机号只能对应一位业主"},
        {"row": 6, "column": "业主姓名",
         "message": "手机号 13900000001 在第 2 行登记为「张三」，同一手机号只能对应一位业主"},
    ]


def test_unknown_duplicate_and_missing_columns():
    header = ["楼栋", "房号", "面积", "业主姓名", "building"]
    parsed = parse_roster("r.csv", csv_bytes([["1幢", "101", "88", "张三", "x"]], header=header))
    assert [str(e) for e in parsed.errors] == [
        "第 1 行「面积」列：未知的列（可用的列见 docs/ROSTER.md）",
        "第 1 行「building」列：列重复",
        "第 1 行「产权面积」列：缺少必需的列",
        "第 1 行「手机号」列：缺少必需的列",
    ]


def test_empty_header_only_and_garbage_files():
    assert [str(e) for e in parse_roster("r.csv", b"").errors] == ["第 1 行：文件是空的"]
    assert [str(e) for e in parse_roster("r.csv", csv_bytes([])).errors] == ["第 2 行：文件只有表头，没有数据行"]
    assert [str(e) for e in parse_roster("r.xlsx", b"PK\x03\x04garbage").errors] == [
        "第 1 行：无法读取 XLSX 文件（文件损坏或不是 Excel 2007+ 格式）"]
    assert [str(e) for e in parse_roster("r.csv", b"\xff\xfe\x00\x81\xff").errors] == [
        "第 1 行：无法识别文件编码（请保存为 UTF-8 或 GB18030 编码的 CSV，或 XLSX）"]


def test_row_with_more_cells_than_header():
    data = "楼栋,房号,产权面积,业主姓名,手机号\n1幢,101,88.5,张三,13900000001,多余\n".encode()
    assert [str(e) for e in parse_roster("r.csv", data).errors] == ["第 2 行：该行的单元格多于表头的列数"]


def test_xlsx_row_numbers_skip_nothing():
    rows = [["1幢", "101", 88.5, "张三", "13900000001", "", "", ""], [None] * 8,
            ["1幢", "102", -3, "李四", "13900000002", "", "", ""]]
    parsed = parse_roster("r.xlsx", xlsx_bytes(rows))
    assert parsed.errors == [RowError(4, "产权面积", "面积「-3」必须大于 0")]


def test_xlsx_cell_that_excel_turned_into_a_date_is_refused():
    from datetime import datetime

    rows = [["1幢", datetime(2026, 1, 2), 88.5, "张三", "13900000001", "", "", ""]]
    parsed = parse_roster("r.xlsx", xlsx_bytes(rows))
    assert [str(e) for e in parsed.errors] == [
        "第 2 行「房号」列：房号被 Excel 识别成了日期，请把该列设为“文本”格式后重新输入"]


def test_every_two_place_area_survives_the_float_round_trip():
    """Every area 0.01 .. 99999.99 m² typed in Excel (a float) converts back to exactly itself."""
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.integers(min_value=1, max_value=9_999_999))
    def check(hundredths):
        exact = Decimal(hundredths).scaleb(-2)
        assert parse_area(float(exact)) == exact

    check()


def test_xlsx_zip_bomb_is_refused_before_it_is_unpacked():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (80 * 1024 * 1024))  # 80 MB of zeros, ~80 KB packed
    data = buf.getvalue()
    assert len(data) < 200_000
    errors = [str(e) for e in parse_roster("r.xlsx", data).errors]
    assert len(errors) == 1 and errors[0].startswith("第 1 行：")
    assert "解压" in errors[0] or "压缩" in errors[0], errors[0]
