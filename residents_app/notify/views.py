"""The resident's message settings (JSON, resident session): which channels they receive, opt out and back in."""

from __future__ import annotations

from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields, validate

from residents_app.auth.resident import current_resident
from residents_app.db import utcnow
from residents_app.errors import DomainError
from residents_app.extensions import db
from residents_app.notify import services as svc
from residents_app.notify.models import OPT_OUT_CHANNELS

api_bp = ApiBlueprint("notify_api", __name__, url_prefix="/api/r/notify",
                      description="消息设置：住户退订或恢复短信、微信提醒")


class ChannelSchema(Schema):
    class Meta:
        unknown = RAISE

    channel = fields.String(required=True, validate=validate.OneOf(OPT_OUT_CHANNELS),
                            metadata={"description": "sms、wechat 或 all", "example": "sms"})


class PreferencesSchema(Schema):
    opted_out = fields.List(fields.String(), metadata={"example": ["sms"]})
    channels = fields.List(fields.String(), metadata={"description": "本户目前可用的渠道", "example": ["wechat"]})


def _resident():
    resident = current_resident()
    if resident is None:
        raise DomainError("请先确认业主身份", code="identity_required", status=401)
    return resident


def _preferences(resident) -> dict:
    reach = svc.reach_for_units([resident.unit.id])[resident.unit.id]
    return {"opted_out": svc.opt_outs_of(resident.owner.id),
            "channels": (["wechat"] if reach.openids else []) + (["sms"] if reach.phones else [])}


@api_bp.route("/preferences")
@api_bp.response(200, PreferencesSchema)
def preferences():
    """The signed-in owner's opt-outs and the channels that reach the unit."""
    return _preferences(_resident())


@api_bp.route("/opt-out", methods=["POST"])
@api_bp.arguments(ChannelSchema)
@api_bp.response(200, PreferencesSchema)
def opt_out(data):
    """Receive no more reminders on a channel (all: on none; the committee may then visit)."""
    resident = _resident()
    svc.opt_out(resident.owner.id, data["channel"], utcnow())
    db.session.commit()
    return _preferences(resident)


@api_bp.route("/opt-in", methods=["POST"])
@api_bp.arguments(ChannelSchema)
@api_bp.response(200, PreferencesSchema)
def opt_in(data):
    """Receive reminders on a channel again (all: undo every opt-out)."""
    resident = _resident()
    svc.opt_in(resident.owner.id, data["channel"])
    db.session.commit()
    return _preferences(resident)
