"""Owed amounts per unit, saved when a plan version is published (issue 19).

`unit_owed` holds, per published plan version and unit, what funding.services.compute_plan gives for the unit:
its share before hardship, the hardship cover, the funding-source offsets and what its residents owe. The rows
are written in the transaction that publishes the version (plans.services.PUBLISH_HOOKS), and rewritten for the
version in force by the commit that changes what they depend on after publication: a hardship treatment, a
funding source, a unit's area or building, a street office's contribution rule, or the result of a round a
funding source relies on. Until that commit (estate touched in this transaction) or without rows (data older
than the table), readers compute live, so every figure is the same as a recomputation.

Registered with audit.verify.EXTRA_CHECKS: `flask audit verify` recomputes each version in force and names
every unit whose saved amounts differ.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from residents_app.audit.verify import Problem, register_check
from residents_app.core.money import MoneyError
from residents_app.errors import DomainError
from residents_app.extensions import db
from residents_app.plans import services as plan_svc

_DIRTY = "unit_owed_dirty"
FIELDS = ("share_fen", "covered_fen", "offset_fen", "owed_fen")
FIELD_LABELS = {"share_fen": "应摊", "covered_fen": "困难户减免", "offset_fen": "资金来源抵扣", "owed_fen": "应缴"}


class UnitOwed(db.Model):
    __tablename__ = "unit_owed"
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id", ondelete="CASCADE"),
                                                 primary_key=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)
    share_fen: Mapped[int] = mapped_column(sa.BigInteger)  # before hardship
    covered_fen: Mapped[int] = mapped_column(sa.BigInteger)  # hardship cover
    offset_fen: Mapped[int] = mapped_column(sa.BigInteger)  # funding sources
    owed_fen: Mapped[int] = mapped_column(sa.BigInteger)  # what the residents of the unit pay


def rows_of(plan_version_id: int, contributions) -> list[dict]:
    return [{"plan_version_id": plan_version_id, "unit_id": key,
             **{f: int(getattr(out, f)) for f in FIELDS}} for key, out in contributions.units.items()]


def save(plan, contributions, *, session: Session | None = None) -> None:
    """Replace the saved amounts of this version with `contributions` (its compute_plan)."""
    session = session or db.session
    session.execute(sa.delete(UnitOwed).where(UnitOwed.plan_version_id == plan.id))
    rows = rows_of(plan.id, contributions)
    if rows:
        session.execute(sa.insert(UnitOwed), rows)


def _on_publish(plan, contributions) -> None:
    save(plan, contributions)


if _on_publish not in plan_svc.PUBLISH_HOOKS:
    plan_svc.PUBLISH_HOOKS.append(_on_publish)


def saved(plan) -> dict[int, UnitOwed] | None:
    """The saved rows of this version by unit id; None when they cannot be trusted now (none saved, or the
    estate changed in this transaction and the commit has not rewritten them yet)."""
    rows = list(db.session.execute(sa.select(UnitOwed).where(UnitOwed.plan_version_id == plan.id)).scalars())
    if not rows or plan.estate_id in db.session.info.get(_DIRTY, ()):
        return None
    return {r.unit_id: r for r in rows}


def owed_by_unit(plan) -> dict[int, int]:
    """{unit id: owed fen} of this version: the saved amounts, or computed live when there are none."""
    # columns only, the query first (it flushes pending changes, which may mark the estate as changed)
    rows = dict(db.session.execute(sa.select(UnitOwed.unit_id, UnitOwed.owed_fen)
                                   .where(UnitOwed.plan_version_id == plan.id)).all())
    if rows and plan.estate_id not in db.session.info.get(_DIRTY, ()):
        return rows
    from residents_app.funding.services import compute_plan

    return {k: u.owed_fen for k, u in compute_plan(plan).units.items()}


def owed_of_unit(plan, unit_id: int) -> int:
    """One unit's owed fen (a pledge, the resident API): its saved row, or computed live as owed_by_unit."""
    # the query first: it flushes pending changes, which may mark the estate as changed
    value = db.session.execute(sa.select(UnitOwed.owed_fen).where(
        UnitOwed.plan_version_id == plan.id, UnitOwed.unit_id == unit_id)).scalar_one_or_none()
    if value is not None and plan.estate_id not in db.session.info.get(_DIRTY, ()):
        return value
    from residents_app.funding.services import compute_plan

    out = compute_plan(plan).units.get(unit_id)
    return out.owed_fen if out is not None else 0


# ---- kept up to date: the commit that changes an input rewrites the version in force -------------------------


def _changed(obj, *names: str) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[n].history.has_changes() for n in names)


def _estates_of(session: Session, obj) -> set[int]:
    from residents_app.funding.account_models import FundingSource
    from residents_app.funding.models import ContributionRule, HardshipTreatment
    from residents_app.registry.models import Estate, Unit
    from residents_app.rounds.models import RoundResult

    if isinstance(obj, (HardshipTreatment, FundingSource)):
        return {obj.estate_id} if obj.estate_id is not None else set()
    if isinstance(obj, Unit):
        state = sa.inspect(obj)
        if state.persistent and not state.deleted and not _changed(obj, "title_area_m2", "building_id",
                                                                   "estate_id"):
            return set()
        hist = state.attrs["estate_id"].history
        return {e for e in (obj.estate_id, *hist.deleted) if e is not None}
    if isinstance(obj, ContributionRule) and obj.street_office_id is not None:
        with session.no_autoflush:
            return set(session.execute(
                sa.select(Estate.id).where(Estate.street_office_id == obj.street_office_id)).scalars())
    if isinstance(obj, RoundResult):
        with session.no_autoflush:
            return set(session.execute(
                sa.select(FundingSource.estate_id).where(FundingSource.decision_round_id == obj.round_id)).scalars())
    return set()


