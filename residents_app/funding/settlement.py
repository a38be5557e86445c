"""The final settlement (决算, 多退少补): audited cost per item, each unit's refund or top-up.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding.account import book_payment
from residents_app.funding.account_models import SettlementDue
from residents_app.funding.models import (
    PAYMENT_METHODS,
    Payment,
    Settlement,
    SettlementItem,
    SettlementUnitLine,
)
from residents_app.funding.owed import contributions_of, owed_by_unit
from residents_app.funding.services import compute_plan, estate_units, paid_by_unit
from residents_app.plans.models import (
    PlanItem,
    PlanVersion,
)
from residents_app.registry.models import Unit


def settlement_of(plan: PlanVersion, *, create: bool = False, now: datetime | None = None) -> Settlement | None:
    s = db.session.execute(sa.select(Settlement).where(Settlement.plan_version_id == plan.id)).scalar_one_or_none()
    if s is None and create:
        if plan.status != "published":
            raise Conflict("只有当前发布的方案才能决算", code="plan_not_current")
        s = Settlement(plan_version_id=plan.id, created_at=now)
        db.session.add(s)
        db.session.flush()
    return s


def set_audited_cost(settlement: Settlement, plan_item_id: int, audited_cost_fen: int, *, user,
                     now: datetime) -> SettlementItem:
    settlement.ensure_editable()
    item = db.session.get(PlanItem, plan_item_id)
    if item is None or item.plan_version_id != settlement.plan_version_id:
        raise NotFound("该项目不属于本方案")
    if not isinstance(audited_cost_fen, int) or isinstance(audited_cost_fen, bool) or audited_cost_fen < 0:
        raise ValidationFailed(f"「{item.name}」的审计决算金额必须是不小于零的金额（分）",
                               errors={f"item_{item.id}": ["金额有误"]})
    row = next((r for r in settlement.items if r.plan_item_id == item.id), None)
    if row is None:
        row = SettlementItem(settlement=settlement, plan_item_id=item.id, audited_cost_fen=audited_cost_fen)
        db.session.add(row)
    row.audited_cost_fen = audited_cost_fen
    db.session.flush()
    record("plans.settlement_cost_set", chain=settlement.plan_version.estate_id, actor=actor_for_user(user),
           now=now, subject_type="settlement", subject_id=settlement.id,
           data={"item": item.name, "planned_cost_fen": item.cost_fen, "audited_cost_fen": audited_cost_fen})
    return row


def settlement_preview(settlement: Settlement, *, with_planned: bool = False) -> dict:
    """Per unit: planned owed, final owed on audited costs, paid, difference (+ top-up / − refund).

    The planned amounts are the saved ones (funding/owed.py); the final ones are computed on the audited costs
    (nothing saved can give them). `with_planned`: also the planned Contributions in full (the archive)."""
    plan = settlement.plan_version
    audited = {r.plan_item_id: r.audited_cost_fen for r in settlement.items}
    missing = [i.name for i in plan.items if i.id not in audited]
    planned = owed_by_unit(plan)
    # items with an audited cost of zero still allocate 0 fen; allocation of 0 is exact
    final = compute_plan(plan, costs=audited)
    paid = paid_by_unit(plan.estate_id)
    rows = []
    for u in estate_units(plan.estate_id):
        p = paid.get(u.id, 0)
        fo = final.units[u.id].owed_fen
        rows.append({"unit": u, "planned_owed_fen": planned[u.id], "final_owed_fen": fo,
                     "paid_fen": p, "difference_fen": fo - p})
    return {"rows": rows, "missing_items": missing, "final": final,
            **({"planned": contributions_of(plan)} if with_planned else {}),
            "top_up_fen": sum(r["difference_fen"] for r in rows if r["difference_fen"] > 0),
            "refund_fen": -sum(r["difference_fen"] for r in rows if r["difference_fen"] < 0),
            "difference_fen": sum(r["difference_fen"] for r in rows),
            "final_owed_fen": final.owed_total_fen, "paid_fen": sum(paid.values())}


def finalise_settlement(settlement: Settlement, *, user, now: datetime) -> Settlement:
    settlement.ensure_editable()
    preview = settlement_preview(settlement)
    if preview["missing_items"]:
        raise Conflict("还有项目没有填写审计决算金额：" + "、".join(preview["missing_items"]),
                       code="settlement_incomplete", errors={"items": preview["missing_items"]})
    for r in preview["rows"]:
        settlement.unit_lines.append(SettlementUnitLine(
            unit_id=r["unit"].id, planned_owed_fen=r["planned_owed_fen"], final_owed_fen=r["final_owed_fen"],
            paid_fen=r["paid_fen"], difference_fen=r["difference_fen"]))
    settlement.finalised_at = now
    settlement.finalised_by_id = user.id
    for r in preview["rows"]:
        if r["difference_fen"]:
            kind = "top_up" if r["difference_fen"] > 0 else "refund"
            db.session.add(SettlementDue(settlement_id=settlement.id, unit_id=r["unit"].id, kind=kind,
                                         amount_fen=abs(r["difference_fen"]), created_at=now))
    db.session.flush()
    record("plans.settlement_finalised", chain=settlement.plan_version.estate_id, actor=actor_for_user(user),
           now=now, subject_type="settlement", subject_id=settlement.id,
           data={"final_owed_fen": preview["final_owed_fen"], "paid_fen": preview["paid_fen"],
                 "top_up_fen": preview["top_up_fen"], "refund_fen": preview["refund_fen"]})
    return settlement


def dues_of(settlement: Settlement, *, open_only: bool = False) -> list[SettlementDue]:
    q = sa.select(SettlementDue).where(SettlementDue.settlement_id == settlement.id)
    if open_only:
        q = q.where(SettlementDue.closed_at.is_(None))
    return sorted(db.session.execute(q).scalars(), key=lambda d: (d.unit.building.name, d.unit.number))


def close_due(due: SettlementDue, *, method: str, paid_on: date, reference: str = "", user,
              now: datetime) -> SettlementDue:
    """Record the refund paid or the top-up received: a ledger entry (payment ±, account entry), the due closed."""
    if due.closed_at is not None:
        raise Conflict(f"{due.unit.label} 的{due.kind_label}已于此前记录", code="due_closed")
    errors = {}
    if method not in PAYMENT_METHODS:
        errors["method"] = ["方式必须是 现金、银行转账、微信、支付宝 或 其他"]
    if not isinstance(paid_on, date):
        errors["paid_on"] = ["请填写日期"]
    elif paid_on > beijing_date(now):
        errors["paid_on"] = ["日期不能晚于今天"]
    if len(reference or "") > 100:
        errors["reference"] = ["凭证号不能超过 100 个字"]
    if errors:
        raise ValidationFailed("退补记录有误", errors=errors)
    sign = 1 if due.kind == "top_up" else -1
    pay = Payment(estate_id=due.unit.estate_id, unit_id=due.unit_id, amount_fen=sign * due.amount_fen, method=method,
                  reference=(reference or "").strip(), paid_on=paid_on, note=f"决算{due.kind_label}",
                  entered_by_id=user.id, entered_at=now)
    db.session.add(pay)
    db.session.flush()
    book_payment(pay, kind=due.kind, user=user, now=now)
    due.closed_at = now
    due.closed_by_id = user.id
    due.payment_id = pay.id
    db.session.flush()
    record("funding.settlement_due_closed", chain=due.unit.estate_id, actor=actor_for_user(user), now=now,
           subject_type="settlement_due", subject_id=due.id,
           data={"unit": due.unit.label, "kind": due.kind, "amount_fen": due.amount_fen, "payment_id": pay.id})
    return due


def unit_settlement(unit: Unit) -> list[dict]:
    """The unit's settlement lines of final settlements, each with its due (None: nothing to refund or collect)."""
    from residents_app.funding.models import SettlementUnitLine

    rows = db.session.execute(
        sa.select(SettlementUnitLine, SettlementDue).join(Settlement, Settlement.id == SettlementUnitLine.settlement_id)
        .outerjoin(SettlementDue, sa.and_(SettlementDue.settlement_id == Settlement.id,
                                          SettlementDue.unit_id == SettlementUnitLine.unit_id))
        .where(SettlementUnitLine.unit_id == unit.id, Settlement.finalised_at.is_not(None))
        .order_by(Settlement.id)).all()
    return [{"line": line, "due": due} for line, due in rows]
