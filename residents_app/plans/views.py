"""Pages and JSON API of plans and money.

Committee: /estates/<id>/plans, /plans/<id>..., /estates/<id>/funding, /estates/<id>/start.
Residents (unit link session): /r/plan, /r/statement, /r/pledge. API: /api/plans/...
Views parse, call a service, commit, render. Nothing else.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth.resident import current_resident, resident_required
from residents_app.auth.scoping import can_edit_estate, estate_or_404, roles_required, staff_required
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.plans import exports, services
from residents_app.plans.models import (
    ATTACHMENT_KIND_LABELS,
    CATEGORY_LABELS,
    HARDSHIP_MODE_LABELS,
    PAYMENT_METHOD_LABELS,
    Payment,
    PlanAttachment,
    PlanItem,
    PlanVersion,
)
from residents_app.plans.schemas import (
    PaymentIn,
    ReverseIn,
    parse_date,
    parse_int_id,
    parse_local_dt,
    yuan_to_fen,
)
from residents_app.registry.models import Unit

bp = Blueprint("plans", __name__)
api_bp = ApiBlueprint("plans_api", __name__, url_prefix="/api/plans", description="改造方案与资金")

LABELS = {"categories": CATEGORY_LABELS, "attachment_kinds": ATTACHMENT_KIND_LABELS,
          "hardship_modes": HARDSHIP_MODE_LABELS, "payment_methods": PAYMENT_METHOD_LABELS}


def _plan_for_staff(plan_id: int, *, edit: bool = False) -> PlanVersion:
    plan = db.session.get(PlanVersion, plan_id)
    if plan is None:
        raise NotFound("找不到该方案")
    estate_or_404(plan.estate_id, edit=edit)
    return plan


def _item_of(plan: PlanVersion, item_id: int) -> PlanItem:
    item = db.session.get(PlanItem, item_id)
    if item is None or item.plan_version_id != plan.id:
        raise NotFound("找不到该项目")
    return item


def _xlsx(data: bytes, filename: str) -> Response:
    from urllib.parse import quote

    return Response(data, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


def _send_attachment(att: PlanAttachment) -> Response:
    from urllib.parse import quote

    disposition = "inline" if att.content_type != "application/pdf" else "attachment"
    return Response(att.data, mimetype=att.content_type, headers={
        "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(att.filename)}",
        "X-Content-Type-Options": "nosniff"})


def _item_form() -> dict:
    form = request.form
    return {"name": form.get("name", ""), "category": form.get("category", ""),
            "cost_fen": yuan_to_fen(form.get("cost_yuan"), "cost_yuan", "费用"),
            "building_ids": [parse_int_id(b, "building_ids", "楼栋") for b in form.getlist("building_ids")],
            "description": form.get("description", "")}


# ---- plan versions (committee) --------------------------------------------------------------------

@bp.route("/estates/<int:estate_id>/plans", methods=["GET", "POST"])
@staff_required
def estate_plans(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    if request.method == "POST":
        plan = services.create_plan(estate, title=request.form.get("title", ""), user=current_user, now=utcnow())
        db.session.commit()
        flash(f"已新建方案第 {plan.number} 版（草稿）", "success")
        return redirect(url_for("plans.plan_detail", plan_id=plan.id))
    return render_template("plans/list.html", estate=estate, plans=services.plans_of_estate(estate.id),
                           current=services.current_plan(estate.id), can_edit=can_edit_estate(current_user, estate))


@bp.route("/plans/<int:plan_id>")
@staff_required
def plan_detail(plan_id: int):
    plan = _plan_for_staff(plan_id)
    estate = plan.estate
    contributions, compute_error = None, None
    if plan.items:
        try:
            contributions = services.compute_plan(plan)
        except services.MoneyError as exc:
            compute_error = str(exc)
    units = services.estate_units(estate.id)
    diff = services.plan_diff(plan.supersedes, plan) if plan.supersedes is not None else None
    return render_template("plans/detail.html", estate=estate, plan=plan, c=contributions, units=units,
                           compute_error=compute_error, diff=diff, labels=LABELS,
                           can_edit=can_edit_estate(current_user, estate), problems=plan.publish_problems())


@bp.route("/plans/<int:plan_id>/edit", methods=["POST"])
@staff_required
def plan_edit(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    form = request.form
    services.update_plan(
        plan, user=current_user, now=utcnow(), title=form.get("title", ""),
        budget_summary=form.get("budget_summary", ""), funding_plan=form.get("funding_plan", ""),
        management_plan=form.get("management_plan", ""), change_summary=form.get("change_summary", ""),
        pledge_window=(parse_local_dt(form.get("pledge_opens_at"), "pledge_opens_at", "承诺开始时间"),
                       parse_local_dt(form.get("pledge_closes_at"), "pledge_closes_at", "承诺截止时间")))
    db.session.commit()
    flash("方案内容已保存", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id))


@bp.route("/plans/<int:plan_id>/items", methods=["POST"])
@staff_required
def item_add(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    item = services.add_item(plan, **_item_form(), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已添加项目：{item.name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/items/<int:item_id>/edit", methods=["POST"])
@staff_required
def item_edit(plan_id: int, item_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    item = services.update_item(_item_of(plan, item_id), **_item_form(), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已修改项目：{item.name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/items/<int:item_id>/delete", methods=["POST"])
@staff_required
def item_delete(plan_id: int, item_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    item = _item_of(plan, item_id)
    name = item.name
    services.remove_item(item, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已删除项目：{name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/attachments", methods=["POST"])
@staff_required
def attachment_add(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    storage = request.files.get("file")
    if storage is None or not storage.filename:
        raise ValidationFailed("请选择要上传的文件", errors={"file": ["没有文件"]})
    data = storage.read(services.MAX_ATTACHMENT_BYTES + 1)
    att = services.add_attachment(plan, kind=request.form.get("kind", ""), filename=storage.filename, data=data,
                                  user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已上传：{att.filename}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#attachments")


@bp.route("/plans/<int:plan_id>/attachments/<int:att_id>")
@staff_required
def attachment_get(plan_id: int, att_id: int):
    plan = _plan_for_staff(plan_id)
    att = db.session.get(PlanAttachment, att_id)
    if att is None or att.plan_version_id != plan.id:
        raise NotFound("找不到该附件")
    return _send_attachment(att)


@bp.route("/plans/<int:plan_id>/attachments/<int:att_id>/delete", methods=["POST"])
@staff_required
def attachment_delete(plan_id: int, att_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    att = db.session.get(PlanAttachment, att_id)
    if att is None or att.plan_version_id != plan.id:
        raise NotFound("找不到该附件")
    services.remove_attachment(att, user=current_user, now=utcnow())
    db.session.commit()
    flash("附件已删除", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#attachments")


@bp.route("/plans/<int:plan_id>/publish", methods=["POST"])
@staff_required
def plan_publish(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    services.publish_plan(plan, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"方案第 {plan.number} 版已发布", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id))


@bp.route("/plans/<int:plan_id>/new-version", methods=["POST"])
@staff_required
def plan_new_version(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=True)
    draft = services.new_version(plan, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已基于第 {plan.number} 版新建第 {draft.number} 版（草稿），请修改后写明变更说明再发布", "success")
    return redirect(url_for("plans.plan_detail", plan_id=draft.id))


@bp.route("/plans/<int:plan_id>/statements.xlsx")
@staff_required
def statements_xlsx(plan_id: int):
    plan = _plan_for_staff(plan_id)
    return _xlsx(exports.statements_xlsx(plan), f"分摊明细-第{plan.number}版.xlsx")


@bp.route("/plans/<int:plan_id>/pledges.xlsx")
@staff_required
def pledges_xlsx(plan_id: int):
    plan = _plan_for_staff(plan_id)
    return _xlsx(exports.pledges_xlsx(plan), f"出资承诺-第{plan.number}版.xlsx")


# ---- settlement -------------------------------------------------------------------------------

@bp.route("/plans/<int:plan_id>/settlement", methods=["GET", "POST"])
@staff_required
def settlement(plan_id: int):
    plan = _plan_for_staff(plan_id, edit=request.method == "POST")
    now = utcnow()
    if request.method == "POST":
        s = services.settlement_of(plan, create=True, now=now)
        for item in plan.items:
            raw = request.form.get(f"item_{item.id}", "").strip()
            if raw:
                services.set_audited_cost(s, item.id, yuan_to_fen(raw, f"item_{item.id}", f"「{item.name}」决算金额"),
                                          user=current_user, now=now)
        if request.form.get("finalise") == "1":
            services.finalise_settlement(s, user=current_user, now=now)
            flash("决算已定稿，多退少补金额已确定", "success")
        else:
            flash("审计决算金额已保存", "success")
        db.session.commit()
        return redirect(url_for("plans.settlement", plan_id=plan.id))
    s = services.settlement_of(plan)
    preview = services.settlement_preview(s) if s is not None else None
    audited = {r.plan_item_id: r.audited_cost_fen for r in s.items} if s else {}
    return render_template("plans/settlement.html", estate=plan.estate, plan=plan, s=s, preview=preview,
                           audited=audited, can_edit=can_edit_estate(current_user, plan.estate))


@bp.route("/plans/<int:plan_id>/settlement.xlsx")
@staff_required
def settlement_xlsx(plan_id: int):
    plan = _plan_for_staff(plan_id)
    s = services.settlement_of(plan)
    if s is None:
        raise NotFound("该方案还没有决算")
    return _xlsx(exports.settlement_xlsx(s), f"决算多退少补-第{plan.number}版.xlsx")


# ---- funding ----------------------------------------------------------------------------------

@bp.route("/estates/<int:estate_id>/funding")
@staff_required
def funding(estate_id: int):
    estate = estate_or_404(estate_id)
    plan = services.current_plan(estate.id)
    entries = services.ledger(estate.id)
    reversed_ids = {p.reverses_id for p in entries if p.reverses_id}
    return render_template(
        "plans/funding.html", estate=estate, plan=plan, summary=services.funding_summary(estate.id),
        owing=services.units_owing(estate.id), entries=entries, reversed_ids=reversed_ids,
        units=services.estate_units(estate.id), hardship=services.hardship_by_unit(estate.id), labels=LABELS,
        fmt=services.format_ratio, can_edit=can_edit_estate(current_user, estate), today=utcnow().date())


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
    return redirect(url_for("plans.funding", estate_id=estate.id) + "#ledger")


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
    return redirect(url_for("plans.funding", estate_id=estate.id) + "#ledger")


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
    return redirect(url_for("plans.funding", estate_id=estate.id) + "#hardship")


@bp.route("/estates/<int:estate_id>/ledger.xlsx")
@staff_required
def ledger_xlsx(estate_id: int):
    estate = estate_or_404(estate_id)
    return _xlsx(exports.ledger_xlsx(estate), f"收款台账-{estate.code}.xlsx")


# ---- start application ------------------------------------------------------------------------

@bp.route("/estates/<int:estate_id>/start", methods=["GET", "POST"])
@staff_required
def start(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    if request.method == "POST":
        services.submit_start(estate, user=current_user, now=utcnow())
        db.session.commit()
        flash("启动申请已提交街道审批", "success")
        return redirect(url_for("plans.start", estate_id=estate.id))
    plan = services.current_plan(estate.id)
    checks = services.start_checklist(plan, utcnow()) if plan else []
    application = services.start_application_of(plan) if plan else None
    return render_template("plans/start.html", estate=estate, plan=plan, checks=checks, application=application,
                           can_edit=can_edit_estate(current_user, estate),
                           can_decide=current_user.role in ("street", "admin"))


@bp.route("/estates/<int:estate_id>/start/decide", methods=["POST"])
@roles_required("street", "admin")
def start_decide(estate_id: int):
    estate = estate_or_404(estate_id)
    plan = services.current_plan(estate.id)
    application = services.start_application_of(plan) if plan else None
    if application is None:
        raise NotFound("本小区没有启动申请")
    approve = request.form.get("decision") == "approve"
    services.decide_start(application, approve=approve, comment=request.form.get("comment", ""),
                          user=current_user, now=utcnow())
    db.session.commit()
    flash("已批准项目启动" if approve else "已退回启动申请", "success")
    return redirect(url_for("plans.start", estate_id=estate.id))


# ---- residents --------------------------------------------------------------------------------

def _resident_plan():
    resident = current_resident()
    plan = services.current_plan(resident.unit.estate_id)
    return resident, plan


@bp.route("/r/plan")
@resident_required
def resident_plan():
    resident, plan = _resident_plan()
    c = services.compute_plan(plan) if plan else None
    return render_template("resident/plan.html", resident=resident, plan=plan, c=c)


@bp.route("/r/plan/attachments/<int:att_id>")
@resident_required
def resident_attachment(att_id: int):
    resident, plan = _resident_plan()
    att = db.session.get(PlanAttachment, att_id)
    if att is None or plan is None or att.plan_version_id != plan.id:
        raise NotFound("找不到该附件")
    return _send_attachment(att)


@bp.route("/r/statement")
@resident_required
def resident_statement():
    resident, plan = _resident_plan()
    st = services.unit_statement(plan, resident.unit) if plan else None
    paid = services.paid_by_unit(resident.unit.estate_id).get(resident.unit.id, 0)
    return render_template("resident/statement.html", resident=resident, plan=plan, st=st, paid=paid)


@bp.route("/r/pledge", methods=["GET", "POST"])
@resident_required
def resident_pledge():
    resident, plan = _resident_plan()
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
        return redirect(url_for("plans.resident_pledge"))
    st = services.unit_statement(plan, resident.unit)
    pledge = services.active_pledge(plan, resident.unit)
    locked = services._start_locked(plan)
    return render_template("resident/pledge.html", resident=resident, plan=plan, st=st, pledge=pledge,
                           window_open=plan.pledge_window_open(now), locked=locked)


# ---- JSON API ---------------------------------------------------------------------------------

def _plan_json(plan: PlanVersion) -> dict:
    c = services.compute_plan(plan) if plan.items else None
    items = {i.key: i for i in c.items} if c else {}
    return {
        "id": plan.id, "estate_id": plan.estate_id, "number": plan.number, "title": plan.title,
        "status": plan.status, "published_at": plan.published_at.isoformat() if plan.published_at else None,
        "supersedes_id": plan.supersedes_id, "change_summary": plan.change_summary,
        "total_cost_fen": plan.total_cost_fen,
        "resident_total_fen": c.resident_total_fen if c else 0,
        "subsidy_total_fen": c.subsidy_total_fen if c else 0, "cap_fen": c.cap_fen if c else None,
        "excess_fen": c.excess_fen if c else 0,
        "items": [{"id": i.id, "name": i.name, "category": i.category, "cost_fen": i.cost_fen, "scope": i.scope,
                   "building_ids": [b.id for b in i.buildings],
                   "resident_fen": items[i.id].resident_fen if c else None,
                   "subsidy_fen": items[i.id].subsidy_fen if c else None} for i in plan.items],
    }


@api_bp.route("/estates/<int:estate_id>", methods=["GET"])
@staff_required
def api_estate_plans(estate_id: int):
    """Plan versions of an estate, newest first."""
    estate = estate_or_404(estate_id)
    return {"plans": [_plan_json(p) for p in services.plans_of_estate(estate.id)]}


@api_bp.route("/<int:plan_id>", methods=["GET"])
@staff_required
def api_plan(plan_id: int):
    """One plan version with its items and the money split."""
    return _plan_json(_plan_for_staff(plan_id))


@api_bp.route("/<int:plan_id>/statements", methods=["GET"])
@staff_required
def api_statements(plan_id: int):
    """Every unit's share, cover and amount owed for a version."""
    plan = _plan_for_staff(plan_id)
    c = services.compute_plan(plan)
    return {"plan_id": plan.id, "units": [
        {"unit_id": u.id, "label": u.label, "area_m2": str(u.title_area_m2), "share_fen": c.units[u.id].share_fen,
         "covered_fen": c.units[u.id].covered_fen, "owed_fen": c.units[u.id].owed_fen,
         "lines": [{"item_id": ln.item_key, "share_fen": ln.share_fen} for ln in c.units[u.id].lines]}
        for u in services.estate_units(plan.estate_id)]}


@api_bp.route("/estates/<int:estate_id>/funding", methods=["GET"])
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
@staff_required
def api_payment(args, estate_id: int):
    """Record a payment (amount in fen)."""
    estate = estate_or_404(estate_id, edit=True)
    pay = services.record_payment(estate, **args, user=current_user, now=utcnow())
    db.session.commit()
    return {"id": pay.id, "unit_id": pay.unit_id, "amount_fen": pay.amount_fen}, 201


@api_bp.route("/estates/<int:estate_id>/payments/<int:payment_id>/reverse", methods=["POST"])
@api_bp.arguments(ReverseIn)
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


@api_bp.route("/estates/<int:estate_id>/start", methods=["GET"])
@staff_required
def api_start(estate_id: int):
    """The start application checklist, each line met or not with its reason."""
    estate = estate_or_404(estate_id)
    plan = services.current_plan(estate.id)
    if plan is None:
        raise NotFound("本小区还没有已发布的改造方案")
    application = services.start_application_of(plan)
    return {"plan_id": plan.id, "status": application.status if application else None,
            "checks": [c.as_dict() for c in services.start_checklist(plan, utcnow())]}
