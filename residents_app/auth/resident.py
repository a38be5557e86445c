"""The resident's session after opening a unit's QR link and confirming identity.

Resident pages live under /r/... and /v/<token>; they never use Flask-Login accounts.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import wraps

import sqlalchemy as sa
from flask import redirect, request, session, url_for

from residents_app.extensions import db
from residents_app.registry.models import Owner, Unit, UnitLink

SESSION_KEY = "resident"
_CACHE_KEY = "residents_app.resident"


def new_token() -> str:
    """160 random bits, URL-safe."""
    return secrets.token_urlsafe(20)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def resolve_token(token: str) -> UnitLink | None:
    """The active link for a token, or None (unknown or revoked)."""
    if not token or len(token) > 100:
        return None
    link = db.session.execute(
        sa.select(UnitLink).where(UnitLink.token_hash == hash_token(token))
    ).scalar_one_or_none()
    return link


@dataclass
class Resident:
    unit: Unit
    owner: Owner
    link_id: int


def sign_in_resident(link: UnitLink, owner: Owner) -> None:
    session[SESSION_KEY] = {"unit_id": link.unit_id, "owner_id": owner.id, "link_id": link.id}
    request.environ.pop(_CACHE_KEY, None)
    session.permanent = False


def sign_out_resident() -> None:
    session.pop(SESSION_KEY, None)
    request.environ.pop(_CACHE_KEY, None)


def current_resident() -> Resident | None:
    # Cached per request (not on g: g outlives a request when an app context is already pushed).
    if _CACHE_KEY in request.environ:
        return request.environ[_CACHE_KEY]
    data = session.get(SESSION_KEY)
    resident = None
    if data:
        link = db.session.get(UnitLink, data.get("link_id"))
        unit = db.session.get(Unit, data.get("unit_id"))
        owner = db.session.get(Owner, data.get("owner_id"))
        # A revoked link or an owner removed from the unit ends the session.
        if (link and link.is_active and unit and owner and link.unit_id == unit.id
                and any(o.owner_id == owner.id for o in unit.ownerships)):
            resident = Resident(unit=unit, owner=owner, link_id=link.id)
        else:
            sign_out_resident()
    request.environ[_CACHE_KEY] = resident
    return resident


def resident_required(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        if current_resident() is None:
            return redirect(url_for("auth.resident_expired"))
        return fn(*args, **kwargs)

    return wrapper
