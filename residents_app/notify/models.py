"""The outbox: messages to residents, queued by the features and sent by the scheduler's send job."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db

OUTBOX_STATES = ("pending", "sent", "failed")
CHANNELS = ("log", "sms", "wechat")


class OutboxMessage(db.Model):
    """A message to one unit, queued in the transaction that decided it and sent by the send job."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.CheckConstraint("state in ('pending', 'sent', 'failed')", name="state_known"),
        sa.Index("ix_outbox_message_state_id", "state", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20), default="log")
    text: Mapped[str] = mapped_column(sa.Text)
    # Makes queuing idempotent: the same reminder is never queued twice.
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
