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
    # Serialised as a string ("88.50"): documented so (apispec would say "number" for a Decimal field).
    area_m2 = fields.Decimal(as_string=True, places=2, metadata={"type": "string", "format": "decimal",
                                                                 "example": "88.50"})
    owner_names = fields.List(fields.String())


class LinkIssueSchema(StrictSchema):
    building_id = fields.Integer(load_default=None, allow_none=True)
    reissue = fields.Boolean(load_default=False)


class ExtendSchema(StrictSchema):
    closes_at = fields.AwareDateTime(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# ---- documented responses of handlers that return plain dicts (alt_response: the body is not re-dumped) ----

def _ex(value) -> dict:
    return {"example": value}


class BallotUnitOutSchema(Schema):
    label = fields.String(metadata=_ex("1幢1单元101"))
    area_m2 = fields.String(metadata=_ex("89.50"))  # only once the identity is confirmed


class BallotMyBallotOutSchema(Schema):
    choice = fields.String(metadata=_ex("agree"))
    cast_at = fields.String(metadata=_ex("2026-09-01T02:00:00+00:00"))
    receipt_code = fields.String(metadata=_ex("k3f9q2m7x8c4"))


class BallotRuleOutSchema(Schema):
    label = fields.String(metadata=_ex("双三分之二"))
    description = fields.String(metadata=_ex("参与表决的专有部分面积和人数均过三分之二"))
    counting = fields.String(metadata=_ex("按户计"))
    matter = fields.String(metadata=_ex("本事项属于第七项：改建、重建建筑物及其附属设施"))


class BallotRoundOutSchema(RoundSchema):
    rule = fields.Nested(BallotRuleOutSchema)
    my_ballot = fields.Nested(BallotMyBallotOutSchema, allow_none=True)


class BallotInfoSchema(Schema):
    unit = fields.Nested(BallotUnitOutSchema)
    identified = fields.Boolean(metadata=_ex(True))
    rounds = fields.List(fields.Nested(BallotRoundOutSchema))


class IdentityConfirmedSchema(Schema):
    unit = fields.String(metadata=_ex("1幢1单元101"))
    owner_name = fields.String(metadata=_ex("张三"))


class TallyFiguresOutSchema(Schema):
    total_count = fields.Integer(metadata=_ex(120))
    total_area = fields.String(metadata=_ex("10234.50"))
    voted_count = fields.Integer(metadata=_ex(90))
    voted_area = fields.String(metadata=_ex("7801.20"))
    agree_count = fields.Integer(metadata=_ex(85))  # absent for a choice, a survey or hidden results
    agree_area = fields.String(metadata=_ex("7400.00"))


class TallyConditionOutSchema(Schema):
    key = fields.String(metadata=_ex("agree_area"))
    label = fields.String(metadata=_ex("同意的专有部分面积"))
    measure = fields.String(metadata=_ex("area"))
    value = fields.Raw(metadata={"description": "an integer (count) or a \"0.00\" string (area)", "example": "7400.00"})
    denominator = fields.Raw(metadata={"description": "an integer (count) or a \"0.00\" string (area)",
                                       "example": "7801.20"})
    bound = fields.String(metadata=_ex("2/3"))
    strict = fields.Boolean(metadata=_ex(False))
    required = fields.Raw(metadata=_ex("5200.80"))
    met = fields.Boolean(metadata=_ex(True))
    margin = fields.Raw(metadata=_ex("2199.20"))


class TallyChoiceOutSchema(Schema):
    preset = fields.String(metadata=_ex("civil_code_278_ordinary"))
    counting_mode = fields.String(metadata=_ex("household"))
    decided = fields.String(allow_none=True, metadata=_ex("self"))
    decided_label = fields.String(metadata=_ex("自行管理"))
    options = fields.List(fields.Dict(), metadata=_ex([{"key": "self", "label": "自行管理", "count": 70,
                                                         "area": "6100.00", "meets_rule": True}]))


class RoundTallySchema(Schema):
    """The live tally (or, closed, the stored one); with hidden results before the close only participation."""
    status = fields.String(metadata=_ex("open"))
    hidden = fields.Boolean(metadata=_ex(True))
    preset = fields.String(metadata=_ex("lucheng_double_two_thirds"))
    counting_mode = fields.String(metadata=_ex("household"))
    passed = fields.Boolean(metadata=_ex(False))
    can_still_pass = fields.Boolean(metadata=_ex(True))
    figures = fields.Nested(TallyFiguresOutSchema)
    conditions = fields.List(fields.Nested(TallyConditionOutSchema))
    margin_count = fields.Integer(metadata=_ex(3))
    margin_area = fields.String(metadata=_ex("120.50"))
    buildings = fields.List(fields.Dict(), metadata=_ex([{"building_id": 1, "name": "1幢", "voted_count": 30}]))
    choice = fields.Nested(TallyChoiceOutSchema)
    decided_label = fields.String(metadata=_ex("自行管理"))
    survey = fields.Dict(metadata=_ex({"total_count": 120, "response_count": 90, "response_rate": "75.00%"}))
    item_tally = fields.Dict(metadata=_ex({"agree_count": 85, "agree_area": "7400.00", "items": [], "buildings": []}))
    non_voters = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                             metadata=_ex({"1幢": ["101", "202"]}))


class IssuedLinkOutSchema(Schema):
    unit_id = fields.Integer(metadata=_ex(12))
    label = fields.String(metadata=_ex("1幢1单元101"))
    url = fields.String(metadata=_ex("https://example.org/v/3q2x7k9m"))


class IssuedLinksSchema(Schema):
    links = fields.List(fields.Nested(IssuedLinkOutSchema))


class ChainReceiptCheckSchema(Schema):
    state = fields.String(metadata=_ex("counted_as_cast"))
    headline = fields.String(metadata=_ex("该票已计入"))
    round_title = fields.String(metadata=_ex("电梯加装意愿征询"))
    estate_name = fields.String(metadata=_ex("鹿城小区"))
    choice_label = fields.String(metadata=_ex("同意"))
    cast_at = fields.String(metadata=_ex("2026-09-01T02:00:00+00:00"))
    round_closed = fields.Boolean(metadata=_ex(True))
    chain = fields.Integer(metadata=_ex(3))
    seq = fields.Integer(metadata=_ex(41))
    entry_hash = fields.String(metadata=_ex("9f2c…"))
    detail = fields.String(metadata=_ex(""))
