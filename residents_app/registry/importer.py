"""Parsing the committee's roster spreadsheet (CSV or XLSX) into validated rows. No database here.

One row per owner of a unit; co-owners are several rows of the same unit. Every bad row is
reported with the row number the user sees in the spreadsheet (the header is row 1), the column
as written in the file, and a Chinese reason. Format: docs/ROSTER.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation

# canonical name -> accepted headers (Chinese first, as the issue lists them)
COLUMNS: dict[str, tuple[str, ...]] = {
    "building": ("楼栋", "building"),
    "unit": ("房号", "unit"),
    "title_area_m2": ("产权面积", "title_area_m2"),
    "owner_name": ("业主姓名", "owner_name"),
    "owner_phone": ("手机号", "owner_phone"),
    "id_last4": ("身份证后四位", "id_last4"),
    "hardship": ("困难户", "hardship"),
    "kind": ("类型", "kind"),
}
REQUIRED = ("building", "unit", "title_area_m2", "owner_name", "owner_phone")
EXPORT_HEADERS = ("楼栋", "房号", "产权面积", "类型", "困难户", "业主姓名", "手机号", "身份证后四位")
CHINESE_NAME = {k: v[0] for k, v in COLUMNS.items()}

_HEADER_LOOKUP = {alias.casefold(): key for key, aliases in COLUMNS.items() for alias in aliases}
PHONE_RE = re.compile(r"^1[3-9]\d{9}$")
MASKED_PHONE_RE = re.compile(r"^1[3-9]\d\*{4}\d{4}$")  # as exported (138****0102): resolved against the unit
ID_LAST4_RE = re.compile(r"^\d{3}[\dX]$")
TRUE_WORDS = {"是", "1", "true", "yes", "y", "困难户"}
FALSE_WORDS = {"否", "0", "false", "no", "n", ""}
KIND_WORDS = {"住宅": "residential", "residential": "residential", "": "residential",
              "商铺": "commercial", "商业": "commercial", "commercial": "commercial"}
MAX_AREA = Decimal("100000")
MAX_ROWS = 100_000


@dataclass(frozen=True)
class RowError:
    row: int  # as the user sees it in the spreadsheet (header = 1)
    column: str  # as written in the file's header ("" for the whole row or file)
    message: str

    def as_dict(self) -> dict:
        return {"row": self.row, "column": self.column, "message": self.message}

    def __str__(self) -> str:
        where = f"第 {self.row} 行" + (f"「{self.column}」列" if self.column else "")
        return f"{where}：{self.message}"


@dataclass(frozen=True)
class RosterRow:
    row: int
    building: str
    unit: str
    title_area_m2: Decimal
    owner_name: str
    owner_phone: str
    id_last4: str | None
    is_hardship: bool
    kind: str


@dataclass
class ParsedRoster:
    rows: list[RosterRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    format: str = ""
    columns: frozenset[str] = frozenset()  # canonical names of the columns present in the file

    @property
    def ok(self) -> bool:
        return not self.errors


class RosterFormatError(Exception):
    """The file itself cannot be read (not CSV or XLSX, undecodable, empty)."""


# ---- cell conversion ---------------------------------------------------------------------------

def _text(value) -> str:
    """A cell as text. Whole-number floats from Excel (101.0) become "101"."""
    if type(value) is str:  # the common case first: every CSV cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, Decimal | int):
        return str(value)
    return str(value).strip()


def parse_area(value) -> Decimal:
    """Exact area with at most two decimal places; raises ValueError with a Chinese reason.

    A float from XLSX is read through its shortest repr (102.3 -> "102.3" -> 102.30), so the
    binary approximation never leaks in; a float whose shortest repr has more than two places
    (0.1 + 0.2 = 0.30000000000000004) is refused like any other value with three places.
    """
    if isinstance(value, bool):
        raise ValueError("面积必须是数字")
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("面积必须是数字")
        text = repr(value)
    else:
        text = _text(value).replace(",", "").replace("，", "")
    if not text:
        raise ValueError("面积不能为空")
    try:
        area = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"面积「{text}」不是数字") from None
    if not area.is_finite():
        raise ValueError(f"面积「{text}」不是数字")
    if (area * 100) != (area * 100).to_integral_value():
        raise ValueError(f"面积「{text}」超过两位小数")
    if area <= 0:
        raise ValueError(f"面积「{text}」必须大于 0")
    if area >= MAX_AREA:
        raise ValueError(f"面积「{text}」过大")
    return area.quantize(Decimal("0.01"))


def parse_phone(value) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = re.sub(r"[\s\-]", "", _text(value))
    if text.startswith("+86"):
        text = text[3:]
    if not text:
        raise ValueError("手机号不能为空")
    if not PHONE_RE.match(text):
        raise ValueError(f"手机号「{_text(value)}」格式不正确（应为 11 位大陆手机号）")
    return text


def is_masked_phone(phone: str) -> bool:
    return bool(MASKED_PHONE_RE.match(phone))


def parse_roster_phone(value) -> str:
    """A full phone, or a masked one as the export writes it (the import resolves it against the unit's owners)."""
    text = re.sub(r"\s", "", _text(value))
    return text if MASKED_PHONE_RE.match(text) else parse_phone(value)


def parse_id_last4(value) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"身份证后四位「{_text(value)}」格式不正确")
        # Excel drops leading zeros of numeric cells: 0123 arrives as 123.
        text = str(int(value)).zfill(4)
    else:
        text = _text(value).upper()
    if not text:
        return None
    if not ID_LAST4_RE.match(text):
        raise ValueError(f"身份证后四位「{text}」格式不正确（应为 4 位数字，最后一位可为 X）")
    return text


