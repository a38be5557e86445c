"""JSON API of the WeChat login binding (auth/wechat.py), for the mini-program and the committee.

Resident, in the mini-program:
1. POST /api/auth/wechat/login {code}: exchanges wx.login's code; a bound openid is signed in (to its only unit,
   or to `unit_id` among several); otherwise `next` says "identity": open the unit's QR link and confirm the
   owner (POST /api/ballot/<token>/identity), then
2. POST /api/auth/wechat/bind: binds the openid of step 1 to the owner and unit just confirmed.
3. GET /api/auth/wechat/bindings, DELETE /api/auth/wechat/bindings/<unit_id>: see and remove one's bindings.

Committee: GET /api/auth/wechat/estates/<estate_id>/bindings, DELETE /api/auth/wechat/binding/<binding_id>.
"""

from __future__ import annotations

from flask import current_app, session
from flask_login import current_user
from marshmallow import RAISE, Schema, fields, validate

from residents_app.audit.services import actor_for_user
from residents_app.auth import wechat as svc
from residents_app.auth.resident import current_resident, sign_in_resident, sign_out_resident
from residents_app.auth.scoping import estate_or_404, staff_required
from residents_app.auth.views import api_bp
from residents_app.auth.wechat_client import WechatClient
from residents_app.auth.wechat_models import WechatBinding
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound
from residents_app.extensions import db, limiter

OPENID_KEY = "wechat_openid"
WECHAT_LOGIN_LIMIT = "20 per minute"


class WechatLoginSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(required=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "wx.login 返回的 code（一次有效）", "example": "081Kq4Ga1Qm0Hz0f"})
    unit_id = fields.Integer(load_default=None, allow_none=True,
                             metadata={"description": "绑定了多户时选择的房屋 id", "example": 12})


class BindSchema(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=128),
                         metadata={"description": "可选：新的 wx.login code（未先调用 login 时）"})


class BoundUnitSchema(Schema):
    binding_id = fields.Integer(metadata={"example": 3})
    unit_id = fields.Integer(metadata={"example": 12})
    label = fields.String(metadata={"example": "1幢-101"})
    estate = fields.String(metadata={"example": "幸福小区"})
    bound_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})


class WechatSessionSchema(Schema):
    signed_in = fields.Nested(BoundUnitSchema, allow_none=True)
    units = fields.List(fields.Nested(BoundUnitSchema))
    next = fields.String(metadata={
        "description": "home（已登录）、choose_unit（请选择房屋）或 identity（请扫码确认身份后绑定）",
        "example": "home"})


class BindingListSchema(Schema):
    units = fields.List(fields.Nested(BoundUnitSchema))


class EstateBindingSchema(BoundUnitSchema):
    owner_name = fields.String(metadata={"example": "张三"})
    last_login_at = fields.String(allow_none=True)


class EstateBindingListSchema(Schema):
    bindings = fields.List(fields.Nested(EstateBindingSchema))


def _client() -> WechatClient | None:
    config = current_app.config
    return WechatClient.from_config(config) if config.get("WECHAT_APP_ID") else None


def _unit_json(b: WechatBinding) -> dict:
    return {"binding_id": b.id, "unit_id": b.unit_id, "label": b.unit.label, "estate": b.unit.building.estate.name,
            "bound_at": b.created_at.isoformat()}


def _session_openid() -> str:
    openid = session.get(OPENID_KEY)
    if not isinstance(openid, str) or not openid:
        raise DomainError("请先在小程序中登录微信", code="wechat_login_required", status=401)
    return openid


@api_bp.route("/wechat/login", methods=["POST"])
@api_bp.arguments(WechatLoginSchema)
@api_bp.response(200, WechatSessionSchema)
@limiter.limit(WECHAT_LOGIN_LIMIT)
def wechat_login(data):
    """Sign in with wx.login's code: a bound WeChat needs no identity check."""
    now = utcnow()
    openid = svc.exchange_code(_client(), data["code"])
    # A resident session only ever comes from this openid's binding or a fresh identity check, never from before.
    sign_out_resident()
    session[OPENID_KEY] = openid
    chosen = svc.login_binding(openid, data["unit_id"], now)
    units = [_unit_json(b) for b in svc.bindings_of(openid)]
    if chosen is None:
        db.session.commit()
        return {"signed_in": None, "units": units, "next": "choose_unit" if units else "identity"}
    sign_in_resident(svc.active_link(chosen.unit_id), chosen.owner)
    db.session.commit()
    return {"signed_in": _unit_json(chosen), "units": units, "next": "home"}


@api_bp.route("/wechat/bind", methods=["POST"])
@api_bp.arguments(BindSchema)
@api_bp.response(200, BindingListSchema)
@limiter.limit(WECHAT_LOGIN_LIMIT)
def wechat_bind(data):
    """Bind this WeChat to the owner and unit whose identity was just confirmed (resident session)."""
    resident = current_resident()
    if resident is None:
        raise DomainError("请先扫描本户二维码并确认业主身份", code="identity_required", status=401)
    if data.get("code"):
        session[OPENID_KEY] = svc.exchange_code(_client(), data["code"])
    openid = _session_openid()
    svc.bind(openid, resident.unit.id, resident.owner.id, utcnow(), actor=f"resident:owner:{resident.owner.id}")
    db.session.commit()
    return {"units": [_unit_json(b) for b in svc.bindings_of(openid)]}


@api_bp.route("/wechat/bindings")
@api_bp.response(200, BindingListSchema)
def wechat_bindings():
    """The units this WeChat is bound to."""
    return {"units": [_unit_json(b) for b in svc.bindings_of(_session_openid())]}


@api_bp.route("/wechat/bindings/<int:unit_id>", methods=["DELETE"])
@api_bp.response(200, BindingListSchema)
def wechat_unbind(unit_id: int):
    """Unbind one unit from this WeChat (on the phone). Signs out if it was the unit of the session."""
    openid = _session_openid()
    binding = svc.binding_of(openid, unit_id)
    svc.unbind(binding, utcnow(), actor=f"resident:owner:{binding.owner_id}", by="resident")
    resident = current_resident()
    if resident is not None and resident.unit.id == unit_id:
        sign_out_resident()
    db.session.commit()
    return {"units": [_unit_json(b) for b in svc.bindings_of(openid)]}


@api_bp.route("/wechat/estates/<int:estate_id>/bindings")
@api_bp.response(200, EstateBindingListSchema)
@staff_required
def wechat_estate_bindings(estate_id: int):
    """The committee's view: which units are bound to a WeChat (owner, since when, last login)."""
    estate_or_404(estate_id)
    out = []
    for b in svc.bindings_of_estate(estate_id):
        row = _unit_json(b)
        row.update(owner_name=b.owner.name, last_login_at=b.last_login_at.isoformat() if b.last_login_at else None)
        out.append(row)
    return {"bindings": out}


@api_bp.route("/wechat/binding/<int:binding_id>", methods=["DELETE"])
@api_bp.response(204)
@staff_required
def wechat_committee_unbind(binding_id: int):
    """The committee removes a binding (a sold flat, a lost phone)."""
    binding = db.session.get(WechatBinding, binding_id)
    if binding is None:
        raise NotFound("找不到该绑定")
    estate_or_404(binding.unit.estate_id, edit=True)
    svc.unbind(binding, utcnow(), actor=actor_for_user(current_user), by="committee")
    db.session.commit()