@event.listens_for(Session, "after_flush")
def _collect(session: Session, flush_context) -> None:
    touched = set()
    for obj in (*session.new, *session.dirty, *session.deleted):
        touched |= _estates_of(session, obj)
    if touched:
        session.info.setdefault(_DIRTY, set()).update(touched)


@event.listens_for(Session, "before_commit")
def _refresh(session: Session) -> None:
    # before_commit runs before the commit's own flush: flush now, so that changes still pending are counted
    session.flush()
    touched = session.info.get(_DIRTY)
    if touched:
        refresh(sorted(touched), session=session)
    session.info.pop(_DIRTY, None)


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    session.info.pop(_DIRTY, None)


def _in_force(estate_ids: list[int] | None, session: Session):
    from residents_app.plans.models import PlanVersion

    q = sa.select(PlanVersion).where(PlanVersion.status == "published").order_by(PlanVersion.estate_id,
                                                                                   PlanVersion.number)
    if estate_ids is not None:
        q = q.where(PlanVersion.estate_id.in_(estate_ids))
    by_estate = {}
    for plan in session.execute(q).scalars():
        by_estate[plan.estate_id] = plan  # the highest number wins, as plans.services.current_plan
    return list(by_estate.values())


def refresh(estate_ids: list[int], *, session: Session | None = None) -> None:
    """Recompute and save the amounts of these estates' versions in force (in the caller's transaction)."""
    from residents_app.funding.services import compute_plan

    session = session or db.session
    for plan in _in_force(estate_ids, session):
        try:
            c = compute_plan(plan)
        except (DomainError, MoneyError):
            # the money does not compute any more (the register changed under it): no rows, readers compute live
            session.execute(sa.delete(UnitOwed).where(UnitOwed.plan_version_id == plan.id))
            continue
        save(plan, c, session=session)
    session.flush()


def backfill(session: Session) -> int:
    """Save the amounts of every version in force (the migration's back-fill); returns how many rows."""
    from residents_app.funding.services import compute_plan

    n = 0
    for plan in _in_force(None, session):
        try:
            c = compute_plan(plan)
        except (DomainError, MoneyError):
            continue
        save(plan, c, session=session)
        n += len(c.units)
    session.flush()
    return n


# ---- the check run by `flask audit verify` --------------------------------------------------------------------


def check_plan(plan) -> list[Problem]:
    """One version's saved amounts against a recomputation; [] when every unit agrees."""
    from residents_app.funding.services import compute_plan
    from residents_app.registry.models import Building, Unit

    subject = f"方案第 {plan.number} 版（#{plan.id}）各户应缴金额"
    problems: list[Problem] = []

    def problem(code: str, message: str) -> None:
        problems.append(Problem(chain=plan.estate_id, subject=subject, code=code, message=message))

    try:
        c = compute_plan(plan)
    except (DomainError, MoneyError) as exc:
        problem("owed_not_computable", f"无法重算：{exc}")
        return problems
    rows = {r.unit_id: r for r in db.session.execute(
        sa.select(UnitOwed).where(UnitOwed.plan_version_id == plan.id)).scalars()}
    if not rows:
        if c.units:
            problem("owed_not_saved", f"没有保存各户金额（重算共 {len(c.units)} 户）")
        return problems
    labels = dict(db.session.execute(
        sa.select(Unit.id, Building.name + "-" + Unit.number).join(Building)
        .where(Unit.id.in_(set(rows) | set(c.units)))).all())

    def label(unit_id: int) -> str:
        return f"房屋 {labels.get(unit_id, f'#{unit_id}')}（#{unit_id}）"

    for unit_id, out in c.units.items():
        row = rows.get(unit_id)
        if row is None:
            problem("owed_missing_unit", f"{label(unit_id)} 没有保存金额，重算应缴 {out.owed_fen} 分")
            continue
        for f in FIELDS:
            if getattr(row, f) != int(getattr(out, f)):
                problem("owed_mismatch", f"{label(unit_id)} {FIELD_LABELS[f]}保存为 {getattr(row, f)} 分，"
                                         f"重算为 {int(getattr(out, f))} 分")
    for unit_id in sorted(set(rows) - set(c.units)):
        problem("owed_extra_unit", f"{label(unit_id)} 不在本小区，却保存了应缴 {rows[unit_id].owed_fen} 分")
    return problems


@register_check
def check_saved_owed(estate_ids: list[int] | None) -> list[Problem]:
    """Each version in force (of `estate_ids`, or of all estates): saved amounts against a recomputation."""
    problems: list[Problem] = []
    for plan in _in_force(estate_ids, db.session):
        problems.extend(check_plan(plan))
    return problems
