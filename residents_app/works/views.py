"""Pages and JSON API of the works: the start application (/estates/<id>/start, /api/plans/estates/<id>/start).
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth.scoping import can_edit_estate, estate_or_404, roles_required, staff_required
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.plans import services as plan_svc
from residents_app.works import services

bp = Blueprint("works", __name__)
api_bp = ApiBlueprint("works_api", __name__, url_prefix="/api/plans", description="项目启动申请")


@bp.route("/estates/<int:estate_id>/start", methods=["GET", "POST"])
@staff_required
def start(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    if request.method == "POST":
        services.submit_start(estate, user=current_user, now=utcnow())
        db.session.commit()
        flash("启动申请已提交街道审批", "success")
        return redirect(url_for("works.start", estate_id=estate.id))
    plan = plan_svc.current_plan(estate.id)
    checks = services.start_checklist(plan, utcnow()) if plan else []
    application = services.start_application_of(plan) if plan else None
    return render_template("works/start.html", estate=estate, plan=plan, checks=checks, application=application,
                           can_edit=can_edit_estate(current_user, estate),
                           can_decide=current_user.role in ("street", "admin"))


@bp.route("/estates/<int:estate_id>/start/decide", methods=["POST"])
@roles_required("street", "admin")
def start_decide(estate_id: int):
    estate = estate_or_404(estate_id)
    plan = plan_svc.current_plan(estate.id)
    application = services.start_application_of(plan) if plan else None
    if application is None:
        raise NotFound("本小区没有启动申请")
    approve = request.form.get("decision") == "approve"
    services.decide_start(application, approve=approve, comment=request.form.get("comment", ""),
                          user=current_user, now=utcnow())
    db.session.commit()
    flash("已批准项目启动" if approve else "已退回启动申请", "success")
    return redirect(url_for("works.start", estate_id=estate.id))


@api_bp.route("/estates/<int:estate_id>/start", methods=["GET"])
@staff_required
def api_start(estate_id: int):
    """The start application checklist, each line met or not with its reason."""
    estate = estate_or_404(estate_id)
    plan = plan_svc.current_plan(estate.id)
    if plan is None:
        raise NotFound("本小区还没有已发布的改造方案")
    application = services.start_application_of(plan)
    return {"plan_id": plan.id, "status": application.status if application else None,
            "checks": [c.as_dict() for c in services.start_checklist(plan, utcnow())]}
