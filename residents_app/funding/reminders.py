"""Money reminders (through the outbox, each once per unit): the pledge window closes in two days and the unit has
not signed; the settlement is final and the unit owes a top-up (多退少补)."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.formatting import format_local_dt, format_yuan
from residents_app.funding.models import Pledge, Settlement, SettlementUnitLine
from residents_app.notify.models import OutboxMessage
from residents_app.notify.outbox import queue
from residents_app.notify.templates import render
from residents_app.plans.models import PlanVersion
from residents_app.registry.models import Estate, Unit

PLEDGE_REMINDER_BEFORE = timedelta(hours=48)
SETTLEMENT_LOOK_BACK = timedelta(days=30)


def _done(keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(db.session.execute(sa.select(OutboxMessage.dedupe_key).where(
        OutboxMessage.dedupe_key.in_(keys))).scalars())


def queue_pledge_window_closing(now: datetime) -> int:
    """Units of the estate without an active pledge, when a published plan's pledge window closes within 48 h."""
    plans = db.session.execute(sa.select(PlanVersion).where(
        PlanVersion.status == "published", PlanVersion.pledge_closed_at.is_(None),
        PlanVersion.pledge_closes_at > now, PlanVersion.pledge_closes_at <= now + PLEDGE_REMINDER_BEFORE)
        .order_by(PlanVersion.pledge_closes_at, PlanVersion.id)).scalars().all()
    queued = 0
    for plan in plans:
        if plan.pledge_opens_at is not None and plan.pledge_opens_at > now:
            continue
        estate = db.session.get(Estate, plan.estate_id)
        pledged = set(db.session.execute(sa.select(Pledge.unit_id).where(
            Pledge.plan_version_id == plan.id, Pledge.withdrawn_at.is_(None))).scalars())
        units = [u for u in db.session.execute(sa.select(Unit).where(Unit.estate_id == plan.estate_id)
                                               .order_by(Unit.id)).scalars() if u.id not in pledged]
        keys = {u.id: f"plan:{plan.id}:pledge_closing:{u.id}" for u in units}
        done = _done(list(keys.values()))
        for unit in units:
            if keys[unit.id] in done:
                continue
            msg = render("pledge_window_closing", estate=estate.name, plan=plan.title, unit=unit.label,
                         closes=format_local_dt(plan.pledge_closes_at))
            queue(estate_id=plan.estate_id, unit_id=unit.id, text=msg.text, title=msg.title, now=now,
                  dedupe_key=keys[unit.id])
            queued += 1
    return queued


def queue_settlement_due(now: datetime) -> int:
    """Units that owe a top-up on a settlement finalised in the last 30 days."""
    rows = db.session.execute(
        sa.select(SettlementUnitLine, Settlement, PlanVersion, Unit)
        .join(Settlement, Settlement.id == SettlementUnitLine.settlement_id)
        .join(PlanVersion, PlanVersion.id == Settlement.plan_version_id)
        .join(Unit, Unit.id == SettlementUnitLine.unit_id)
        .where(Settlement.finalised_at.is_not(None), Settlement.finalised_at <= now,
               Settlement.finalised_at > now - SETTLEMENT_LOOK_BACK, SettlementUnitLine.difference_fen > 0)
        .order_by(Settlement.id, SettlementUnitLine.unit_id)).all()
    keys = [f"settlement:{r[1].id}:due:{r[3].id}" for r in rows]
    done = _done(keys)
    queued = 0
    for (line, _settlement, plan, unit), key in zip(rows, keys, strict=True):
        if key in done:
            continue
        estate = db.session.get(Estate, plan.estate_id)
        msg = render("settlement_due", estate=estate.name, plan=plan.title, unit=unit.label,
                     amount=format_yuan(line.difference_fen))
        queue(estate_id=plan.estate_id, unit_id=unit.id, text=msg.text, title=msg.title, now=now, dedupe_key=key)
        queued += 1
    return queued
