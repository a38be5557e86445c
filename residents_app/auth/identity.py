"""Failed identity confirmations on a unit's QR link, counted per link and client.

Anyone who holds a unit's link (a neighbour, a printed sheet left in the hall) can type wrong answers. Locking the
link for everybody would let them keep the owner from voting, so the count is per link and client: the client is
the address, the User-Agent and a long-lived random device cookie (stored only as a SHA-256 of the three), and
only that client is locked. A client that drops its cookie to start afresh still shares its address: the
address has a larger budget of its own per link. The committee can unlock a link (every client at once).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import Flask, current_app, request

from residents_app.audit.services import actor_for_user, record
from residents_app.auth.models import IdentityFailure
from residents_app.errors import DomainError
from residents_app.extensions import db
from residents_app.registry.models import Unit, UnitLink

CLIENT_MAX_FAILURES = 5  # per link and client (address + device)
ADDRESS_MAX_FAILURES = 20  # per link and address, whatever the device cookie says
WINDOW = timedelta(minutes=15)
WINDOW_MINUTES = int(WINDOW.total_seconds() // 60)
DEVICE_COOKIE = "rapp_device"
DEVICE_COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie
_NEW_DEVICE = "residents_app.new_device"

LOCKED_MESSAGE = f"验证失败次数过多，本设备已暂停验证 {WINDOW_MINUTES} 分钟。请稍后再试，或联系业委会解锁"
MISMATCH_MESSAGE = "姓名或手机号后 4 位与本户登记信息不符"


@dataclass(frozen=True, slots=True)
class Client:
    """Who is trying, as far as a phone's browser can tell: never the raw device cookie."""

    remote_addr: str = ""
    key: str = ""  # SHA-256 hex of address, User-Agent and device cookie

    @classmethod
    def of(cls, remote_addr: str = "", user_agent: str = "", device_id: str = "") -> Client:
        raw = "\x1f".join((remote_addr, user_agent, device_id)).encode("utf-8")
        return cls(remote_addr=remote_addr[:64], key=hashlib.sha256(raw).hexdigest())


def current_client() -> Client:
    """The client of this request; a browser without a device cookie gets one (set on the response)."""
    device_id = request.cookies.get(DEVICE_COOKIE, "")
    if not _valid_device_id(device_id):
        device_id = request.environ.get(_NEW_DEVICE) or secrets.token_urlsafe(24)
        request.environ[_NEW_DEVICE] = device_id
    return Client.of(request.remote_addr or "", request.headers.get("User-Agent", "")[:400], device_id)


def _valid_device_id(value: str) -> bool:
    return 20 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)


def init_app(app: Flask) -> None:
    @app.after_request
    def _set_device_cookie(resp):
        if request.path.startswith("/v/") and not _valid_device_id(request.cookies.get(DEVICE_COOKIE, "")):
            current_client()  # the identity page hands the device its cookie before the first answer
        device_id = request.environ.get(_NEW_DEVICE)
        if device_id:
            resp.set_cookie(DEVICE_COOKIE, device_id, max_age=DEVICE_COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                            secure=current_app.config.get("SESSION_COOKIE_SECURE", False))
        return resp


def _counted(link_id: int, now: datetime):
    return (IdentityFailure.link_id == link_id, IdentityFailure.cleared_at.is_(None),
            IdentityFailure.at > now - WINDOW)


def tries_left(link_id: int, client: Client, now: datetime) -> int:
    """How many more wrong answers this client may give on this link before it is locked (0: locked)."""
    by_client, by_address = db.session.execute(
        sa.select(sa.func.count().filter(IdentityFailure.client_key == client.key),
                  sa.func.count().filter(IdentityFailure.remote_addr == client.remote_addr))
        .where(*_counted(link_id, now))).one()
    return max(0, min(CLIENT_MAX_FAILURES - by_client, ADDRESS_MAX_FAILURES - by_address))


def check_not_locked(link_id: int, client: Client, now: datetime) -> int:
    """Raises identity_locked (429) for a locked client; otherwise the tries it has left."""
    left = tries_left(link_id, client, now)
    if left <= 0:
        raise DomainError(LOCKED_MESSAGE, code="identity_locked", status=429)
    return left


def record_failure(link_id: int, client: Client, now: datetime) -> int:
    """Count a wrong answer; returns the tries left after it."""
    db.session.add(IdentityFailure(link_id=link_id, at=now, remote_addr=client.remote_addr, client_key=client.key))
    db.session.flush()
    return tries_left(link_id, client, now)


def mismatch_message(left: int) -> str:
    if left <= 0:
        return f"{MISMATCH_MESSAGE}。{LOCKED_MESSAGE}"
    return f"{MISMATCH_MESSAGE}，还可以再试 {left} 次"


@dataclass(frozen=True, slots=True)
class LinkLocks:
    failures: int  # wrong answers still counted on the unit's link
    locked_clients: int  # clients currently locked out of it


def lock_status(estate_id: int, now: datetime) -> dict[int, LinkLocks]:
    """unit id -> the wrong answers counted on its active link, for units that have any (the links page)."""
    per_client = (
        sa.select(UnitLink.unit_id, IdentityFailure.client_key, sa.func.count().label("n"))
        .join(UnitLink, UnitLink.id == IdentityFailure.link_id)
        .join(Unit, Unit.id == UnitLink.unit_id)
        .where(Unit.estate_id == estate_id, UnitLink.revoked_at.is_(None), IdentityFailure.cleared_at.is_(None),
               IdentityFailure.at > now - WINDOW)
        .group_by(UnitLink.unit_id, IdentityFailure.client_key))
    out: dict[int, LinkLocks] = {}
    for unit_id, _key, n in db.session.execute(per_client):
        prev = out.get(unit_id, LinkLocks(0, 0))
        out[unit_id] = LinkLocks(prev.failures + n, prev.locked_clients + (n >= CLIENT_MAX_FAILURES))
    return out


def unlock_link(unit: Unit, now: datetime, user) -> int:
    """The committee lifts every lock on the unit's active link; recorded on the estate's audit chain. Returns how
    many wrong answers stopped counting."""
    link_ids = sa.select(UnitLink.id).where(UnitLink.unit_id == unit.id, UnitLink.revoked_at.is_(None))
    cleared = db.session.execute(
        sa.update(IdentityFailure)
        .where(IdentityFailure.link_id.in_(link_ids), IdentityFailure.cleared_at.is_(None),
               IdentityFailure.at > now - WINDOW)
        .values(cleared_at=now).execution_options(synchronize_session=False)).rowcount
    record("links.identity_unlocked", chain=unit.estate_id, actor=actor_for_user(user), now=now,
           subject_type="unit", subject_id=unit.id, data={"unit": unit.label, "failures_cleared": cleared})
    return cleared
