"""The CJK font every PDF embeds (reports, start materials, acceptance records). Without it each character would
print as an empty box, so a missing font refuses the PDF instead (503 pdf_font_missing).

RAPP_CJK_FONT names the font file; the default is Debian's fonts-wqy-zenhei (installed by dev.py)."""

from __future__ import annotations

import os
import threading

from residents_app.errors import ServiceUnavailable

FONT_NAME = "WQYZenHei"
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # Debian/Ubuntu package fonts-wqy-zenhei
_lock = threading.Lock()
_ready = False


def ensure_cjk_font() -> str:
    """Register the font with reportlab once per process; its name."""
    global _ready
    from reportlab.pdfbase import pdfmetrics, ttfonts

    with _lock:
        if _ready:
            return FONT_NAME
        path = os.environ.get("RAPP_CJK_FONT", FONT_PATH)
        if not os.path.exists(path):
            raise ServiceUnavailable(
                "服务器未安装中文字体，暂时无法生成 PDF（请管理员安装 fonts-wqy-zenhei 或设置 RAPP_CJK_FONT）",
                code="pdf_font_missing")
        pdfmetrics.registerFont(ttfonts.TTFont(FONT_NAME, path, subfontIndex=0))
        _ready = True
    return FONT_NAME
