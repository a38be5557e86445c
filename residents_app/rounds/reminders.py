"""Reminders of a round (through the outbox, templates in notify/templates.py): every unit on the roll when the
round opens, and the units that have not voted 48 and 24 hours before it closes."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.notify.models import OutboxMessage
from residents_app.notify.outbox import queue
from residents_app.notify.templates import render
from residents_app.registry.models import Estate
from residents_app.rounds.models import CurrentBallot, RollEntry, Round

# template -> the part of the dedupe key (the 24-hour key predates the others and stays as it was)
CLOSING = {"round_closing_24h": "closing", "round_closing_48h": "closing48"}


def _open_round_locked(round_id: int, now: datetime) -> Round | None:
    rnd = db.session.execute(sa.select(Round).where(Round.id == round_id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if rnd is None or rnd.status != "open" or now >= rnd.closes_at:
        return None
    return rnd


def _queued_units(prefix: str) -> set[int]:
    return set(db.session.execute(sa.select(OutboxMessage.unit_id).where(
        OutboxMessage.dedupe_key.like(prefix + "%"))).scalars())


def queue_closing_reminder(round_id: int, now: datetime, template: str = "round_closing_24h") -> bool:
    """Queue, once per unit, a reminder to each unit that has not voted in a round closing soon (row locked)."""
    rnd = _open_round_locked(round_id, now)
    if rnd is None:
        return False
    prefix = f"round:{rnd.id}:{CLOSING[template]}:"
    done = _queued_units(prefix)
    missing = db.session.execute(
        sa.select(RollEntry.unit_id, RollEntry.label)
        .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                          CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == rnd.id, CurrentBallot.unit_id.is_(None))
        .order_by(RollEntry.unit_id)).all()
    estate = db.session.get(Estate, rnd.estate_id)
    queued = 0
    for unit_id, label in missing:
        if unit_id in done:
            continue
        msg = render(template, estate=estate.name, round=rnd.title, closes=format_local_dt(rnd.closes_at), unit=label)
        queue(estate_id=rnd.estate_id, unit_id=unit_id, text=msg.text, title=msg.title, now=now,
              dedupe_key=f"{prefix}{unit_id}")
        queued += 1
    return queued > 0


def queue_opening_notice(round_id: int, now: datetime) -> bool:
    """Queue, once per unit, the news that a round is open to every unit on its frozen roll (row locked)."""
    rnd = _open_round_locked(round_id, now)
    if rnd is None:
        return False
    prefix = f"round:{rnd.id}:opened:"
    done = _queued_units(prefix)
    estate = db.session.get(Estate, rnd.estate_id)
    queued = 0
    for unit_id, label in db.session.execute(sa.select(RollEntry.unit_id, RollEntry.label).where(
            RollEntry.round_id == rnd.id).order_by(RollEntry.unit_id)).all():
        if unit_id in done:
            continue
        msg = render("round_opened", estate=estate.name, round=rnd.title, closes=format_local_dt(rnd.closes_at),
                     unit=label)
        queue(estate_id=rnd.estate_id, unit_id=unit_id, text=msg.text, title=msg.title, now=now,
              dedupe_key=f"{prefix}{unit_id}")
        queued += 1
    return queued > 0
