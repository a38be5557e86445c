"""Fixtures of the register tests: roster files in every format, table snapshots, upload directory."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from residents_app.extensions import db as _db

HEADER_ZH = ["楼栋", "房号", "产权面积", "业主姓名", "手机号", "身份证后四位", "困难户", "类型"]


def csv_bytes(rows, header=HEADER_ZH, encoding="utf-8", bom=False) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    data = buf.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def xlsx_bytes(rows, header=HEADER_ZH, raw: dict[str, str] | None = None) -> bytes:
    """An XLSX file. raw={"C2": "0.30000000000000004"} writes that exact text as the stored number,
    as Excel does (17 significant digits), since openpyxl itself writes only 15."""
    import re
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(list(r))
    buf = io.BytesIO()
    wb.save(buf)
    if not raw:
        return buf.getvalue()
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = content.decode()
                for ref, value in raw.items():
                    text, n = re.subn(rf'(<c r="{ref}" t="n"><v>)[^<]*(</v>)', rf"\g<1>{value}\g<2>", text)
                    assert n == 1, ref
                content = text.encode()
            dst.writestr(item, content)
    return out.getvalue()


REGISTER_TABLES = ("street_office", "estate", "building", "unit", "owner", "ownership", "audit_event")


def snapshot() -> dict[str, list[tuple]]:
    """Full contents of the register tables (and the audit log), ordered, for before/after comparison."""
    out = {}
    for name in REGISTER_TABLES:
        table = _db.metadata.tables[name]
        rows = _db.session.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
        out[name] = [tuple(r) for r in rows]
    return out


@pytest.fixture
def roster_upload_dir(app, tmp_path):
    old = app.config.get("ROSTER_UPLOAD_DIR")
    app.config["ROSTER_UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield tmp_path / "uploads"
    app.config["ROSTER_UPLOAD_DIR"] = old


@pytest.fixture
def estate(factory):
    """An empty estate of its own street office."""
    return factory.estate(code="A1", name="甲小区")
