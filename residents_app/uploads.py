"""One validator for every upload: size, type sniffed from the content, XLSX zip-bomb guard.

The browser's file name and Content-Type are the uploader's claims; the first bytes are the truth.
A renamed executable, a Word file called .xlsx or a zip bomb is refused with a Chinese message
that names the field and the reason, raised as ValidationFailed (never a 500).
"""

from __future__ import annotations

import io
import zipfile

from residents_app.errors import ValidationFailed

ALL_KINDS = ("xlsx", "csv", "pdf", "png", "jpeg")
DEFAULT_MAX_BYTES = 10 * 1024 * 1024

# XLSX is a zip archive. A genuine register of a few thousand units unpacks to a few MB with a
# compression ratio around 10-30; a zip bomb unpacks to GBs at ratios of hundreds to millions.
XLSX_MAX_ENTRIES = 500
XLSX_MAX_UNCOMPRESSED = 64 * 1024 * 1024
XLSX_MAX_RATIO = 100
XLSX_RATIO_MIN_BYTES = 1024 * 1024  # tiny entries (styles, rels) may compress "too well"

KIND_LABELS = {
    "xlsx": "Excel 表格（.xlsx）",
    "csv": "CSV 表格（.csv）",
    "pdf": "PDF 文件（.pdf）",
    "png": "PNG 图片（.png）",
    "jpeg": "JPEG 图片（.jpg）",
}
EXTENSIONS = {"xlsx": "xlsx", "csv": "csv", "txt": "csv", "pdf": "pdf", "png": "png", "jpg": "jpeg",
              "jpeg": "jpeg", "xls": "xls", "exe": "executable", "doc": "other", "docx": "other"}

# Content we recognise only to name it in the refusal.
_FOREIGN = (
    (b"MZ", "Windows 可执行程序"),
    (b"\x7fELF", "Linux 可执行程序"),
    (b"\xca\xfe\xba\xbe", "可执行程序"),
    (b"\xcf\xfa\xed\xfe", "macOS 可执行程序"),
    (b"\xce\xfa\xed\xfe", "macOS 可执行程序"),
    (b"#!", "脚本程序"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "旧版 Office 文件（.xls/.doc），请在 Excel 中另存为 .xlsx"),
    (b"Rar!", "RAR 压缩包"),
    (b"7z\xbc\xaf\x27\x1c", "7z 压缩包"),
    (b"\x1f\x8b", "gzip 压缩包"),
    (b"GIF8", "GIF 图片"),
    (b"RIFF", "RIFF 媒体文件"),
)


def _refuse(field: str, message: str, *, code: str = "upload_refused", status: int = 422):
    raise ValidationFailed(message, code=code, status=status, errors={field: message})


MIME_TYPES = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}


def sniff_mime(data: bytes) -> str | None:
    """The MIME type of a PDF, PNG or JPEG judged by its content (the type stored with a document)."""
    for magic, kind in ((b"%PDF-", "pdf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg")):
        if data.startswith(magic):
            return MIME_TYPES[kind]
    return None


def sniff(data: bytes) -> str | None:
    """The kind of a file judged by its content: one of ALL_KINDS, or None."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"PK\x03\x04"):
        return "xlsx" if _looks_like_xlsx(data) else None
    if _looks_like_text(data):
        return "csv"
    return None


def describe_foreign(data: bytes) -> str | None:
    for magic, label in _FOREIGN:
        if data.startswith(magic):
            return label
    if data.startswith(b"PK\x03\x04"):
        try:
            names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return "损坏的压缩文件"
        if "word/document.xml" in names:
            return "Word 文档"
        if "ppt/presentation.xml" in names:
            return "PowerPoint 演示文稿"
        return "ZIP 压缩包"
    text = decode_text(data[:4096]) if b"\x00" not in data[:4096] else None
    if text is not None and _is_markup(text):
        return "网页（HTML/SVG/XML）文件"
    return None


def _looks_like_xlsx(data: bytes) -> bool:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and "xl/workbook.xml" in names


def _looks_like_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    if any(data.startswith(magic) for magic, _ in _FOREIGN):
        return False
    text = decode_text(data)
    return text is not None and not _is_markup(text)


def _is_markup(text: str) -> bool:
    # An HTML or SVG page renamed .csv could be served back to a browser; it is never a register.
    head = text.lstrip().lower()[:200]
    return head.startswith(("<!doctype", "<html", "<svg", "<?xml", "<script", "<head", "<body"))


def decode_text(data: bytes) -> str | None:
    """UTF-8 (with or without BOM) or GB18030 (what Excel saves as CSV on Chinese Windows)."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # Control characters other than tab and line breaks mean a binary file.
        if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
            return None
        return text
    return None


