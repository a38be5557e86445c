"""Owed amounts per unit, saved when a plan version is published (issue 19).

`unit_owed` holds, per published plan version and unit, what funding.services.compute_plan gives for the unit:
its share before hardship, the hardship cover, the funding-source offsets and what its residents owe. The rows
are written in the transaction that publishes the version (plans.services.PUBLISH_HOOKS), and rewritten for the
version in force by the commit that changes what they depend on after publication: a hardship treatment, a
funding source, a unit's area or building, a street office's contribution rule, or the result of a round a
funding source relies on. Until that commit (estate touched in this transaction) or without rows (data older
than the table), readers compute live, so every figure is the same as a recomputation.

Besides the four amounts, each row keeps the unit's detail (`detail`: its share of each item, its offsets, the
match, who covers its hardship, its place in the estate's order) and `plan_owed` keeps the version's figures
(each item's split, the cap, the totals), so `contributions_of` gives what compute_plan gives, for every unit or
for the few asked for, without computing the whole estate: a unit's statement, the exports, the start checklist
and the works documents read it.

Registered with audit.verify.EXTRA_CHECKS: `flask audit verify` recomputes each version in force and names
every unit whose saved amounts differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from residents_app.audit.verify import Problem, register_check
from residents_app.core.money import Contributions, ItemOut, MoneyError, UnitLine, UnitOut
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
    # the rest of the unit's UnitOut (see _unit_detail); None in rows saved before it was kept: readers go live
    detail: Mapped[dict | None] = mapped_column(sa.JSON, nullable=True)


class PlanOwed(db.Model):
    """The figures of a version that are not per unit (each item's split, the cap, the totals), see _figures."""

    __tablename__ = "plan_owed"
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id", ondelete="CASCADE"),
                                                 primary_key=True)
    figures: Mapped[dict] = mapped_column(sa.JSON)


# ---- a Contributions as JSON and back (exact: integers stay integers, m² are Decimal strings) ------------------

_TOTALS = ("total_cost_fen", "subsidy_before_cap_fen", "cap_fen", "excess_fen", "resident_total_fen",
           "subsidy_total_fen", "covered_total_fen", "owed_total_fen", "offset_total_fen", "rule_kind")


def _unit_detail(out: UnitOut, pos: int) -> dict:
    return {"pos": pos, "area": str(out.area_m2), "matched": out.matched_fen, "covered_by": out.covered_by,
            "mode": out.hardship_mode, "lines": [[ln.item_key, ln.share_fen, ln.matched_fen] for ln in out.lines],
            "offsets": [[k, v] for k, v in out.offsets.items()]}


def _figures(c: Contributions) -> dict:
    items = [{k: str(v) if isinstance(v, Decimal) else v for k, v in dataclasses.asdict(i).items()}
             for i in c.items]
    return {"items": items, "units": len(c.units), "estate_area_m2": str(c.estate_area_m2),
            **{k: getattr(c, k) for k in _TOTALS},
            "offsets_used": [[k, v] for k, v in c.offsets_used.items()],
            "offsets_unused": [[k, v] for k, v in c.offsets_unused.items()]}


def _unit_out(unit_id: int, row, scope_area: dict) -> UnitOut:
    d = row.detail
    area = Decimal(d["area"])
    return UnitOut(key=unit_id, area_m2=area,
                   lines=[UnitLine(k, share, area, scope_area[k], matched) for k, share, matched in d["lines"]],
                   share_fen=row.share_fen, covered_fen=row.covered_fen, covered_by=d["covered_by"],
                   hardship_mode=d["mode"], owed_fen=row.owed_fen, offset_fen=row.offset_fen,
                   offsets={k: v for k, v in d["offsets"]}, matched_fen=d["matched"])


def _contributions(figures: dict, rows: list) -> Contributions:
    items = [ItemOut(**{**i, "scope_area_m2": Decimal(i["scope_area_m2"])}) for i in figures["items"]]
    scope_area = {i.key: i.scope_area_m2 for i in items}
    rows = sorted(rows, key=lambda r: r.detail["pos"])
    return Contributions(items=items, units={r.unit_id: _unit_out(r.unit_id, r, scope_area) for r in rows},
                         estate_area_m2=Decimal(figures["estate_area_m2"]), **{k: figures[k] for k in _TOTALS},
                         offsets_used={k: v for k, v in figures["offsets_used"]},
                         offsets_unused={k: v for k, v in figures["offsets_unused"]})


