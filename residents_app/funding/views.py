"""Pages and JSON API of the money: statements, pledges, payments and ledger, hardship, settlement.

Committee: /plans/<id>/statements.xlsx, /plans/<id>/pledges.xlsx, /plans/<id>/settlement, /estates/<id>/funding,
/estates/<id>/hardship, /estates/<id>/ledger.xlsx. Residents: /r/statement, /r/pledge. API: /api/plans/...
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.audit.services import log_export
from residents_app.auth.resident import resident_required
from residents_app.auth.scoping import can_edit_estate, estate_or_404, staff_required
from residents_app.core.calendar import beijing_date
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding import exports, finance, models, services
from residents_app.funding import settlement as settlement_svc
from residents_app.funding.models import Payment
from residents_app.funding.schemas import (
    FundingSummaryOutSchema,
    PaymentIn,
    PaymentRecordedSchema,
    PaymentReversedSchema,
    PlanStatementsSchema,
    ReverseIn,
)
from residents_app.plans import services as plan_svc
from residents_app.plans.schemas import parse_date, parse_int_id, yuan_to_fen
from residents_app.plans.views import LABELS, plan_for_staff, resident_plan_of_session
from residents_app.registry.models import Unit

bp = Blueprint("funding", __name__)
api_bp = ApiBlueprint("funding_api", __name__, url_prefix="/api/plans", description="出资、收款与决算")


def _xlsx(data: bytes, filename: str) -> Response:
    from urllib.parse import quote

    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
                             "Cache-Control": "no-store"})


def logged_xlsx(what: str, export: tuple[bytes, int], filename: str, *, estate_id: int, subject_type: str,
                subject_id) -> Response:
    """A download written to the estate's audit chain (who, what, when, how many rows) before it is sent."""
    data, rows = export
    log_export(what, estate_id=estate_id, user=current_user, now=utcnow(), subject_type=subject_type,
               subject_id=subject_id, rows=rows)
    db.session.commit()
    return _xlsx(data, filename)


@bp.route("/plans/<int:plan_id>/statements.xlsx")
@staff_required
def statements_xlsx(plan_id: int):
    plan = plan_for_staff(plan_id)
    return logged_xlsx("plan_statements_xlsx", exports.statements_xlsx(plan), f"分摊明细-第{plan.number}版.xlsx",
                       estate_id=plan.estate_id, subject_type="plan_version", subject_id=plan.id)


@bp.route("/plans/<int:plan_id>/pledges.xlsx")
@staff_required
def pledges_xlsx(plan_id: int):
    plan = plan_for_staff(plan_id)
    return logged_xlsx("plan_pledges_xlsx", exports.pledges_xlsx(plan), f"出资承诺-第{plan.number}版.xlsx",
                       estate_id=plan.estate_id, subject_type="plan_version", subject_id=plan.id)


@bp.route("/plans/<int:plan_id>/settlement", methods=["GET", "POST"])
@staff_required
def settlement(plan_id: int):
    plan = plan_for_staff(plan_id, edit=request.method == "POST")
    now = utcnow()
    if request.method == "POST":
        s = settlement_svc.settlement_of(plan, create=True, now=now)
        for item in plan.items:
            raw = request.form.get(f"item_{item.id}", "").strip()
            if raw:
                cost_fen = yuan_to_fen(raw, f"item_{item.id}", f"「{item.name}」决算金额")
                settlement_svc.set_audited_cost(s, item.id, cost_fen, user=current_user, now=now)
        if request.form.get("finalise") == "1":
            settlement_svc.finalise_settlement(s, user=current_user, now=now)
            flash("决算已定稿，多退少补金额已确定", "success")
        else:
            flash("审计决算金额已保存", "success")
        db.session.commit()
        return redirect(url_for("funding.settlement", plan_id=plan.id))
    s = settlement_svc.settlement_of(plan)
    preview = settlement_svc.settlement_preview(s) if s is not None else None
    audited = {r.plan_item_id: r.audited_cost_fen for r in s.items} if s else {}
    return render_template("funding/settlement.html", estate=plan.estate, plan=plan, s=s, preview=preview,
                           audited=audited, can_edit=can_edit_estate(current_user, plan.estate))


