"""Reminders of a round: the units that have not voted are told before it closes (through the outbox)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.notify.models import OutboxMessage
from residents_app.notify.outbox import queue
from residents_app.registry.models import Estate
from residents_app.rounds.models import CurrentBallot, RollEntry, Round


def queue_closing_reminder(round_id: int, now: datetime) -> bool:
    """Queue, once per unit, a reminder to each unit that has not voted in a round closing soon (row locked)."""
    rnd = db.session.execute(sa.select(Round).where(Round.id == round_id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one_or_none()
    if rnd is None or rnd.status != "open" or now >= rnd.closes_at:
        return False
    prefix = f"round:{rnd.id}:closing:"
    done = set(db.session.execute(sa.select(OutboxMessage.unit_id).where(
        OutboxMessage.dedupe_key.like(prefix + "%"))).scalars())
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
        text = (f"【{estate.name}】“{rnd.title}”将于 {format_local_dt(rnd.closes_at)} 截止，"
                f"您家（{label}）尚未表决。请扫描本户二维码参与，逾期不能再投。")
        queue(estate_id=rnd.estate_id, unit_id=unit_id, text=text, now=now, dedupe_key=f"{prefix}{unit_id}")
        queued += 1
    return queued > 0