def rows_of(plan_version_id: int, contributions) -> list[dict]:
    return [{"plan_version_id": plan_version_id, "unit_id": key, **{f: int(getattr(out, f)) for f in FIELDS},
             "detail": _unit_detail(out, pos)} for pos, (key, out) in enumerate(contributions.units.items())]


def _forget_version(session: Session, plan_version_id: int) -> None:
    session.execute(sa.delete(UnitOwed).where(UnitOwed.plan_version_id == plan_version_id))
    session.execute(sa.delete(PlanOwed).where(PlanOwed.plan_version_id == plan_version_id))


def save(plan, contributions, *, session: Session | None = None, detail: bool = True) -> None:
    """Replace the saved amounts of this version with `contributions` (its compute_plan). `detail=False`: the four
    amounts only (the unit_owed migration's back-fill, on a schema without the detail yet)."""
    session = session or db.session
    rows = rows_of(plan.id, contributions)
    if not detail:
        amounts = sa.table("unit_owed", *(sa.column(c) for c in ("plan_version_id", "unit_id", *FIELDS)))
        session.execute(sa.delete(amounts).where(amounts.c.plan_version_id == plan.id))
        if rows:
            session.execute(sa.insert(amounts), [{k: v for k, v in r.items() if k != "detail"} for r in rows])
        return
    _forget_version(session, plan.id)
    if rows:
        session.execute(sa.insert(UnitOwed), rows)
    session.execute(sa.insert(PlanOwed), [{"plan_version_id": plan.id, "figures": _figures(contributions)}])


def _on_publish(plan, contributions) -> None:
    save(plan, contributions)


def saved(plan) -> dict[int, UnitOwed] | None:
    """The saved rows of this version by unit id; None when they cannot be trusted now (none saved, or the
    estate changed in this transaction and the commit has not rewritten them yet)."""
    rows = list(db.session.execute(sa.select(UnitOwed).where(UnitOwed.plan_version_id == plan.id)).scalars())
    if not rows or plan.estate_id in db.session.info.get(_DIRTY, ()):
        return None
    return {r.unit_id: r for r in rows}


def _trusted(plan) -> bool:
    """Saved rows may be read for this version now: it is the version in force (only that one is rewritten when
    an input changes) and its estate did not change in this transaction. Ask after a query (it flushes)."""
    return plan.status == "published" and plan.estate_id not in db.session.info.get(_DIRTY, ())


def contributions_of(plan, unit_ids: Iterable[int] | None = None) -> Contributions:
    """What compute_plan(plan) gives, read from the saved rows: with `unit_ids`, only those units are in `units`
    (a unit's statement reads one row). Computed live (every unit) when the saved figures cannot be trusted."""
    from residents_app.funding.services import compute_plan

    stored = stored_contributions(plan, unit_ids)
    return stored if stored is not None else compute_plan(plan)


def stored_contributions(plan, unit_ids: Iterable[int] | None = None) -> Contributions | None:
    """The saved figures as a Contributions (see contributions_of); None when they cannot be trusted now."""
    if plan.status != "published":
        return None  # a draft has no rows, a superseded version's are not kept up to date (_trusted): no query
    q = sa.select(UnitOwed.unit_id, *(getattr(UnitOwed, f) for f in FIELDS), UnitOwed.detail).where(
        UnitOwed.plan_version_id == plan.id)
    wanted = None
    if unit_ids is not None:
        wanted = set(unit_ids)
        q = q.where(UnitOwed.unit_id.in_(wanted))
    rows = db.session.execute(q).all()  # first: it flushes pending changes, which may mark the estate as changed
    if not _trusted(plan):
        return None
    figures = db.session.execute(sa.select(PlanOwed.figures).where(PlanOwed.plan_version_id == plan.id)
                                 ).scalar_one_or_none()
    if figures is None or any(r.detail is None for r in rows):
        return None
    if len(rows) != (len(wanted) if wanted is not None else figures["units"]):
        return None  # a unit asked for is not saved (not of this estate): the live computation decides
    return _contributions(figures, rows)


if _on_publish not in plan_svc.PUBLISH_HOOKS:
    plan_svc.PUBLISH_HOOKS.append(_on_publish)
