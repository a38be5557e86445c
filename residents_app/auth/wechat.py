"""WeChat login binding: the mini-program sends `wx.login`'s code, the server exchanges it for the user's openid
(auth/wechat_client.py, `sns/jscode2session`), and, once the owner has confirmed who they are (the QR link and
the identity check, which sign the resident in), binds the openid to that owner and unit. One openid may hold
several units. Later visits need no identity check: the code alone signs the resident in to a bound unit.

The resident unbinds on the phone, the committee from its side; binding and unbinding are logged on the estate's
audit chain (the openid itself only as a hash prefix).
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.auth.wechat_client import WechatClient, WechatError
from residents_app.auth.wechat_models import WechatBinding
from residents_app.errors import DomainError, NotFound, ServiceUnavailable
from residents_app.extensions import db
from residents_app.registry.models import Ownership, Unit, UnitLink

MAX_UNITS_PER_OPENID = 20


def openid_ref(openid: str) -> str:
    """What the audit chain and the logs keep of an openid."""
    return hashlib.sha256(openid.encode("utf-8")).hexdigest()[:16]


def exchange_code(client: WechatClient | None, code: str) -> str:
    """wx.login's code -> openid, WeChat's errors as DomainErrors (not configured here 404, invalid or used code
    401, rate limit 429, WeChat busy or refusing our credentials 503)."""
    if client is None or not client.app_id:
        raise NotFound("微信登录暂未开通", code="wechat_not_configured")
    try:
        return client.code_to_session(code).openid
    except WechatError as exc:
        if exc.errcode in (40029, 40163):
            raise DomainError(exc.message_zh, code="wechat_code_invalid", status=401) from None
        if exc.errcode == 45011:
            raise DomainError(exc.message_zh, code="rate_limited", status=429) from None
        if exc.errcode == 40226:
            raise DomainError(exc.message_zh, code="wechat_user_blocked", status=403) from None
        raise ServiceUnavailable(exc.message_zh, code="wechat_unavailable") from None


def bindings_of(openid: str) -> list[WechatBinding]:
    return list(db.session.execute(sa.select(WechatBinding).where(WechatBinding.openid == openid)
                                   .order_by(WechatBinding.id)).scalars())


def bind(openid: str, unit_id: int, owner_id: int, now: datetime, actor: str) -> tuple[WechatBinding, bool]:
    """Bind `openid` to the unit and the owner who confirmed their identity (idempotent: the same pair again
    returns the existing binding, False). Flushes, never commits."""
    owns = db.session.execute(sa.select(Ownership).where(
        Ownership.unit_id == unit_id, Ownership.owner_id == owner_id)).scalar_one_or_none()
    if owns is None:
        raise DomainError("请先确认业主身份", code="identity_required", status=401)
    existing = db.session.execute(sa.select(WechatBinding).where(
        WechatBinding.openid == openid, WechatBinding.unit_id == unit_id)).scalar_one_or_none()
    if existing is not None:
        return existing, False
    count = db.session.execute(sa.select(sa.func.count()).select_from(WechatBinding).where(
        WechatBinding.openid == openid)).scalar_one()
    if count >= MAX_UNITS_PER_OPENID:
        raise DomainError(f"一个微信最多绑定 {MAX_UNITS_PER_OPENID} 户", code="too_many_bindings", status=409)
    unit = db.session.get(Unit, unit_id)
    binding = WechatBinding(openid=openid, unit_id=unit_id, owner_id=owner_id, created_at=now)
    db.session.add(binding)
    db.session.flush()
    record("wechat_bound", chain=unit.estate_id, actor=actor, now=now, subject_type="unit", subject_id=unit_id,
           data={"owner_id": owner_id, "openid": openid_ref(openid), "binding_id": binding.id})
    return binding, True


def unbind(binding: WechatBinding, now: datetime, actor: str, *, by: str) -> None:
    """Remove a binding (`by`: "resident" or "committee"); the audit chain keeps who and when."""
    unit = db.session.get(Unit, binding.unit_id)
    record("wechat_unbound", chain=unit.estate_id, actor=actor, now=now, subject_type="unit", subject_id=unit.id,
           data={"owner_id": binding.owner_id, "openid": openid_ref(binding.openid), "binding_id": binding.id,
                 "by": by})
    db.session.delete(binding)
    db.session.flush()


def binding_of(openid: str, unit_id: int) -> WechatBinding:
    binding = db.session.execute(sa.select(WechatBinding).where(
        WechatBinding.openid == openid, WechatBinding.unit_id == unit_id)).scalar_one_or_none()
    if binding is None:
        raise NotFound("该微信未绑定这一户")
    return binding


def bindings_of_estate(estate_id: int) -> list[WechatBinding]:
    return list(db.session.execute(
        sa.select(WechatBinding).join(Unit, Unit.id == WechatBinding.unit_id).where(Unit.estate_id == estate_id)
        .order_by(WechatBinding.unit_id, WechatBinding.id)).scalars())


def active_link(unit_id: int) -> UnitLink:
    """The unit's current QR link: a WeChat session rides on it, so revoking the link ends the session too."""
    link = db.session.execute(sa.select(UnitLink).where(
        UnitLink.unit_id == unit_id, UnitLink.revoked_at.is_(None)).order_by(UnitLink.id.desc()).limit(1)
    ).scalar_one_or_none()
    if link is None:
        raise DomainError("本户二维码已作废，请联系业委会领取新的二维码", code="link_revoked", status=409)
    return link


def login_binding(openid: str, unit_id: int | None, now: datetime) -> WechatBinding | None:
    """The binding a returning user signs in with: the one asked for, or the only one; None when there is a
    choice to make (several units) or nothing bound yet."""
    bindings = bindings_of(openid)
    if unit_id is not None:
        chosen = next((b for b in bindings if b.unit_id == unit_id), None)
        if chosen is None:
            raise NotFound("该微信未绑定这一户")
    elif len(bindings) == 1:
        chosen = bindings[0]
    else:
        return None
    still_owner = db.session.execute(sa.select(Ownership).where(
        Ownership.unit_id == chosen.unit_id, Ownership.owner_id == chosen.owner_id)).scalar_one_or_none()
    if still_owner is None:
        raise DomainError("登记信息已变更，请重新扫码确认业主身份", code="identity_required", status=401)
    chosen.last_login_at = now
    return chosen