@bp.route("/plans/<int:plan_id>/settlement.xlsx")
@staff_required
def settlement_xlsx(plan_id: int):
    plan = plan_for_staff(plan_id)
    s = settlement_svc.settlement_of(plan)
    if s is None:
        raise NotFound("该方案还没有决算")
    return logged_xlsx("settlement_xlsx", exports.settlement_xlsx(s), f"决算多退少补-第{plan.number}版.xlsx",
                       estate_id=plan.estate_id, subject_type="settlement", subject_id=s.id)


@bp.route("/estates/<int:estate_id>/funding")
@staff_required
def funding(estate_id: int):
    estate = estate_or_404(estate_id)
    plan = plan_svc.current_plan(estate.id)
    entries = services.ledger(estate.id)
    reversed_ids = {p.reverses_id for p in entries if p.reverses_id}
    return render_template(
        "funding/funding.html", estate=estate, plan=plan, summary=services.funding_summary(estate.id),
        owing=services.units_owing(estate.id), entries=entries, reversed_ids=reversed_ids,
        units=services.estate_units(estate.id), hardship=services.hardship_by_unit(estate.id), labels=LABELS,
        fmt=services.format_ratio, can_edit=can_edit_estate(current_user, estate), today=beijing_date(utcnow()),
        finance_due=finance.due_reports(estate.id))


