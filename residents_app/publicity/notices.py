"""Notices of a publicity: every unit is told when a period starts (through the outbox)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.notify.outbox import queue
from residents_app.notify.templates import render
from residents_app.publicity.models import Publicity
from residents_app.publicity.services import period_text
from residents_app.registry.models import Estate, Unit


def queue_posting_notice(publicity_id: int, now: datetime) -> bool:
    """Queue, once, a notice to every unit of the estate that a publicity has started (row locked)."""
    pub = db.session.execute(sa.select(Publicity).where(Publicity.id == publicity_id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if pub is None or pub.started_notice_queued or pub.is_completed:
        return False
    estate = db.session.get(Estate, pub.estate_id)
    msg = render("publicity_posted", estate=estate.name, title=pub.title, period=period_text(pub),
                 last_day=f"{pub.last_day:%Y-%m-%d}")
    unit_ids = db.session.execute(sa.select(Unit.id).where(Unit.estate_id == pub.estate_id)
                                  .order_by(Unit.id)).scalars().all()
    for uid in unit_ids:
        queue(estate_id=pub.estate_id, unit_id=uid, text=msg.text, title=msg.title, now=now,
              dedupe_key=f"publicity:{pub.id}:posted:{pub.posted_on.isoformat()}:unit:{uid}")
    pub.started_notice_queued = True
    db.session.flush()
    return True
