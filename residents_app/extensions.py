"""Extensions, created unbound; create_app() binds them."""

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from marshmallow import Schema, fields

from residents_app.db import Base
from residents_app.replica import Session as _RoutingSession

db = SQLAlchemy(model_class=Base, session_options={"class_": _RoutingSession})  # replica.py: read replica
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])


class ErrorSchema(Schema):
    """The one error shape of errors.py, as the OpenAPI document describes every error response."""

    code = fields.String(required=True, metadata={"description": "stable English error code"})
    status = fields.Integer(required=True, metadata={"description": "HTTP status"})
    message = fields.String(required=True, metadata={"description": "message for the user, in Chinese"})
    errors = fields.Dict(required=True, metadata={"description": "field -> message"})


class _Api(Api):
    ERROR_SCHEMA = ErrorSchema


api = _Api()
