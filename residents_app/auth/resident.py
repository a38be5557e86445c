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
from residents_app.registry.models import Owner, Ownership, Unit, UnitLink

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
    link: UnitLink | None = None
    # Held so the row stays in the session's (weak) identity map: casting checks it with get().
    ownership: Ownership | None = None

    def holds_token(self, token: str) -> bool:
        """Whether `token` is the (active) link this session was opened with, without a query."""
        return self.link is not None and token_matches(token, self.link.token_hash)


@dataclass(frozen=True, slots=True)
class SessionIds:
    """The resident session as the cookie holds it (no query): what the cast path reads and checks itself in its
    one statement (rounds/castpath.READ_SQL: the link is active, the owner still owns the unit)."""

    unit_id: int
    owner_id: int
    link_id: int


def token_matches(token: str, token_hash: str) -> bool:
    """Whether `token` is the link whose stored hash is `token_hash` (constant-time comparison)."""
    return bool(token) and len(token) <= 100 and secrets.compare_digest(token_hash, hash_token(token))


def session_ids() -> SessionIds | None:
    data = session.get(SESSION_KEY)
    if not data:
        return None
    ids = [_int_or_none(data.get(k)) for k in ("unit_id", "owner_id", "link_id")]
    return None if None in ids else SessionIds(*ids)


def sign_in_resident(link: UnitLink, owner: Owner) -> None:
    session[SESSION_KEY] = {"unit_id": link.unit_id, "owner_id": owner.id, "link_id": link.id}
    request.environ.pop(_CACHE_KEY, None)
    session.permanent = False


def sign_out_resident() -> None:
    session.pop(SESSION_KEY, None)
    request.environ.pop(_CACHE_KEY, None)


_SESSION_QUERY = []


def _session_query():
    """Built once (building it costs more than running it): link, unit, owner and ownership in one row."""
    if not _SESSION_QUERY:
        _SESSION_QUERY.append(
            sa.select(UnitLink, Unit, Owner, Ownership)
            .join(Unit, Unit.id == UnitLink.unit_id)
            .join(Ownership, Ownership.unit_id == Unit.id)
            .join(Owner, Owner.id == Ownership.owner_id)
            .where(UnitLink.id == sa.bindparam("p_link_id"), Unit.id == sa.bindparam("p_unit_id"),
                   Owner.id == sa.bindparam("p_owner_id")))
    return _SESSION_QUERY[0]


def current_resident() -> Resident | None:
    # Cached per request (not on g: g outlives a request when an app context is already pushed).
    if _CACHE_KEY in request.environ:
        return request.environ[_CACHE_KEY]
    data = session.get(SESSION_KEY)
    resident = None
    if data:
        # One query for the link, the unit, the owner and their ownership (the hot path of every resident
        # request, casting included); the rows land in the identity map, so later get()s are free.
        row = db.session.execute(_session_query(), {
            "p_link_id": _int_or_none(data.get("link_id")), "p_unit_id": _int_or_none(data.get("unit_id")),
            "p_owner_id": _int_or_none(data.get("owner_id"))}).first()
        # A revoked link or an owner removed from the unit ends the session.
        if row is not None and row[0].is_active:
            resident = Resident(unit=row[1], owner=row[2], link_id=row[0].id, link=row[0], ownership=row[3])
        else:
            sign_out_resident()
    request.environ[_CACHE_KEY] = resident
    return resident


def _int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def resident_required(fn):
    @wraps(fn)
    def wrapper(*args, **kwargs):
        if current_resident() is None:
            return redirect(url_for("auth.resident_expired"))
        return fn(*args, **kwargs)

    return wrapper
