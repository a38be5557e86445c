"""The QR codes a resident scans decode back to their link: the printed A4 sheet (as Chromium draws it) and the
demo's terminal code. Decoded with zbarimg (Debian's zbar-tools), an independent reader."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib

import pytest
import sqlalchemy as sa

from residents_app import qr
from residents_app.auth.resident import hash_token
from residents_app.registry.models import Unit, UnitLink

ZBARIMG = shutil.which("zbarimg") or "/usr/bin/zbarimg"


def decode_png(path) -> list[str]:
    out = subprocess.run([ZBARIMG, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0, f"zbarimg found no QR code in {path}: {out.stderr}"
    return out.stdout.split()


def png_of_terminal(text: str, path, scale: int = 8) -> None:
    """Rasterise the half-block terminal QR (light on dark) into a greyscale PNG, as a phone sees the screen."""
    rows = []
    for line in text.splitlines():
        top, bottom = [], []
        for ch in line:
            top.append(ch in "█▀")
            bottom.append(ch in "█▄")
        rows += [top, bottom]
    width = max(len(r) for r in rows)
    margin = 4  # a quiet zone of light modules around the code
    raw = bytearray()
    lines = [[True] * width] * margin + rows + [[True] * width] * margin
    for row in lines:
        light = [True] * margin + row + [True] * (width - len(row)) + [True] * margin
        pixels = bytes(255 if lit else 0 for lit in light for _ in range(scale))
        for _ in range(scale):
            raw += b"\x00" + pixels

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    w, h = (width + 2 * margin) * scale, len(lines) * scale
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b"")
    path.write_bytes(png)


def test_terminal_qr_of_the_demo_decodes_to_the_link(tmp_path):
    link = "http://192.168.1.20:5000/v/Qh3_xY-0123456789abcdefgHI"
    png_of_terminal(qr.terminal(link), tmp_path / "terminal.png")
    assert decode_png(tmp_path / "terminal.png") == [link]


@pytest.mark.e2e
def test_printed_sheet_qr_codes_decode_to_each_units_own_link(client, db, app, login_as, committee, estate,
                                                              browser, tmp_path):
    login_as(client, committee)
    b1 = next(b for b in estate.buildings if b.name == "1幢")
    app.config["PUBLIC_BASE_URL"] = "https://vote.example.cn"
    try:
        sheet = client.post(f"/estates/{estate.id}/links/sheet", data={"building_id": b1.id}).get_data(as_text=True)
    finally:
        app.config["PUBLIC_BASE_URL"] = ""
    ctx = browser.new_context(viewport={"width": 794, "height": 1123}, locale="zh-CN")  # A4 at 96 dpi
    page = ctx.new_page()
    try:
        page.set_content(sheet)
        cards = page.locator(".qr-card")
        assert cards.count() == 3
        decoded = {}
        for i in range(cards.count()):
            label = cards.nth(i).locator(".unit").inner_text().strip()
            cards.nth(i).locator("img").screenshot(path=str(tmp_path / f"qr{i}.png"))
            (decoded[label],) = decode_png(tmp_path / f"qr{i}.png")
    finally:
        ctx.close()
    assert sorted(decoded) == ["1幢-101", "1幢-102", "1幢-103"]
    for label, url in decoded.items():
        token = re.fullmatch(r"https://vote\.example\.cn/v/([A-Za-z0-9_-]{27})", url).group(1)
        number = label.split("-", 1)[1]
        unit = db.session.execute(sa.select(Unit).where(Unit.building_id == b1.id, Unit.number == number)).scalar_one()
        link = db.session.execute(sa.select(UnitLink).where(UnitLink.unit_id == unit.id,
                                                            UnitLink.revoked_at.is_(None))).scalar_one()
        assert link.token_hash == hash_token(token), label
