"""Input schemas of the publicity API (unknown fields are refused)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from residents_app.ints import ID_MAX
from residents_app.publicity.models import SUBJECT_TYPES


class StatusQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    subject_type = fields.String(required=True, validate=validate.OneOf(SUBJECT_TYPES),
                                 metadata={"description": "round_result / plan_version / hardship_list"})
    subject_id = fields.Integer(required=True, validate=validate.Range(min=1, max=ID_MAX))


class PublicityStatusSchema(Schema):
    """The latest publicity of a subject (publicity_id null: never posted)."""

    posted = fields.Boolean(metadata={"example": True})
    ended = fields.Boolean(metadata={"example": False})
    open_objections = fields.Integer(metadata={"example": 1})
    reasons_not_complete = fields.List(fields.String(), metadata={"example": ["公示期未满（2026-09-08 结束）"]})
    publicity_id = fields.Integer(allow_none=True, metadata={"example": 7})
