"""The outbox: messages to residents, queued by the features and sent by the scheduler's send job."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db

# pending: waiting (maybe until `next_attempt_at`); sent: at least one of the unit's recipients accepted it;
# failed: every recipient refused it for good, or MAX_ATTEMPTS transient failures; skipped: nobody to send it to
# (no bound WeChat, every owner opted out): the unit needs a visit.
OUTBOX_STATES = ("pending", "sent", "failed", "skipped")
CHANNELS = ("log", "sms", "wechat")
OPT_OUT_CHANNELS = ("sms", "wechat", "all")


class OutboxMessage(db.Model):
    """A message to one unit, queued in the transaction that decided it and sent by the send job."""

    __tablename__ = "outbox_message"
    __table_args__ = (
        sa.CheckConstraint("state in ('pending', 'sent', 'failed', 'skipped')", name="state_known"),
        sa.Index("ix_outbox_message_state_id", "state", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20), default="log")
    # A short subject (WeChat subscribe messages show at most 20 characters of a `thing` field).
    title: Mapped[str] = mapped_column(sa.String(60), default="")
    text: Mapped[str] = mapped_column(sa.Text)
    # Makes queuing idempotent: the same reminder is never queued twice.
    dedupe_key: Mapped[str] = mapped_column(sa.String(120), unique=True)
    state: Mapped[str] = mapped_column(sa.String(20), default="pending")
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_error: Mapped[str] = mapped_column(sa.Text, default="")
    error_code: Mapped[str] = mapped_column(sa.String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Not sent before this time: quiet hours (21:00-08:00 Beijing), the backoff after a failure, the daily cap.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OutboxDelivery(db.Model):
    """One recipient of a message (a phone or a WeChat openid) and what the provider answered; a retry skips the
    recipients already reached."""

    __tablename__ = "outbox_delivery"
    __table_args__ = (
        sa.UniqueConstraint("message_id", "channel", "recipient"),
        sa.CheckConstraint("state in ('sent', 'failed', 'retry')", name="state_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(sa.ForeignKey("outbox_message.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    recipient: Mapped[str] = mapped_column(sa.String(64))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("owner.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(sa.String(20))
    provider_ref: Mapped[str] = mapped_column(sa.String(80), default="")
    error_code: Mapped[str] = mapped_column(sa.String(80), default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class NotifyOptOut(db.Model):
    """An owner who asked not to be messaged on a channel ('all': on none)."""

    __tablename__ = "notify_opt_out"
    __table_args__ = (
        sa.UniqueConstraint("owner_id", "channel"),
        sa.CheckConstraint("channel in ('sms', 'wechat', 'all')", name="channel_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(sa.String(20))
    source: Mapped[str] = mapped_column(sa.String(40), default="resident")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
