"""Append-only, hash-chained event log (one chain per estate; chain 0 for system events)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    chain: Mapped[int] = mapped_column(sa.Integer, index=True)  # estate id, 0 = system
    seq: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(60), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(120))  # "user:3", "unit:17/owner:5", "system:scheduler"
    subject_type: Mapped[str] = mapped_column(sa.String(40), default="")
    subject_id: Mapped[str] = mapped_column(sa.String(40), default="")
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