def parse_hardship(value) -> bool:
    text = _text(value).casefold()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"困难户「{_text(value)}」无法识别（填 是/否 或 1/0）")


def parse_kind(value) -> str:
    text = _text(value).casefold()
    if text in KIND_WORDS:
        return KIND_WORDS[text]
    raise ValueError(f"类型「{_text(value)}」无法识别（填 住宅 或 商铺）")


def _name_field(value, what: str, max_len: int) -> str:
    if isinstance(value, datetime | date | time):
        # Excel turns "1-2" or "3/4" typed into a number cell into a date.
        raise ValueError(f"{what}被 Excel 识别成了日期，请把该列设为“文本”格式后重新输入")
    text = _text(value)
    if not text:
        raise ValueError(f"{what}不能为空")
    if len(text) > max_len:
        raise ValueError(f"{what}「{text[:20]}…」过长（最多 {max_len} 个字）")
    return text


# ---- reading the file ---------------------------------------------------------------------------

def decode_csv(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise RosterFormatError("无法识别文件编码（请保存为 UTF-8 或 GB18030 编码的 CSV，或 XLSX）") from None


def is_xlsx(filename: str, data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")


def _csv_rows(data: bytes):
    text = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    yield from enumerate(reader, start=1)


def _xlsx_rows(data: bytes):
    import zipfile

    from openpyxl import load_workbook

    from residents_app.errors import ValidationFailed
    from residents_app.uploads import check_xlsx_archive

    if zipfile.is_zipfile(io.BytesIO(data)):
        try:
            check_xlsx_archive(data, field="file", label="名册文件")  # zip bombs, too many entries
        except ValidationFailed as exc:
            raise RosterFormatError(exc.message) from exc
    # openpyxl raises whatever its parser meets on a malformed file (ElementTree's ParseError, IndexError,
    # TypeError, ...), while opening and, in read-only mode, while reading rows: any of them means the file
    # cannot be read, never a server error.
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - see above
        raise RosterFormatError(_unreadable_xlsx(data)) from exc
    try:
        ws = wb.worksheets[0]
        for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, list(row)
    except Exception as exc:  # noqa: BLE001 - see above
        raise RosterFormatError(_unreadable_xlsx(data)) from exc
    finally:
        wb.close()


UNREADABLE_XLSX = "无法读取 XLSX 文件（文件损坏或不是 Excel 2007+ 格式）"
BROKEN_XML = "无法读取 XLSX 文件：文件内部的 XML 数据已损坏（{where}），请在 Excel 中打开后重新另存为 .xlsx"


def _unreadable_xlsx(data: bytes) -> str:
    """The reason a workbook cannot be read, naming the broken part of the archive when its XML is malformed.
    Only run after openpyxl failed, so a good file is parsed once."""
    import zipfile
    from xml.etree.ElementTree import ParseError, XMLPullParser

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                if not info.filename.endswith((".xml", ".rels")):
                    continue
                parser = XMLPullParser()
                try:
                    with zf.open(info) as part:
                        while chunk := part.read(1 << 16):
                            parser.feed(chunk)
                            parser.read_events()  # keep the event queue empty
                    parser.close()
                except ParseError as exc:
                    line, column = exc.position
                    return BROKEN_XML.format(where=f"{info.filename} 第 {line} 行第 {column + 1} 列")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
        pass
    return UNREADABLE_XLSX


def parse_roster(filename: str, data: bytes) -> ParsedRoster:
    """Parse and validate a roster file. File-level problems are reported as errors of row 1."""
    fmt = "xlsx" if is_xlsx(filename, data) else "csv"
    parsed = ParsedRoster(format=fmt)
    if not data.strip():
        parsed.errors.append(RowError(1, "", "文件是空的"))
        return parsed
    try:
        rows = _xlsx_rows(data) if fmt == "xlsx" else _csv_rows(data)
        _parse_rows(rows, parsed)
    except RosterFormatError as exc:
        parsed.errors.append(RowError(1, "", str(exc)))
    except csv.Error as exc:
        parsed.errors.append(RowError(1, "", f"CSV 格式有误：{exc}"))
    if parsed.errors:
        parsed.rows = []
    return parsed


def _parse_rows(rows, parsed: ParsedRoster) -> None:
    header_seen = False
    columns: dict[str, int] = {}
    headers: list[str] = []
    for number, raw in rows:
        cells = list(raw)
        if not any(_text(c) for c in cells):
            continue  # blank lines (and trailing empty rows of XLSX) are ignored
        if not header_seen:
            header_seen = True
            headers = [_text(c).lstrip("\ufeff") for c in cells]
            columns = _read_header(headers, number, parsed)
            parsed.columns = frozenset(columns)
            if parsed.errors:
                return
            continue
        if len(parsed.rows) + len(parsed.errors) >= MAX_ROWS:
            parsed.errors.append(RowError(number, "", f"行数超过上限 {MAX_ROWS}"))
            return
        extra = [c for i, c in enumerate(cells) if i >= len(headers) and _text(c)]
        if extra:
            parsed.errors.append(RowError(number, "", "该行的单元格多于表头的列数"))
            continue
        _parse_row(number, cells, columns, headers, parsed)
    if not header_seen:
        parsed.errors.append(RowError(1, "", "文件是空的"))
    elif not parsed.rows and not parsed.errors:
        parsed.errors.append(RowError(2, "", "文件只有表头，没有数据行"))
    if header_seen and columns.keys() >= set(REQUIRED):
        # also across the valid rows of a file with bad rows, so every bad row is reported at once
        _check_consistency(parsed, columns, headers)


def _read_header(headers: list[str], number: int, parsed: ParsedRoster) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, name in enumerate(headers):
        if not name:
            parsed.errors.append(RowError(number, f"第 {index + 1} 列", "表头为空"))
            continue
        key = _HEADER_LOOKUP.get(name.casefold())
        if key is None:
            parsed.errors.append(RowError(number, name, "未知的列（可用的列见 docs/ROSTER.md）"))
        elif key in columns:
            parsed.errors.append(RowError(number, name, "列重复"))
        else:
            columns[key] = index
    for key in REQUIRED:
        if key not in columns:
            parsed.errors.append(RowError(number, CHINESE_NAME[key], "缺少必需的列"))
    return columns


def _name_converter(what: str, max_len: int):
    def convert(value):
        return _name_field(value, what, max_len)

    return convert


CONVERTERS = {
    "building": _name_converter("楼栋", 40),
    "unit": _name_converter("房号", 40),
    "title_area_m2": parse_area,
    "owner_name": _name_converter("业主姓名", 60),
    "owner_phone": parse_roster_phone,
    "id_last4": parse_id_last4,
    "hardship": parse_hardship,
    "kind": parse_kind,
}


def _parse_row(number: int, cells: list, columns: dict[str, int], headers: list[str], parsed: ParsedRoster) -> None:
    values = {}
    bad = False
    n_cells = len(cells)
    for key, convert in CONVERTERS.items():
        index = columns.get(key)
        try:
            values[key] = convert(cells[index] if index is not None and index < n_cells else None)
        except ValueError as exc:
            parsed.errors.append(RowError(number, headers[index], str(exc)))
            bad = True
    if bad:
        return
    parsed.rows.append(RosterRow(
        row=number, building=values["building"], unit=values["unit"], title_area_m2=values["title_area_m2"],
        owner_name=values["owner_name"], owner_phone=values["owner_phone"], id_last4=values["id_last4"],
        is_hardship=values["hardship"], kind=values["kind"]))


def _check_consistency(parsed: ParsedRoster, columns: dict[str, int], headers: list[str]) -> None:
    """Rows of one unit must agree on the unit's data; one phone is one person."""

    def col(key):
        return headers[columns[key]] if key in columns else CHINESE_NAME[key]

    first_of_unit: dict[tuple[str, str], RosterRow] = {}
    owners_of_unit: dict[tuple[str, str], dict[str, int]] = {}
    person: dict[object, RosterRow] = {}
    for r in parsed.rows:
        key = (r.building, r.unit)
        first = first_of_unit.setdefault(key, r)
        label = f"{r.building}-{r.unit}"
        if r.title_area_m2 != first.title_area_m2:
            parsed.errors.append(RowError(r.row, col("title_area_m2"),
                                          f"{label} 的面积 {r.title_area_m2} 与第 {first.row} 行的 "
                                          f"{first.title_area_m2} 不一致"))
        if r.kind != first.kind:
            parsed.errors.append(RowError(r.row, col("kind"), f"{label} 的类型与第 {first.row} 行不一致"))
        if r.is_hardship != first.is_hardship:
            parsed.errors.append(RowError(r.row, col("hardship"), f"{label} 的困难户标记与第 {first.row} 行不一致"))
        seen = owners_of_unit.setdefault(key, {})
        if r.owner_phone in seen:
            parsed.errors.append(RowError(r.row, col("owner_phone"),
                                          f"{label} 的业主（手机号 {r.owner_phone}）与第 {seen[r.owner_phone]} 行重复"))
        else:
            seen[r.owner_phone] = r.row
        # A masked phone names a person only together with its unit (two owners may share a mask).
        other = person.setdefault((r.owner_phone, key) if is_masked_phone(r.owner_phone) else r.owner_phone, r)
        if other.owner_name != r.owner_name:
            parsed.errors.append(RowError(r.row, col("owner_name"),
                                          f"手机号 {r.owner_phone} 在第 {other.row} 行登记为「{other.owner_name}」，"
                                          f"同一手机号只能对应一位业主"))
        elif (r.id_last4 or other.id_last4) and r.id_last4 != other.id_last4 and r.id_last4 is not None \
                and other.id_last4 is not None:
            parsed.errors.append(RowError(r.row, col("id_last4"),
                                          f"同一业主（手机号 {r.owner_phone}）的身份证后四位与第 {other.row} 行不一致"))
    parsed.errors.sort(key=lambda e: e.row)
