from marshmallow import RAISE, Schema, fields, validate


class LoginSchema(Schema):
    class Meta:
        unknown = RAISE

    username = fields.String(required=True, validate=validate.Length(min=1, max=60))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = fields.String()
    street_office_id = fields.Integer(allow_none=True)
    estate_id = fields.Integer(allow_none=True)
    district = fields.String()  # role bureau: the district it oversees
