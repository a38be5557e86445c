"""The final settlement (决算, 多退少补): audited cost per item, each unit's refund or top-up.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding.models import (
    Settlement,
    SettlementItem,
    SettlementUnitLine,
)
from residents_app.funding.services import compute_plan, estate_units, paid_by_unit
from residents_app.plans.models import (
    PlanItem,
    PlanVersion,
)


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


def settlement_preview(settlement: Settlement) -> dict:
    """Per unit: planned owed, final owed on audited costs, paid, difference (+ top-up / − refund)."""
    plan = settlement.plan_version
    audited = {r.plan_item_id: r.audited_cost_fen for r in settlement.items}
    missing = [i.name for i in plan.items if i.id not in audited]
    planned = compute_plan(plan)
    # items with an audited cost of zero still allocate 0 fen; allocation of 0 is exact
    final = compute_plan(plan, costs=audited)
    paid = paid_by_unit(plan.estate_id)
    rows = []
    for u in estate_units(plan.estate_id):
        p = paid.get(u.id, 0)
        fo = final.units[u.id].owed_fen
        rows.append({"unit": u, "planned_owed_fen": planned.units[u.id].owed_fen, "final_owed_fen": fo,
                     "paid_fen": p, "difference_fen": fo - p})
    return {"rows": rows, "missing_items": missing, "planned": planned, "final": final,
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
    db.session.flush()
    record("plans.settlement_finalised", chain=settlement.plan_version.estate_id, actor=actor_for_user(user),
           now=now, subject_type="settlement", subject_id=settlement.id,
           data={"final_owed_fen": preview["final_owed_fen"], "paid_fen": preview["paid_fen"],
                 "top_up_fen": preview["top_up_fen"], "refund_fen": preview["refund_fen"]})
    return settlement