def _extension(filename: str) -> str | None:
    if "." not in filename:
        return None
    return filename.rsplit(".", 1)[1].strip().lower() or None


def check_xlsx_archive(data: bytes, *, field: str = "file", label: str = "文件") -> None:
    """Refuse zip bombs: too many entries, too much unpacked data, or an implausible ratio.

    zipfile never reads past an entry's declared size, so checking the declared sizes bounds what
    openpyxl will unpack.
    """
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        _refuse(field, f"{label}已损坏，无法作为 Excel 表格打开", code="upload_corrupt")
    if len(infos) > XLSX_MAX_ENTRIES:
        _refuse(field, f"{label}包含 {len(infos)} 个内部文件，超过上限 {XLSX_MAX_ENTRIES} 个，疑似恶意文件",
                code="upload_zip_bomb")
    total = 0
    for info in infos:
        if info.flag_bits & 0x1:
            _refuse(field, f"{label}已加密，请去掉密码后再上传", code="upload_encrypted")
        total += info.file_size
        if info.file_size > XLSX_RATIO_MIN_BYTES and info.file_size > XLSX_MAX_RATIO * max(info.compress_size, 1):
            ratio = info.file_size // max(info.compress_size, 1)
            _refuse(field, f"{label}中的 {info.filename} 压缩比为 {ratio}:1，超过上限 {XLSX_MAX_RATIO}:1，"
                    "疑似压缩炸弹", code="upload_zip_bomb")
    if total > XLSX_MAX_UNCOMPRESSED:
        _refuse(field, f"{label}解压后共 {_mb(total)}，超过上限 {_mb(XLSX_MAX_UNCOMPRESSED)}，疑似压缩炸弹",
                code="upload_zip_bomb")


def _mb(n: int) -> str:
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB" if n < 1024 ** 3 else f"{n / 1024 ** 3:.1f} GB"


def check_upload(file_storage, kinds: tuple[str, ...] = ALL_KINDS, max_bytes: int = DEFAULT_MAX_BYTES, *,
                 field: str = "file", label: str = "上传的文件") -> bytes:
    """Validate one uploaded file (a werkzeug FileStorage) and return its bytes.

    kinds: accepted kinds among ALL_KINDS. The content decides the kind; a file name extension that
    contradicts the content is refused too. Raises ValidationFailed (errors={field: message}).
    """
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown upload kinds {sorted(unknown)}")
    accepted = "、".join(KIND_LABELS[k] for k in kinds)
    if file_storage is None or not getattr(file_storage, "filename", None):
        _refuse(field, f"请选择{label}（可接受：{accepted}）", code="upload_missing")
    data = file_storage.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        _refuse(field, f"{label}超过大小上限 {_mb(max_bytes)}", code="upload_too_large", status=413)
    if not data:
        _refuse(field, f"{label}是空文件", code="upload_empty")
    kind = sniff(data)
    if kind is None or kind not in kinds:
        actual = KIND_LABELS.get(kind) if kind else describe_foreign(data)
        actual = actual or "无法识别的格式"
        _refuse(field, f"{label}的内容是{actual}，只接受 {accepted}", code="upload_wrong_type")
    ext = _extension(file_storage.filename)
    if ext is not None:
        claimed = EXTENSIONS.get(ext, "other")
        if claimed != kind:
            _refuse(field, f"{label}的扩展名 .{ext} 与内容（{KIND_LABELS[kind]}）不符", code="upload_wrong_type")
    if kind == "xlsx":
        check_xlsx_archive(data, field=field, label=label)
    return data
