"""check_upload: the content decides, not the file name; zip bombs and executables are refused."""

from __future__ import annotations

import io
import zipfile

import pytest
from openpyxl import Workbook
from werkzeug.datastructures import FileStorage

from residents_app import create_app
from residents_app.errors import ValidationFailed
from residents_app.uploads import (
    XLSX_MAX_ENTRIES,
    XLSX_MAX_UNCOMPRESSED,
    check_upload,
    decode_text,
    sniff,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n%%EOF\n"
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 100 + b"This program cannot be run in DOS mode."


def fs(data: bytes, filename: str = "x") -> FileStorage:
    return FileStorage(stream=io.BytesIO(data), filename=filename)


def xlsx() -> bytes:
    wb = Workbook()
    wb.active.append(["楼栋", "房号", "面积"])
    wb.active.append(["1幢", "101", "88.50"])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def zip_of(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def refusal(data: bytes, filename: str, **kw) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as info:
        check_upload(fs(data, filename), **kw)
    return info.value


@pytest.mark.parametrize(("data", "filename", "kind"), [
    (PNG, "photo.png", "png"),
    (JPEG, "IMG_0001.JPG", "jpeg"),
    (JPEG, "scan.jpeg", "jpeg"),
    (PDF, "签字表.pdf", "pdf"),
    ("楼栋,房号\n1幢,101\n".encode(), "名册.csv", "csv"),
    ("楼栋,房号\n1幢,101\n".encode("gb18030"), "名册.csv", "csv"),
    ("\ufeff楼栋,房号\r\n".encode(), "名册.txt", "csv"),
    (PNG, "image", "png"),  # a phone may send no extension: the content decides
])
def test_accepted_files_come_back_unchanged(data, filename, kind):
    assert sniff(data) == kind
    assert check_upload(fs(data, filename)) == data


def test_real_xlsx_is_accepted():
    data = xlsx()
    assert sniff(data) == "xlsx"
    assert check_upload(fs(data, "名册.xlsx"), kinds=("xlsx",)) == data


def test_renamed_windows_executable_is_refused():
    err = refusal(EXE, "名册.xlsx")
    assert err.status == 422
    assert err.code == "upload_wrong_type"
    assert err.message == ("上传的文件的内容是Windows 可执行程序，只接受 Excel 表格（.xlsx）、CSV 表格（.csv）、"
                           "PDF 文件（.pdf）、PNG 图片（.png）、JPEG 图片（.jpg）")
    assert err.errors == {"file": err.message}


@pytest.mark.parametrize(("data", "label"), [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 50, "Linux 可执行程序"),
    (b"#!/bin/sh\nrm -rf /\n", "脚本程序"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 50, "旧版 Office 文件（.xls/.doc），请在 Excel 中另存为 .xlsx"),
    (b"<!DOCTYPE html><html><script>alert(1)</script>", "网页（HTML/SVG/XML）文件"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "网页（HTML/SVG/XML）文件"),
    (zip_of({"word/document.xml": b"<w/>", "[Content_Types].xml": b"<t/>"}), "Word 文档"),
    (zip_of({"a.txt": b"hello"}), "ZIP 压缩包"),
    (b"\x00\x01\x02\x03binary", "无法识别的格式"),
])
def test_foreign_content_is_named_in_the_refusal(data, label):
    err = refusal(data, "名册.xlsx", kinds=("xlsx", "csv"), field="roster", label="名册文件")
    assert err.message == f"名册文件的内容是{label}，只接受 Excel 表格（.xlsx）、CSV 表格（.csv）"
    assert list(err.errors) == ["roster"]


def test_kind_outside_the_allowed_list_is_refused():
    err = refusal(PDF, "a.pdf", kinds=("png", "jpeg"), label="照片")
    assert err.message == "照片的内容是PDF 文件（.pdf），只接受 PNG 图片（.png）、JPEG 图片（.jpg）"


def test_extension_contradicting_content_is_refused():
    err = refusal(PNG, "scan.pdf")
    assert err.code == "upload_wrong_type"
    assert err.message == "上传的文件的扩展名 .pdf 与内容（PNG 图片（.png））不符"


def test_size_limit_boundary():
    limit = 1000
    exactly = b"a," * (limit // 2)
    assert len(exactly) == limit
    assert check_upload(fs(exactly, "a.csv"), max_bytes=limit) == exactly
    err = refusal(exactly + b"a", "a.csv", max_bytes=limit)
    assert (err.status, err.code) == (413, "upload_too_large")
    assert err.message == "上传的文件超过大小上限 1.0 KB"


def test_size_limit_message_in_megabytes():
    err = refusal(b"x" * (2 * 1024 * 1024 + 1), "a.csv", max_bytes=2 * 1024 * 1024)
    assert err.message == "上传的文件超过大小上限 2.0 MB"


def test_missing_and_empty_files():
    with pytest.raises(ValidationFailed) as info:
        check_upload(None, kinds=("pdf",), field="scan", label="扫描件")
    assert info.value.message == "请选择扫描件（可接受：PDF 文件（.pdf））"
    assert info.value.errors == {"scan": "请选择扫描件（可接受：PDF 文件（.pdf））"}
    assert refusal(b"", "a.csv").message == "上传的文件是空文件"


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown upload kinds"):
        check_upload(fs(PDF, "a.pdf"), kinds=("docx",))


def _bomb_entries(size: int) -> dict[str, bytes]:
    return {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>",
            "xl/worksheets/sheet1.xml": b"0" * size}


def test_xlsx_zip_bomb_by_ratio_is_refused():
    data = zip_of(_bomb_entries(8 * 1024 * 1024))  # 8 MB of one character: ratio ~1000:1
    assert len(data) < 20_000
    err = refusal(data, "名册.xlsx", kinds=("xlsx",))
    assert err.code == "upload_zip_bomb"
    assert err.message.startswith("上传的文件中的 xl/worksheets/sheet1.xml 压缩比为 ")
    assert err.message.endswith("，超过上限 100:1，疑似压缩炸弹")


def test_xlsx_ratio_is_only_judged_on_entries_above_one_megabyte():
    data = zip_of(_bomb_entries(1024 * 1024))  # exactly 1 MB: compresses ~1000:1 but is small
    assert check_upload(fs(data, "a.xlsx"), kinds=("xlsx",)) == data


def test_xlsx_total_uncompressed_size_is_limited(monkeypatch):
    # Random-looking data compresses badly, so the ratio rule passes and the total rule decides.
    import os

    import residents_app.uploads as uploads

    monkeypatch.setattr(uploads, "XLSX_MAX_UNCOMPRESSED", 3 * 1024 * 1024)
    blob = os.urandom(2 * 1024 * 1024)
    ok = zip_of({**_bomb_entries(0), "xl/media/a.bin": blob})
    assert check_upload(fs(ok, "a.xlsx"), kinds=("xlsx",), max_bytes=5 * 1024 * 1024) == ok
    over = zip_of({**_bomb_entries(0), "xl/media/a.bin": blob, "xl/media/b.bin": blob})
    err = refusal(over, "a.xlsx", kinds=("xlsx",), max_bytes=5 * 1024 * 1024)
    assert err.message == "上传的文件解压后共 4.0 MB，超过上限 3.0 MB，疑似压缩炸弹"
    assert XLSX_MAX_UNCOMPRESSED == 64 * 1024 * 1024


def test_xlsx_entry_count_is_limited():
    base = _bomb_entries(10)
    at_limit = zip_of({**base, **{f"xl/x{i}.xml": b"x" for i in range(XLSX_MAX_ENTRIES - len(base))}})
    assert check_upload(fs(at_limit, "a.xlsx"), kinds=("xlsx",)) == at_limit
    over = zip_of({**base, **{f"xl/x{i}.xml": b"x" for i in range(XLSX_MAX_ENTRIES - len(base) + 1)}})
    err = refusal(over, "a.xlsx", kinds=("xlsx",))
    assert err.message == f"上传的文件包含 {XLSX_MAX_ENTRIES + 1} 个内部文件，超过上限 500 个，疑似恶意文件"


def test_decode_text_accepts_utf8_and_gb18030_only_for_text():
    assert decode_text("\ufeff房号".encode()) == "房号"
    assert decode_text("房号".encode("gb18030")) == "房号"
    assert decode_text(b"a\x01b") is None


@pytest.fixture
def upload_app(tmp_path):
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'u.db'}",
                      "SECRET_KEY": "t", "WTF_CSRF_ENABLED": False})

    def upload():
        from flask import request

        data = check_upload(request.files.get("roster"), kinds=("xlsx", "csv"), field="roster", label="名册文件")
        return {"bytes": len(data)}

    app.add_url_rule("/api/test-upload", "test_upload", upload, methods=["POST"])
    app.add_url_rule("/test-upload", "test_upload_page", upload, methods=["POST"])
    yield app
    with app.app_context():
        from residents_app.extensions import db

        db.engine.dispose()


