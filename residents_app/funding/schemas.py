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
