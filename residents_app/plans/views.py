"""Pages and JSON API of plan versions.

Committee: /estates/<id>/plans, /plans/<id>... Residents (unit link session): /r/plan. API: /api/plans/...
Views parse, call a service, commit, render. Nothing else.
"""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth.resident import current_resident, resident_required
from residents_app.auth.scoping import can_edit_estate, estate_or_404, staff_required
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding import services as funding_svc
from residents_app.funding.models import HARDSHIP_MODE_LABELS, PAYMENT_METHOD_LABELS
from residents_app.plans import services
from residents_app.plans.models import (
    ATTACHMENT_KIND_LABELS,
    CATEGORY_LABELS,
    FUNDING_MODE_LABELS,
    PlanAttachment,
    PlanItem,
    PlanVersion,
)
from residents_app.plans.schemas import (
    EstatePlanVersionsSchema,
    PlanVersionOutSchema,
    parse_int_id,
    parse_local_dt,
    yuan_to_fen,
)

bp = Blueprint("plans", __name__)


api_bp = ApiBlueprint("plans_api", __name__, url_prefix="/api/plans", description="改造方案与资金")


LABELS = {"categories": CATEGORY_LABELS, "attachment_kinds": ATTACHMENT_KIND_LABELS,
          "hardship_modes": HARDSHIP_MODE_LABELS, "payment_methods": PAYMENT_METHOD_LABELS,
          "funding_modes": FUNDING_MODE_LABELS}


def plan_for_staff(plan_id: int, *, edit: bool = False) -> PlanVersion:
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
            "description": form.get("description", ""),
            "funding_mode": form.get("funding_mode") or "subsidised",
            "fixed_subsidy_fen": (yuan_to_fen(form.get("fixed_subsidy_yuan"), "fixed_subsidy_yuan", "另行补助金额")
                                  if form.get("funding_mode") == "separate" else 0)}


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
    plan = plan_for_staff(plan_id)
    estate = plan.estate
    contributions, compute_error = None, None
    if plan.items:
        try:
            contributions = services.saved_money(plan)  # every unit: the page lists them
        except services.MoneyError as exc:
            compute_error = str(exc)
    units = funding_svc.estate_units(estate.id)
    diff = services.plan_diff(plan.supersedes, plan) if plan.supersedes is not None else None
    return render_template("plans/detail.html", estate=estate, plan=plan, c=contributions, units=units,
                           compute_error=compute_error, diff=diff, labels=LABELS,
                           can_edit=can_edit_estate(current_user, estate), problems=plan.publish_problems())


@bp.route("/plans/<int:plan_id>/edit", methods=["POST"])
@staff_required
def plan_edit(plan_id: int):
    plan = plan_for_staff(plan_id, edit=True)
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
    plan = plan_for_staff(plan_id, edit=True)
    item = services.add_item(plan, **_item_form(), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已添加项目：{item.name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/items/<int:item_id>/edit", methods=["POST"])
@staff_required
def item_edit(plan_id: int, item_id: int):
    plan = plan_for_staff(plan_id, edit=True)
    item = services.update_item(_item_of(plan, item_id), **_item_form(), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已修改项目：{item.name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/items/<int:item_id>/delete", methods=["POST"])
@staff_required
def item_delete(plan_id: int, item_id: int):
    plan = plan_for_staff(plan_id, edit=True)
    item = _item_of(plan, item_id)
    name = item.name
    services.remove_item(item, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已删除项目：{name}", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id) + "#items")


@bp.route("/plans/<int:plan_id>/attachments", methods=["POST"])
@staff_required
def attachment_add(plan_id: int):
    plan = plan_for_staff(plan_id, edit=True)
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
    plan = plan_for_staff(plan_id)
    att = db.session.get(PlanAttachment, att_id)
    if att is None or att.plan_version_id != plan.id:
        raise NotFound("找不到该附件")
    return _send_attachment(att)


@bp.route("/plans/<int:plan_id>/attachments/<int:att_id>/delete", methods=["POST"])
@staff_required
def attachment_delete(plan_id: int, att_id: int):
    plan = plan_for_staff(plan_id, edit=True)
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
    plan = plan_for_staff(plan_id, edit=True)
    services.publish_plan(plan, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"方案第 {plan.number} 版已发布", "success")
    return redirect(url_for("plans.plan_detail", plan_id=plan.id))


@bp.route("/plans/<int:plan_id>/new-version", methods=["POST"])
@staff_required
def plan_new_version(plan_id: int):
    plan = plan_for_staff(plan_id, edit=True)
    draft = services.new_version(plan, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已基于第 {plan.number} 版新建第 {draft.number} 版（草稿），请修改后写明变更说明再发布", "success")
    return redirect(url_for("plans.plan_detail", plan_id=draft.id))


def resident_plan_of_session():
    resident = current_resident()
    plan = services.current_plan(resident.unit.estate_id)
    return resident, plan


@bp.route("/r/plan")
@resident_required
def resident_plan():
    resident, plan = resident_plan_of_session()
    c = services.saved_money(plan, ()) if plan else None  # the items and totals: no unit on this page
    return render_template("resident/plan.html", resident=resident, plan=plan, c=c)


@bp.route("/r/plan/attachments/<int:att_id>")
@resident_required
def resident_attachment(att_id: int):
    resident, plan = resident_plan_of_session()
    att = db.session.get(PlanAttachment, att_id)
    if att is None or plan is None or att.plan_version_id != plan.id:
        raise NotFound("找不到该附件")
    return _send_attachment(att)


def _plan_json(plan: PlanVersion) -> dict:
    c = services.saved_money(plan, ()) if plan.items else None
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
@api_bp.alt_response(200, schema=EstatePlanVersionsSchema, success=True)
@staff_required
def api_estate_plans(estate_id: int):
    """Plan versions of an estate, newest first."""
    estate = estate_or_404(estate_id)
    return {"plans": [_plan_json(p) for p in services.plans_of_estate(estate.id)]}


@api_bp.route("/<int:plan_id>", methods=["GET"])
@api_bp.alt_response(200, schema=PlanVersionOutSchema, success=True)
@staff_required
def api_plan(plan_id: int):
    """One plan version with its items and the money split."""
    return _plan_json(plan_for_staff(plan_id))
