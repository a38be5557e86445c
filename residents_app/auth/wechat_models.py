"""A WeChat openid bound to an owner and a unit after the owner's identity check (auth/wechat.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.extensions import db
from residents_app.registry.models import Owner, Unit


class WechatBinding(db.Model):
    """One openid may hold several units (an owner of two flats, a family member helping); unbinding deletes the
    row, the audit chain keeps the history."""

    __tablename__ = "wechat_binding"
    __table_args__ = (sa.UniqueConstraint("openid", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(sa.String(64), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unit: Mapped[Unit] = relationship()
    owner: Mapped[Owner] = relationship()
