"""Input of the money forms and API: payments and their reversal.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from residents_app.funding.models import PAYMENT_METHODS


class PaymentIn(Schema):
    class Meta:
        unknown = RAISE

    unit_id = fields.Integer(required=True, strict=True)
    amount_fen = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    method = fields.String(required=True, validate=validate.OneOf(PAYMENT_METHODS))
    reference = fields.String(load_default="", validate=validate.Length(max=100))
    paid_on = fields.Date(required=True)
    note = fields.String(load_default="", validate=validate.Length(max=200))


class ReverseIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


# ---- documented responses of the staff money API (the handlers build the dicts; alt_response) ----------------

class StatementItemLineOutSchema(Schema):
    item_id = fields.Integer(metadata={"example": 31})
    share_fen = fields.Integer(metadata={"example": 125000})


class UnitStatementOutSchema(Schema):
    unit_id = fields.Integer(metadata={"example": 12})
    label = fields.String(metadata={"example": "1幢1单元101"})
    area_m2 = fields.String(metadata={"example": "89.50"})
    share_fen = fields.Integer(metadata={"example": 250000})
    covered_fen = fields.Integer(metadata={"example": 0})
    owed_fen = fields.Integer(metadata={"example": 250000})
    offset_fen = fields.Integer(metadata={"example": 0})
    matched_fen = fields.Integer(metadata={"example": 0})
    lines = fields.List(fields.Nested(StatementItemLineOutSchema))


class PlanStatementsSchema(Schema):
    plan_id = fields.Integer(metadata={"example": 5})
    units = fields.List(fields.Nested(UnitStatementOutSchema))


class FundingFiguresOutSchema(Schema):
    owed_fen = fields.Integer(metadata={"example": 5000000})
    paid_fen = fields.Integer(metadata={"example": 4200000})
    counted_fen = fields.Integer(metadata={"example": 4100000})
    owing_units = fields.Integer(metadata={"example": 3})
    unit_count = fields.Integer(metadata={"example": 20})
    ratio = fields.String(metadata={"example": "82.00%", "description": "rounded down; — when nothing is owed"})
    ratio_pair = fields.List(fields.Integer(), metadata={"example": [4100000, 5000000],
                                                         "description": "counted_fen, owed_fen"})
    complete = fields.Boolean(metadata={"example": False})


class FundingBuildingOutSchema(FundingFiguresOutSchema):
    building_id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "1幢"})


class FundingSummaryOutSchema(FundingFiguresOutSchema):
    estate_id = fields.Integer(metadata={"example": 1})
    plan_version_id = fields.Integer(allow_none=True, metadata={"example": 5})
    buildings = fields.List(fields.Nested(FundingBuildingOutSchema))


class PaymentRecordedSchema(Schema):
    id = fields.Integer(metadata={"example": 88})
    unit_id = fields.Integer(metadata={"example": 12})
    amount_fen = fields.Integer(metadata={"example": 250000})


class PaymentReversedSchema(Schema):
    id = fields.Integer(metadata={"example": 89})
    reverses_id = fields.Integer(metadata={"example": 88})
    amount_fen = fields.Integer(metadata={"example": -250000})
