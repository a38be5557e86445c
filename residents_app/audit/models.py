"""Append-only, hash-chained event log (one chain per estate; chain 0 for system events)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from residents_app.db import UTCDateTime
from residents_app.extensions import db


class AuditEvent(db.Model):
    __tablename__ = "audit_event"
    __table_args__ = (sa.UniqueConstraint("chain", "seq"),
                      sa.Index("ix_audit_event_subject", "subject_type", "subject_id"))
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


class AuditPending(db.Model):
    """An event written by a hot path (an online ballot) in its own transaction, not yet on its chain.

    The sealer (audit.services.seal_chain) moves pending events onto their estate's chain in id order, in
    batches: the casting transaction never waits for the chain's lock, so casts commit in parallel. Its
    content is what the sealed AuditEvent hashes; UPDATE is refused by a trigger, DELETE only happens when
    the sealer moves the row (same transaction as the chain insert).
    """

    __tablename__ = "audit_pending"
    id: Mapped[int] = mapped_column(primary_key=True)
    # No index: the table holds only what the sealers have not moved yet (a few rows), and every index would
    # cost each cast an insert and each sealing a delete.
    chain: Mapped[int] = mapped_column(sa.Integer)
    kind: Mapped[str] = mapped_column(sa.String(60))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(sa.String(120))
    subject_type: Mapped[str] = mapped_column(sa.String(40), default="")
    subject_id: Mapped[str] = mapped_column(sa.String(40), default="")
    data: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class AuditCheckpoint(db.Model):
    """The last point up to which a chain was verified in full (issue 19 item 4): one row per chain.

    Written when a full walk found the chain intact (a street office's sign-off, `flask audit verify`); the
    verification desk then checks this entry (still there, same hash, hash recomputes) and walks only what
    came after it, instead of the whole chain on every view. `flask audit verify` always walks from genesis.
    """

    __tablename__ = "audit_checkpoint"
    chain: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(sa.Integer)
    hash: Mapped[str] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime] = mapped_column(UTCDateTime)
    verified_by: Mapped[str] = mapped_column(sa.String(120))
