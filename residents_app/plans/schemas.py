"""Input at the edge: yuan strings to fen, dates, datetimes; marshmallow schemas of the JSON API."""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from residents_app.errors import ValidationFailed

BEIJING = ZoneInfo("Asia/Shanghai")


_YUAN = re.compile(r"^(\d{1,11})(?:\.(\d{1,2}))?$")


def yuan_to_fen(text, field: str, label: str) -> int:
    """'1,234.5' -> 123450. Exact: no floats; at most two decimals; never negative."""
    raw = str(text or "").strip().replace(",", "").replace("，", "").replace("¥", "").replace("元", "")
    m = _YUAN.match(raw)
    if not m:
        raise ValidationFailed(f"{label}格式有误：请填写金额（元），最多两位小数，例如 1234.50",
                               errors={field: [f"「{text}」不是有效金额"]})
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


def parse_date(text, field: str, label: str) -> date:
    try:
        return date.fromisoformat(str(text or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}格式有误，请按 2026-09-01 的格式填写",
                               errors={field: [f"「{text}」不是有效日期"]}) from None


def parse_local_dt(text, field: str, label: str) -> datetime | None:
    """A Beijing-time 'YYYY-MM-DDTHH:MM' (from <input type=datetime-local>) as aware UTC; empty = None."""
    raw = str(text or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(f"{label}格式有误，请按 2026-09-01 09:00 的格式填写",
                               errors={field: [f"「{text}」不是有效时间"]}) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    from datetime import UTC

    return value.astimezone(UTC)


def parse_int_id(text, field: str, label: str) -> int:
    try:
        return int(str(text).strip())
    except (TypeError, ValueError):
        raise ValidationFailed(f"请选择{label}", errors={field: ["缺少或无效"]}) from None


class ItemIn(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    category = fields.String(required=True, validate=validate.OneOf(("required", "basic", "improvement", "upgrade")))
    cost_fen = fields.Integer(required=True, strict=True)
    building_ids = fields.List(fields.Integer(strict=True), load_default=list)
    description = fields.String(load_default="")
    funding_mode = fields.String(load_default="subsidised",
                                 validate=validate.OneOf(("subsidised", "self_paid", "separate")))
    fixed_subsidy_fen = fields.Integer(load_default=0, strict=True, validate=validate.Range(min=0))

    @validates("cost_fen")
    def _positive(self, value, **kwargs):
        if value <= 0:
            raise ValidationError("费用必须大于零（分）")


# ---- documented responses of the staff plan API (the handlers build the dicts; alt_response) -----------------

class PlanVersionItemOutSchema(Schema):
    id = fields.Integer(metadata={"example": 31})
    name = fields.String(metadata={"example": "加装电梯"})
    category = fields.String(metadata={"example": "elevator"})
    cost_fen = fields.Integer(metadata={"example": 60000000})
    scope = fields.String(metadata={"example": "buildings"})
    building_ids = fields.List(fields.Integer(), metadata={"example": [1, 2]})
    resident_fen = fields.Integer(allow_none=True, metadata={"example": 30000000})
    subsidy_fen = fields.Integer(allow_none=True, metadata={"example": 30000000})


class PlanVersionOutSchema(Schema):
    id = fields.Integer(metadata={"example": 5})
    estate_id = fields.Integer(metadata={"example": 1})
    number = fields.Integer(metadata={"example": 2})
    title = fields.String(metadata={"example": "鹿城小区改造方案"})
    status = fields.String(metadata={"example": "published"})
    published_at = fields.String(allow_none=True, metadata={"example": "2026-08-01T02:00:00+00:00"})
    supersedes_id = fields.Integer(allow_none=True, metadata={"example": 4})
    change_summary = fields.String(allow_none=True, metadata={"example": "增加外墙保温"})
    total_cost_fen = fields.Integer(metadata={"example": 120000000})
    resident_total_fen = fields.Integer(metadata={"example": 60000000})
    subsidy_total_fen = fields.Integer(metadata={"example": 60000000})
    cap_fen = fields.Integer(allow_none=True, metadata={"example": 80000000})
    excess_fen = fields.Integer(metadata={"example": 0})
    items = fields.List(fields.Nested(PlanVersionItemOutSchema))


class EstatePlanVersionsSchema(Schema):
    plans = fields.List(fields.Nested(PlanVersionOutSchema))
