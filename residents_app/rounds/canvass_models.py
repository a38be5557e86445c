"""A committee member's attempt to reach a unit that has not voted (rounds/canvass.py)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db

CONTACT_KINDS = ("visit", "call", "message")
CONTACT_KIND_LABELS = {"visit": "上门", "call": "电话", "message": "留言/短信"}


class CanvassContact(db.Model):
    __tablename__ = "canvass_contact"
    __table_args__ = (
        sa.CheckConstraint("kind in ('visit', 'call', 'message')", name="kind_known"),
        sa.Index("ix_canvass_contact_round_id_unit_id", "round_id", "unit_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(sa.ForeignKey("round.id"))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    note: Mapped[str] = mapped_column(sa.String(300), default="")
    actor: Mapped[str] = mapped_column(sa.String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime)

    @property
    def kind_label(self) -> str:
        return CONTACT_KIND_LABELS[self.kind]
