"""Scheduler bookkeeping: one row per job run."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db


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