def test_refusal_reaches_the_client_in_the_one_error_shape(upload_app):
    client = upload_app.test_client()
    resp = client.post("/api/test-upload", data={"roster": (io.BytesIO(EXE), "roster.xlsx")})
    assert resp.status_code == 422
    message = "名册文件的内容是Windows 可执行程序，只接受 Excel 表格（.xlsx）、CSV 表格（.csv）"
    assert resp.get_json() == {"code": "upload_wrong_type", "status": 422, "message": message,
                               "errors": {"roster": message}}
    page = client.post("/test-upload", data={"roster": (io.BytesIO(EXE), "roster.xlsx")})
    assert page.status_code == 422
    assert message in page.get_data(as_text=True)
    ok = client.post("/api/test-upload", data={"roster": (io.BytesIO(xlsx()), "名册.xlsx")})
    assert ok.status_code == 200


def test_request_above_max_content_length_is_413_in_chinese(upload_app):
    upload_app.config["MAX_CONTENT_LENGTH"] = 1024
    resp = upload_app.test_client().post("/api/test-upload", data={"roster": (io.BytesIO(b"a," * 2000), "a.csv")})
    assert resp.status_code == 413
    assert resp.get_json() == {"code": "payload_too_large", "status": 413, "message": "上传的文件过大", "errors": {}}
