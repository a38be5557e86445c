"""Scheduler bookkeeping: one row per job run, and the outbox of messages to residents."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db

OUTBOX_STATES = ("pending", "sent", "failed")
CHANNELS = ("log", "sms", "wechat")


class JobRun(db.Model):
    """A run of a scheduler job: the `now` it ran for, what it did, and who ran it."""

    __tablename__ = "job_run"
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(sa.String(40), index=True)
    now: Mapped[datetime] = mapped_column(UTCDateTime)  # the time the job acted for
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(20))  # ok / skipped / error
    actions: Mapped[list] = mapped_column(sa.JSON, default=list)
    summary: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    worker: Mapped[str] = mapped_column(sa.String(80), default="")


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
