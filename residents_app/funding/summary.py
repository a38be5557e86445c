"""Per-estate funding summary rows (issue 19): what the district view reads instead of computing every plan.

`estate_funding` holds, per estate, the figures of funding.services.funding_summary on the version in force
(owed, counted = min(paid, owed) per unit, paid, units still owing). They are refreshed in the transaction that
changes what they depend on: before each commit, the estates touched by the flushed payments, hardship
treatments, plan versions, units or contribution rules (of a street office: all its estates) are recomputed.
An estate without a row (data older than the table, or changed and not yet committed) is computed live by the
reader and the row written by the next commit that touches it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from residents_app.core.money import MoneyError
from residents_app.db import UTCDateTime, ids_in, utcnow
from residents_app.errors import DomainError
from residents_app.extensions import db

_DIRTY = "funding_summary_dirty"


class EstateFunding(db.Model):
    __tablename__ = "estate_funding"
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), primary_key=True)
    plan_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plan_version.id"))
    owed_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    counted_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    owing_units: Mapped[int] = mapped_column(sa.Integer, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _estates_of(session: Session, obj) -> set[int]:
    from residents_app.funding.models import ContributionRule, HardshipTreatment, Payment
    from residents_app.plans.models import PlanVersion
    from residents_app.registry.models import Estate, Unit

    if isinstance(obj, (Payment, HardshipTreatment, PlanVersion, Unit)):
        return {obj.estate_id} if obj.estate_id is not None else set()
    if isinstance(obj, ContributionRule) and obj.street_office_id is not None:
        with session.no_autoflush:
            return set(session.execute(
                sa.select(Estate.id).where(Estate.street_office_id == obj.street_office_id)).scalars())
    return set()


@event.listens_for(Session, "after_flush")
def _collect(session: Session, flush_context) -> None:
    touched: set[int] = session.info.setdefault(_DIRTY, set())
    for obj in (*session.new, *session.dirty, *session.deleted):
        touched |= _estates_of(session, obj)


@event.listens_for(Session, "before_commit")
def _refresh(session: Session) -> None:
    session.flush()  # before_commit runs before the commit's own flush: count the changes still pending
    touched = session.info.pop(_DIRTY, None)
    if touched:
        refresh(sorted(touched), session=session)
        session.info.pop(_DIRTY, None)


def refresh(estate_ids: list[int], *, session: Session | None = None, now: datetime | None = None) -> None:
    """Recompute and store the summary rows of these estates (in the caller's transaction)."""
    from residents_app.funding.services import funding_summary

    session = session or db.session
    # Only estates with a plan in force have figures (the reader ignores the others' rows, and their plan's id
    # tells a row written for an earlier version).
    estate_ids = sorted(plans_in_force(estate_ids, session=session))
    rows = []
    for estate_id in estate_ids:
        try:
            s = funding_summary(estate_id)
        except (DomainError, MoneyError):
            # The plan's money does not compute any more (e.g. the register changed under it): no stored row, so
            # the district view asks again live; the change that caused it is not refused for this.
            continue
        rows.append({"estate_id": estate_id, "plan_version_id": s["plan_version_id"], "owed_fen": s["owed_fen"],
                     "counted_fen": s["counted_fen"], "paid_fen": s["paid_fen"], "owing_units": s["owing_units"],
                     "refreshed_at": now or utcnow()})
    if not estate_ids:
        return
    session.execute(sa.delete(EstateFunding).where(EstateFunding.estate_id.in_(estate_ids)))
    if rows:
        session.execute(sa.insert(EstateFunding), rows)
    session.flush()


def stored(estate_ids: list[int]) -> dict[int, EstateFunding]:
    """The stored rows of these estates, in one query."""
    if not estate_ids:
        return {}
    return {r.estate_id: r for r in db.session.execute(
        sa.select(EstateFunding).where(ids_in(db.session, EstateFunding.estate_id, estate_ids))).scalars()}


def touched() -> set[int]:
    """Estates whose stored row is out of date in this session: changes flushed and not committed yet (their row is
    refreshed by the commit)."""
    return set(db.session.info.get(_DIRTY, ()))


def plans_in_force(estate_ids: list[int], *, session: Session | None = None) -> dict[int, int]:
    """{estate id: the id of its published plan version} for those of these estates that have one."""
    from residents_app.plans.models import PlanVersion

    if not estate_ids:
        return {}
    out: dict[int, int] = {}
    for estate_id, version_id in (session or db.session).execute(
            sa.select(PlanVersion.estate_id, PlanVersion.id).where(
                ids_in(session or db.session, PlanVersion.estate_id, estate_ids), PlanVersion.status == "published")
            .order_by(PlanVersion.estate_id, PlanVersion.number)):
        out[estate_id] = version_id  # the highest number wins, as plans.services.current_plan
    return out


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_DIRTY, None)
