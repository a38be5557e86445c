"""Marshmallow schemas at the edge of the API: unknown fields are refused."""

from marshmallow import RAISE, Schema, fields, validate

from residents_app.ints import ID_RANGE


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class IdentitySchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    phone_last4 = fields.String(required=True, validate=validate.Regexp(r"^\d{4}$", error="请填写 4 位数字"))


class CastSchema(StrictSchema):
    round_id = fields.Integer(required=True)
    choice = fields.String(required=True, validate=validate.Length(min=1, max=20))
    items = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list)
    rating = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 5))
    comment = fields.String(load_default="", validate=validate.Length(max=500))


class ReceiptSchema(Schema):
    round_title = fields.String()
    choice = fields.String()
    choice_label = fields.String()
    cast_at = fields.DateTime()
    counted = fields.Boolean()
    status = fields.String()
    status_label = fields.String()
    channel = fields.String()


class CastResultSchema(Schema):
    ballot_id = fields.Integer(attribute="id")
    round_id = fields.Integer()
    choice = fields.String()
    channel = fields.String()
    cast_at = fields.DateTime()
    receipt_code = fields.String()


class OptionSchema(Schema):
    key = fields.String()
    label = fields.String()


class MenuItemSchema(Schema):
    key = fields.String()
    label = fields.String()
    category = fields.String()


class RoundSchema(Schema):
    id = fields.Integer()
    estate_id = fields.Integer()
    kind = fields.String()
    kind_label = fields.String()
    title = fields.String()
    description = fields.String()
    rule_preset = fields.String()
    counting_mode = fields.String()
    matter_item = fields.Integer(allow_none=True)
    item = fields.Integer(allow_none=True)  # the art. 278 item decided (from the kind, or named); None: a survey
    # A closed management mode round: the decided option's label, or 未决定; None otherwise.
    decided_label = fields.Method("_decided_label")
    scope_building_ids = fields.List(fields.Integer())
    options = fields.List(fields.Nested(OptionSchema))
    item_menu = fields.List(fields.Nested(MenuItemSchema))
    plan_version_id = fields.Integer(allow_none=True)
    results_visibility = fields.String()
    status = fields.String()
    opens_at = fields.DateTime()
    closes_at = fields.DateTime()
    opened_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)

    def _decided_label(self, rnd):
        if not rnd.is_choice or rnd.status != "closed":
            return None
        from residents_app.rounds.outcomes import decided_option

        decided = decided_option(rnd.id)
        return decided[1] if decided else "未决定"


class RoundCreateSchema(StrictSchema):
    estate_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(
        ["willingness", "plan_vote", "management_mode", "general", "satisfaction"]))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    rule_preset = fields.String(load_default=None, allow_none=True)  # None: the rule the matter takes
    counting_mode = fields.String(load_default="household")
    matter_item = fields.Integer(load_default=None, allow_none=True)
    options = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=None,
                          allow_none=True)
    scope_building_ids = fields.List(fields.Integer(), load_default=list)
    item_menu = fields.List(fields.Nested(type("MenuIn", (StrictSchema,), {
        "key": fields.String(load_default=None, validate=validate.Length(max=40)),
        "label": fields.String(required=True, validate=validate.Length(min=1, max=100)),
        "category": fields.String(load_default="", validate=validate.Length(max=20)),
    })), load_default=list)
    plan_version_id = fields.Integer(load_default=None, allow_none=True)
    results_visibility = fields.String(load_default="live", validate=validate.OneOf(["live", "hidden"]))
    opens_at = fields.AwareDateTime(required=True)
    closes_at = fields.AwareDateTime(required=True)


class RoundQuerySchema(StrictSchema):
    estate_id = fields.Integer(required=True, validate=ID_RANGE)


class RollEntrySchema(Schema):
    unit_id = fields.Integer()
    label = fields.String()
    building_name = fields.String()
    unit_number = fields.String()
    area_m2 = fields.Decimal(as_string=True, places=2)
    owner_names = fields.List(fields.String())


class LinkIssueSchema(StrictSchema):
    building_id = fields.Integer(load_default=None, allow_none=True)
    reissue = fields.Boolean(load_default=False)


class ExtendSchema(StrictSchema):
    closes_at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
