"""Accounts: administrator, street office staff, owners' committee members; failed sign-in attempts."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from residents_app.db import UTCDateTime, utcnow
from residents_app.extensions import db
from residents_app.registry.models import Estate, StreetOffice

# "party": an external party of one project (builder, contractor, ...), limited to that project's estate.
# "bureau": a city or district housing bureau (区住建局), read-only over every street office of its district
# (StreetOffice.district == User.district, the name as the register writes it).
ROLES = ("admin", "street", "committee", "party", "bureau")
ROLE_LABELS = {"admin": "系统管理员", "street": "街道", "committee": "业委会", "party": "参建单位",
               "bureau": "区住建局"}


class User(UserMixin, db.Model):
    __tablename__ = "app_user"
    __table_args__ = (
        sa.CheckConstraint("role in ('admin', 'street', 'committee', 'party', 'bureau')", name="role_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(60), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(60), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(20))
    street_office_id: Mapped[int | None] = mapped_column(sa.ForeignKey("street_office.id"))
    estate_id: Mapped[int | None] = mapped_column(sa.ForeignKey("estate.id"))
    # Role bureau: the district it oversees (every street office whose district is this name); "" otherwise.
    district: Mapped[str] = mapped_column(sa.String(100), default="", server_default="")
    active: Mapped[bool] = mapped_column(default=True)
    # Part of every session of this account (get_id); bumping it ends them all: logout, a new password,
    # deactivation. A copied session cookie is then refused (the user loader compares it).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    street_office: Mapped[StreetOffice | None] = relationship()
    estate: Mapped[Estate | None] = relationship()

    def set_password(self, password: str) -> None:
        """Store the hash (the policy is checked by the services); a changed password ends every session."""
        if self.password_hash:
            self.end_sessions()
        self.password_hash = generate_password_hash(password)

    def end_sessions(self) -> None:
        self.session_version = (self.session_version or 0) + 1

    def deactivate(self) -> None:
        self.active = False
        self.end_sessions()

    def get_id(self) -> str:  # Flask-Login: what the session keeps
        return f"{self.id}:{self.session_version or 0}"

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.active

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]


class LoginFailure(db.Model):
    """A failed staff sign-in, by the username typed (known or not: a lock does not tell which names exist)."""

    __tablename__ = "login_failure"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(60), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    remote_addr: Mapped[str] = mapped_column(sa.String(64), default="")
    # Set when the lock is lifted (a successful sign-in, an administrator's unlock): the row no longer counts.
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class IdentityFailure(db.Model):
    """A failed identity confirmation on a unit link (the token itself is never stored).

    Counted per link and client (auth/identity.py), so whoever holds a unit's link locks out only themselves."""

    __tablename__ = "identity_failure"
    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("unit_link.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    remote_addr: Mapped[str] = mapped_column(sa.String(64), default="")
    # SHA-256 of the address, the User-Agent and the device cookie; never the raw cookie.
    client_key: Mapped[str] = mapped_column(sa.String(64), default="", server_default="")
    # Set when the committee unlocks the link: the row no longer counts.
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
