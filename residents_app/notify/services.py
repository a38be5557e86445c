"""Who can be reached, and how: the unit's owners' phones and the WeChat openids bound to the unit, less the
owners who opted out. Used by the senders (notify/senders.py) and by the committee's canvass (which units need a
visit)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from residents_app.auth.wechat_models import WechatBinding
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.notify.models import OPT_OUT_CHANNELS, NotifyOptOut
from residents_app.registry.models import Owner, Ownership

CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "all": "全部"}


@dataclass
class Reach:
    """The recipients of one unit: (owner_id, phone) and (owner_id, openid), opted-out owners left out."""

    phones: list[tuple[int, str]] = field(default_factory=list)
    openids: list[tuple[int, str]] = field(default_factory=list)

    @property
    def has_channel(self) -> bool:
        return bool(self.phones or self.openids)


def opted_out(owner_ids) -> dict[int, set[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    ids = list(owner_ids)
    if not ids:
        return out
    for owner_id, channel in db.session.execute(
            sa.select(NotifyOptOut.owner_id, NotifyOptOut.channel).where(NotifyOptOut.owner_id.in_(ids))):
        out[owner_id].add(channel)
    return out


def reach_for_units(unit_ids) -> dict[int, Reach]:
    """Reach of many units in three queries."""
    ids = sorted(set(unit_ids))
    out = {uid: Reach() for uid in ids}
    if not ids:
        return out
    phones = db.session.execute(
        sa.select(Ownership.unit_id, Owner.id, Owner.phone).join(Owner, Owner.id == Ownership.owner_id)
        .where(Ownership.unit_id.in_(ids)).order_by(Ownership.unit_id, Owner.id)).all()
    bindings = db.session.execute(
        sa.select(WechatBinding.unit_id, WechatBinding.owner_id, WechatBinding.openid)
        .where(WechatBinding.unit_id.in_(ids)).order_by(WechatBinding.unit_id, WechatBinding.id)).all()
    blocked = opted_out({r[1] for r in phones} | {r[1] for r in bindings})
    for unit_id, owner_id, phone in phones:
        if phone and not blocked[owner_id] & {"sms", "all"}:
            out[unit_id].phones.append((owner_id, phone))
    for unit_id, owner_id, openid in bindings:
        if not blocked[owner_id] & {"wechat", "all"}:
            out[unit_id].openids.append((owner_id, openid))
    return out


def _check_channel(channel: str) -> None:
    if channel not in OPT_OUT_CHANNELS:
        raise ValidationFailed("渠道应为 sms、wechat 或 all", errors={"channel": "应为 sms、wechat 或 all"})


def opt_out(owner_id: int, channel: str, now: datetime, source: str = "resident") -> NotifyOptOut:
    """The owner receives no more messages on `channel` (idempotent). Flushes, never commits."""
    _check_channel(channel)
    if db.session.get(Owner, owner_id) is None:
        raise NotFound("找不到该业主")
    row = db.session.execute(sa.select(NotifyOptOut).where(
        NotifyOptOut.owner_id == owner_id, NotifyOptOut.channel == channel)).scalar_one_or_none()
    if row is None:
        row = NotifyOptOut(owner_id=owner_id, channel=channel, source=source, created_at=now)
        db.session.add(row)
        db.session.flush()
    return row


def opt_in(owner_id: int, channel: str) -> bool:
    """Undo an opt-out on `channel` ('all' undoes every one). Returns whether anything changed."""
    _check_channel(channel)
    q = sa.delete(NotifyOptOut).where(NotifyOptOut.owner_id == owner_id)
    if channel != "all":
        q = q.where(NotifyOptOut.channel == channel)
    return db.session.execute(q).rowcount > 0


def opt_outs_of(owner_id: int) -> list[str]:
    return sorted(db.session.execute(sa.select(NotifyOptOut.channel).where(
        NotifyOptOut.owner_id == owner_id)).scalars())