@bp.route("/estates/<int:estate_id>/funding/payments", methods=["POST"])
@staff_required
def payment_add(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    form = request.form
    pay = services.record_payment(
        estate, unit_id=parse_int_id(form.get("unit_id"), "unit_id", "房号"),
        amount_fen=yuan_to_fen(form.get("amount_yuan"), "amount_yuan", "收款金额"), method=form.get("method", ""),
        paid_on=parse_date(form.get("paid_on"), "paid_on", "付款日期"), reference=form.get("reference", ""),
        note=form.get("note", ""), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已记账：{pay.unit.label} {pay.amount_fen // 100:,}.{pay.amount_fen % 100:02d} 元", "success")
    return redirect(url_for("funding.funding", estate_id=estate.id) + "#ledger")


@bp.route("/estates/<int:estate_id>/funding/payments/<int:payment_id>/reverse", methods=["POST"])
@staff_required
def payment_reverse(estate_id: int, payment_id: int):
    estate = estate_or_404(estate_id, edit=True)
    pay = db.session.get(Payment, payment_id)
    if pay is None or pay.estate_id != estate.id:
        raise NotFound("找不到该收款记录")
    rev = services.reverse_payment(pay, reason=request.form.get("reason", ""), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已录入冲正记录第 {rev.id} 号", "success")
    return redirect(url_for("funding.funding", estate_id=estate.id) + "#ledger")


@bp.route("/estates/<int:estate_id>/hardship", methods=["POST"])
@staff_required
def hardship_set(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    unit = db.session.get(Unit, parse_int_id(request.form.get("unit_id"), "unit_id", "房号"))
    if unit is None or unit.estate_id != estate.id:
        raise NotFound("找不到该户")
    if request.form.get("clear") == "1":
        services.clear_hardship(estate, unit, user=current_user, now=utcnow())
        flash(f"已取消 {unit.label} 的困难户减免", "success")
    else:
        mode = request.form.get("mode", "")
        subsidy = yuan_to_fen(request.form.get("subsidy_yuan"), "subsidy_yuan", "补助金额") if mode == "partial" else 0
        services.set_hardship(estate, unit, mode=mode, subsidy_fen=subsidy,
                              covered_by=request.form.get("covered_by", ""), note=request.form.get("note", ""),
                              user=current_user, now=utcnow())
        flash(f"已登记 {unit.label} 的困难户减免", "success")
    db.session.commit()
    return redirect(url_for("funding.funding", estate_id=estate.id) + "#hardship")


@bp.route("/estates/<int:estate_id>/ledger.xlsx")
@staff_required
def ledger_xlsx(estate_id: int):
    estate = estate_or_404(estate_id)
    return logged_xlsx("ledger_xlsx", exports.ledger_xlsx(estate), f"收款台账-{estate.code}.xlsx",
                       estate_id=estate.id, subject_type="estate", subject_id=estate.id)


@bp.route("/r/statement")
@resident_required
def resident_statement():
    resident, plan = resident_plan_of_session()
    st = services.unit_statement(plan, resident.unit) if plan else None
    paid = services.paid_of_unit(resident.unit.id)
    return render_template("resident/statement.html", resident=resident, plan=plan, st=st, paid=paid,
                           settlement_lines=settlement_svc.unit_settlement(resident.unit))


@bp.route("/r/pledge", methods=["GET", "POST"])
@resident_required
def resident_pledge():
    resident, plan = resident_plan_of_session()
    if plan is None:
        raise NotFound("本小区还没有发布改造方案")
    now = utcnow()
    if request.method == "POST":
        if request.form.get("action") == "withdraw":
            services.withdraw_pledge(plan, resident.unit, resident.owner, now=now)
            flash("已撤回承诺书", "success")
        else:
            if request.form.get("confirm") != "1":
                raise ValidationFailed("请勾选“我已阅读并确认”后再签署", errors={"confirm": ["未确认"]})
            services.sign_pledge(plan, resident.unit, resident.owner, now=now)
            flash("承诺书已签署，谢谢您的支持", "success")
        db.session.commit()
        return redirect(url_for("funding.resident_pledge"))
    st = services.unit_statement(plan, resident.unit)
    pledge = services.active_pledge(plan, resident.unit)
    locked = models.money_locked(plan)
    return render_template("resident/pledge.html", resident=resident, plan=plan, st=st, pledge=pledge,
                           window_open=plan.pledge_window_open(now), locked=locked)


@api_bp.route("/<int:plan_id>/statements", methods=["GET"])
@api_bp.alt_response(200, schema=PlanStatementsSchema, success=True)
@staff_required
def api_statements(plan_id: int):
    """Every unit's share, cover and amount owed for a version."""
    plan = plan_for_staff(plan_id)
    c = services.contributions_of(plan)
    return {"plan_id": plan.id, "units": [
        {"unit_id": u.id, "label": u.label, "area_m2": str(u.title_area_m2), "share_fen": c.units[u.id].share_fen,
         "covered_fen": c.units[u.id].covered_fen, "owed_fen": c.units[u.id].owed_fen,
         "offset_fen": c.units[u.id].offset_fen, "matched_fen": c.units[u.id].matched_fen,
         "lines": [{"item_id": ln.item_key, "share_fen": ln.share_fen} for ln in c.units[u.id].lines]}
        for u in services.estate_units(plan.estate_id)]}


@api_bp.route("/estates/<int:estate_id>/funding", methods=["GET"])
@api_bp.alt_response(200, schema=FundingSummaryOutSchema, success=True)
@staff_required
def api_funding(estate_id: int):
    """Owed / paid / ratio for the estate and each building."""
    estate = estate_or_404(estate_id)
    s = services.funding_summary(estate.id)

    def clean(d):
        return {k: (v if k != "ratio" else services.format_ratio(v)) for k, v in d.items() if k != "buildings"}

    return {**clean(s), "ratio_pair": list(s["ratio_pair"]),
            "buildings": [{**clean(b), "ratio_pair": list(b["ratio_pair"])} for b in s["buildings"]]}


@api_bp.route("/estates/<int:estate_id>/payments", methods=["POST"])
@api_bp.arguments(PaymentIn)
@api_bp.alt_response(201, schema=PaymentRecordedSchema, success=True)
@staff_required
def api_payment(args, estate_id: int):
    """Record a payment (amount in fen)."""
    estate = estate_or_404(estate_id, edit=True)
    pay = services.record_payment(estate, **args, user=current_user, now=utcnow())
    db.session.commit()
    return {"id": pay.id, "unit_id": pay.unit_id, "amount_fen": pay.amount_fen}, 201


@api_bp.route("/estates/<int:estate_id>/payments/<int:payment_id>/reverse", methods=["POST"])
@api_bp.arguments(ReverseIn)
@api_bp.alt_response(201, schema=PaymentReversedSchema, success=True)
@staff_required
def api_reverse(args, estate_id: int, payment_id: int):
    """Correct a payment by a reversing entry."""
    estate = estate_or_404(estate_id, edit=True)
    pay = db.session.get(Payment, payment_id)
    if pay is None or pay.estate_id != estate.id:
        raise NotFound("找不到该收款记录")
    rev = services.reverse_payment(pay, reason=args["reason"], user=current_user, now=utcnow())
    db.session.commit()
    return {"id": rev.id, "reverses_id": rev.reverses_id, "amount_fen": rev.amount_fen}, 201


from residents_app.funding import money_views  # noqa: E402,F401  (routes of issue 15 on this blueprint)
