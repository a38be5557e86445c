"""Marshmallow schemas of the register API (unknown fields refused)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from residents_app.ints import ID_RANGE, MAX_PAGE
from residents_app.registry.models import UNIT_KINDS


class Strict(Schema):
    class Meta:
        unknown = RAISE


class AreaField(fields.Field):
    """An area as a string ("102.30") or a JSON number; checked exactly by the service (two places)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError("面积必须是数字或数字字符串，例如 \"102.30\"")
        return value

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else f"{value:.2f}"


class TotalsSchema(Schema):
    unit_count = fields.Integer()
    household_count = fields.Integer()
    owner_count = fields.Integer(metadata={"description": "individuals (自然人): distinct owners"})
    title_area_m2 = AreaField()
    hardship_count = fields.Integer()
    voting_person_count = fields.Integer(metadata={
        "description": "voting head-count (表决人数, 法释〔2009〕7号 art. 9): units with the identical owner set "
                       "count once; the denominator of a round counted by persons over the same scope"})


class BuildingSummarySchema(Schema):
    building_id = fields.Integer()
    name = fields.String()
    totals = fields.Nested(TotalsSchema)
    residential_count = fields.Integer()
    commercial_count = fields.Integer()


class SummarySchema(TotalsSchema):
    estate_id = fields.Integer()
    residential = fields.Nested(TotalsSchema)
    commercial = fields.Nested(TotalsSchema)
    buildings = fields.List(fields.Nested(BuildingSummarySchema))


class EstateSchema(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    address = fields.String()
    street_office_id = fields.Integer()
    street_office_name = fields.Function(lambda e: e.street_office.name)


class EstateDetailSchema(EstateSchema):
    street_office_name = fields.String()
    summary = fields.Nested(SummarySchema)
    can_edit = fields.Boolean()


class OwnerSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    # Never the full number: the API masks it like every page and export (138****0102).
    phone = fields.String(attribute="masked_phone", metadata={"example": "138****0102"})
    id_last4 = fields.String(allow_none=True)


class UnitSchema(Schema):
    id = fields.Integer()
    building_id = fields.Integer()
    building = fields.Function(lambda u: u.building.name)
    number = fields.String()
    label = fields.String()
    title_area_m2 = AreaField()
    kind = fields.String()
    is_hardship = fields.Boolean()
    owners = fields.List(fields.Nested(OwnerSchema))


class UnitPageSchema(Schema):
    items = fields.List(fields.Nested(UnitSchema))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
    pages = fields.Integer()


class UnitQuerySchema(Strict):
    q = fields.String(load_default="", validate=validate.Length(max=60))
    building_id = fields.Integer(load_default=None, validate=ID_RANGE)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class UnitUpdateSchema(Strict):
    title_area_m2 = AreaField()
    kind = fields.String(validate=validate.OneOf(UNIT_KINDS, error="类型必须是 residential 或 commercial"))
    is_hardship = fields.Boolean()


class OwnerAddSchema(Strict):
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    phone = fields.String(required=True, validate=validate.Length(min=1, max=20))
    id_last4 = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4))


class ImportFormSchema(Strict):
    dry_run = fields.Boolean(load_default=False)


class ImportFileSchema(Strict):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class RowErrorSchema(Schema):
    row = fields.Integer()
    column = fields.String()
    message = fields.String()


class ImportResultSchema(Schema):
    applied = fields.Boolean()
    has_changes = fields.Boolean()
    file_sha256 = fields.String()
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    buildings_added = fields.List(fields.String())
    units_added = fields.List(fields.String())
    units_changed = fields.List(fields.Dict())
    owners_changed = fields.List(fields.Dict())
    ownerships_added = fields.List(fields.String())
    ownerships_removed = fields.List(fields.String())
    units_missing = fields.List(fields.String())
