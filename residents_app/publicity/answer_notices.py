"""Tell the owner who raised an objection that it has been answered (through the outbox, once per objection)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.notify.models import OutboxMessage
from residents_app.notify.outbox import queue
from residents_app.notify.templates import render
from residents_app.publicity.models import Objection, Publicity
from residents_app.registry.models import Estate, Unit

# Answers older than this (a long outage, or the feature deployed later) are not announced any more.
LOOK_BACK = timedelta(days=7)


def _key(objection_id: int) -> str:
    return f"objection:{objection_id}:answered"


def queue_objection_answers(now: datetime) -> int:
    """Queue a message for every objection answered (or upheld) in the last week and not yet announced."""
    rows = db.session.execute(
        sa.select(Objection, Publicity.title, Estate.name, Unit)
        .join(Publicity, Publicity.id == Objection.publicity_id).join(Estate, Estate.id == Objection.estate_id)
        .join(Unit, Unit.id == Objection.unit_id)
        .where(Objection.status.in_(("answered", "upheld")), Objection.resolved_at.is_not(None),
               Objection.resolved_at > now - LOOK_BACK, Objection.resolved_at <= now)
        .order_by(Objection.resolved_at, Objection.id)).all()
    if not rows:
        return 0
    done = set(db.session.execute(sa.select(OutboxMessage.dedupe_key).where(
        OutboxMessage.dedupe_key.in_([_key(r[0].id) for r in rows]))).scalars())
    queued = 0
    for objection, title, estate_name, unit in rows:
        if _key(objection.id) in done:
            continue
        msg = render("objection_answered", estate=estate_name, unit=unit.label, title=title,
                     answer=objection.answer or "请查看公示页面")
        queue(estate_id=objection.estate_id, unit_id=objection.unit_id, text=msg.text, title=msg.title, now=now,
              dedupe_key=_key(objection.id))
        queued += 1
    return queued
