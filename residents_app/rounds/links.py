"""Per-unit links (QR tokens): issue, revoke, reissue, and the resident's identity check."""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.auth import identity
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Building, Owner, Unit, UnitLink
from residents_app.rounds.common import (
    actor_name,
)

log = logging.getLogger(__name__)



# ---- links and identity ----------------------------------------------------------------------

def issue_links(estate_id: int, now: datetime, user=None, *, building_id: int | None = None,
                reissue: bool = False) -> list[tuple[Unit, str]]:
    """New links for the units (of a building) that have none; with reissue, every unit's link is
    replaced (the old printed codes stop working). Tokens are returned once, never stored."""
    from residents_app.auth.resident import hash_token, new_token

    q = sa.select(Unit).join(Building, Building.id == Unit.building_id).where(Unit.estate_id == estate_id)
    if building_id is not None:
        q = q.where(Unit.building_id == building_id)
    units = list(db.session.execute(q.order_by(Building.name, Unit.number)).scalars())
    active = {link.unit_id: link for link in db.session.execute(
        sa.select(UnitLink).where(UnitLink.unit_id.in_([u.id for u in units]), UnitLink.revoked_at.is_(None))
    ).scalars()} if units else {}
    out = []
    for unit in units:
        if unit.id in active:
            if not reissue:
                continue
            active[unit.id].revoked_at = now
        token = new_token()
        db.session.add(UnitLink(unit_id=unit.id, token_hash=hash_token(token), created_at=now))
        out.append((unit, token))
    db.session.flush()
    if out:
        record("links.issued", chain=estate_id, actor=actor_name(user), now=now, subject_type="estate",
               subject_id=estate_id, data={"units": len(out), "building_id": building_id, "reissue": reissue})
    return out


def revoke_link(unit_id: int, now: datetime, user=None) -> int:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("找不到该房屋")
    links = list(db.session.execute(
        sa.select(UnitLink).where(UnitLink.unit_id == unit_id, UnitLink.revoked_at.is_(None))).scalars())
    for link in links:
        link.revoked_at = now
    db.session.flush()
    record("links.revoked", chain=unit.estate_id, actor=actor_name(user), now=now, subject_type="unit",
           subject_id=unit_id, data={"count": len(links)})
    return len(links)


def reissue_link(unit_id: int, now: datetime, user=None) -> str:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("找不到该房屋")
    revoke_link(unit_id, now, user)
    from residents_app.auth.resident import hash_token, new_token

    token = new_token()
    db.session.add(UnitLink(unit_id=unit_id, token_hash=hash_token(token), created_at=now))
    db.session.flush()
    return token


def link_status(estate_id: int) -> dict[int, UnitLink]:
    return {link.unit_id: link for link in db.session.execute(
        sa.select(UnitLink).join(Unit, Unit.id == UnitLink.unit_id)
        .where(Unit.estate_id == estate_id, UnitLink.revoked_at.is_(None))).scalars()}


def confirm_identity(link: UnitLink, name: str, phone_last4: str, now: datetime,
                     client: identity.Client | None = None) -> Owner:
    """Registered owner name + last 4 digits of the registered phone. Too many failures lock the client that made
    them out of the link (auth/identity.py), not the link itself."""
    client = client or identity.Client.of()
    identity.check_not_locked(link.id, client, now)
    name = (name or "").strip()
    phone_last4 = (phone_last4 or "").strip()
    errors = {}
    if not name:
        errors["name"] = "请填写登记的业主姓名"
    if len(phone_last4) != 4 or not phone_last4.isdigit():
        errors["phone_last4"] = "请填写登记手机号的后 4 位数字"
    if errors:
        raise ValidationFailed("请填写业主姓名和手机号后 4 位", errors=errors)
    for ownership in db.session.get(Unit, link.unit_id).ownerships:
        owner = ownership.owner
        if owner.name == name and owner.phone[-4:] == phone_last4:
            return owner
    left = identity.record_failure(link.id, client, now)
    log.warning("identity confirmation failed for link %s (unit %s), %s tries left", link.id, link.unit_id, left)
    raise ValidationFailed(identity.mismatch_message(left), code="identity_mismatch",
                           errors={"name": "与登记信息不符", "phone_last4": "与登记信息不符"})
