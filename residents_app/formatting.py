"""Display helpers: m², yuan from fen, Beijing time, masked phone numbers."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")


def format_area(value: Decimal | int | None) -> str:
    return f"{Decimal(value or 0):,.2f}"


def format_yuan(fen: int | None) -> str:
    fen = int(fen or 0)
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def to_local(value: datetime) -> datetime:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(BEIJING)


def format_local_dt(value: datetime | None) -> str:
    return "" if value is None else to_local(value).strftime("%Y-%m-%d %H:%M")


def format_local_date(value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value).date()
    return value.strftime("%Y-%m-%d")


def mask_phone(phone: str | None) -> str:
    """138****0102: the first 3 and the last 4 digits. Pages, exports and the API show phones only this way;
    the full number is read from the register only where a committee member has to call (logged)."""
    phone = (phone or "").strip()
    if not phone:
        return ""
    if len(phone) < 8:
        return "****"  # too short to keep 7 digits and still hide something
    return phone[:3] + "****" + phone[-4:]