if contributions_of not in plan_svc.MONEY_READERS:
    plan_svc.MONEY_READERS.append(contributions_of)  # the plan pages (plans/views.py, plans/resident_api.py)


class Amounts(NamedTuple):
    share_fen: int
    covered_fen: int
    offset_fen: int
    owed_fen: int


def amounts_by_unit(plan) -> dict[int, Amounts]:
    """{unit id: its four amounts} of this version, from the saved columns (no detail): what a list of units
    needs (the start gate's 100 %); computed live as owed_by_unit when the saved rows cannot be trusted."""
    rows = db.session.execute(sa.select(UnitOwed.unit_id, *(getattr(UnitOwed, f) for f in FIELDS))
                              .where(UnitOwed.plan_version_id == plan.id)).all()
    if rows and _trusted(plan):
        return {r[0]: Amounts(*r[1:]) for r in rows}
    from residents_app.funding.services import compute_plan

    return {k: Amounts(*(int(getattr(u, f)) for f in FIELDS)) for k, u in compute_plan(plan).units.items()}


def owed_by_unit(plan) -> dict[int, int]:
    """{unit id: owed fen} of this version: the saved amounts, or computed live when there are none."""
    # columns only, the query first (it flushes pending changes, which may mark the estate as changed)
    rows = dict(db.session.execute(sa.select(UnitOwed.unit_id, UnitOwed.owed_fen)
                                   .where(UnitOwed.plan_version_id == plan.id)).all())
    if rows and _trusted(plan):
        return rows
    from residents_app.funding.services import compute_plan

    return {k: u.owed_fen for k, u in compute_plan(plan).units.items()}


def owed_of_unit(plan, unit_id: int) -> int:
    """One unit's owed fen (a pledge, the resident API): its saved row, or computed live as owed_by_unit."""
    # the query first: it flushes pending changes, which may mark the estate as changed
    value = db.session.execute(sa.select(UnitOwed.owed_fen).where(
        UnitOwed.plan_version_id == plan.id, UnitOwed.unit_id == unit_id)).scalar_one_or_none()
    if value is not None and _trusted(plan):
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
    from residents_app.registry.models import Building, Estate, Unit
    from residents_app.rounds.models import RoundResult

    if isinstance(obj, (HardshipTreatment, FundingSource)):
        return {obj.estate_id} if obj.estate_id is not None else set()
    if isinstance(obj, Unit):
        state = sa.inspect(obj)
        # the number: units are allocated in (building name, number) order, ties of the remainder go first
        if state.persistent and not state.deleted and not _changed(obj, "title_area_m2", "building_id",
                                                                   "estate_id", "number"):
            return set()
        hist = state.attrs["estate_id"].history
        return {e for e in (obj.estate_id, *hist.deleted) if e is not None}
    if isinstance(obj, Building):
        state = sa.inspect(obj)
        if state.persistent and not state.deleted and not _changed(obj, "name"):
            return set()
        return {obj.estate_id} if obj.estate_id is not None else set()
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
            _forget_version(session, plan.id)
            continue
        save(plan, c, session=session)
    session.flush()


def backfill(session: Session) -> int:
    """Save the amounts of every version in force (the migration's back-fill); returns how many rows."""
    from residents_app.funding.services import compute_plan

    detail = "plan_owed" in sa.inspect(session.connection()).get_table_names()  # (the unit_owed migration: not yet)
    n = 0
    for plan in _in_force(None, session):
        try:
            c = compute_plan(plan)
        except (DomainError, MoneyError):
            continue
        save(plan, c, session=session, detail=detail)
        n += len(c.units)
    session.flush()
    return n


def backfill_migration(conn) -> None:
    """The migrations' back-fill on their connection. compute_plan reads through db.session: for the back-fill it
    points at a session on this connection, then the previous one is put back."""
    if conn.execute(sa.text("SELECT 1 FROM plan_version WHERE status = 'published'")).first() is None:
        return  # a new database: nothing to compute (and the app's session could not see this schema)
    from residents_app.extensions import db

    previous = db.session.registry() if db.session.registry.has() else None
    session = Session(bind=conn)
    db.session.registry.set(session)
    try:
        backfill(session)
    finally:
        session.close()
        if previous is not None:
            db.session.registry.set(previous)
        else:
            db.session.registry.clear()


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
