"""QR codes with `qrcode` (the package the product's design names): SVG for pages and printed A4 sheets,
text for the demo's terminal. SVG needs no Pillow.

Error correction M (15 %): a sheet stuck on a wall survives a scratch or a fold.
"""

from __future__ import annotations

import base64
import io
import re

import qrcode
import qrcode.constants
import qrcode.image.svg


def _code(data: str, border: int) -> qrcode.QRCode:
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=border,
                         image_factory=qrcode.image.svg.SvgPathFillImage)
    code.add_data(data)
    code.make(fit=True)
    return code


def svg(data: str, *, scale: int = 4, border: int = 2) -> bytes:
    """An SVG of `data`, `scale` CSS pixels per module (qrcode sizes it in mm; pages lay out in pixels)."""
    code = _code(data, border)
    text = code.make_image().to_string(encoding="unicode")
    side = (code.modules_count + 2 * border) * scale
    text = re.sub(r'width="[^"]*" height="[^"]*"', f'width="{side}" height="{side}"', text, count=1)
    return text.encode("utf-8")


def svg_data_uri(data: str, *, scale: int = 4, border: int = 2) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg(data, scale=scale, border=border)).decode("ascii")


def terminal(data: str) -> str:
    """Two modules per character line (half blocks), light on dark as a terminal shows it; scannable from a screen."""
    buf = io.StringIO()
    _code(data, 2).print_ascii(out=buf, invert=True)
    return buf.getvalue()
