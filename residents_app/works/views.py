"""Pages and JSON API of the works: the start application (/estates/<id>/start, /api/plans/estates/<id>/start).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.audit.services import log_export
from residents_app.auth.scoping import can_edit_estate, estate_or_404, roles_required, staff_required
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.plans import services as plan_svc
from residents_app.uploads import check_upload
from residents_app.works import documents, materials, services
from residents_app.works.api_schemas import StartChecklistSchema

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
                           unmet=[c for c in checks if not c.met],
                           materials=materials.materials_of(plan) if plan else [],
                           result_publicity=documents.plan_result_publicity(plan) if plan else None,
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


def _current_plan_or_404(estate_id: int, *, edit: bool = False):
    estate = estate_or_404(estate_id, edit=edit)
    plan = plan_svc.current_plan(estate.id)
    if plan is None:
        raise NotFound("本小区还没有已发布的改造方案")
    return estate, plan


def _pdf(data: bytes, filename: str) -> Response:
    resp = Response(data, mimetype="application/pdf")
    resp.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(filename)}"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _log_pdf(what: str, plan, now) -> None:
    """Official documents generated from the register and the votes: logged like every other download."""
    log_export(what, estate_id=plan.estate_id, user=current_user, now=now, subject_type="plan_version",
               subject_id=plan.id)
    db.session.commit()


@bp.route("/estates/<int:estate_id>/start/application.pdf")
@staff_required
def start_application_pdf(estate_id: int):
    """① 项目启动申请表 (generated from the data as of now)."""
    estate, plan = _current_plan_or_404(estate_id)
    now = utcnow()
    data = documents.application_form_pdf(plan, now)
    _log_pdf("start_application_pdf", plan, now)
    return _pdf(data, f"{estate.name}-项目启动申请表.pdf")


@bp.route("/estates/<int:estate_id>/start/publicity.pdf")
@staff_required
def start_publicity_pdf(estate_id: int):
    """② 方案表决结果公示书."""
    estate, plan = _current_plan_or_404(estate_id)
    now = utcnow()
    data = documents.publicity_notice_pdf(plan, now)
    _log_pdf("start_publicity_pdf", plan, now)
    return _pdf(data, f"{estate.name}-方案表决结果公示书.pdf")


@bp.route("/estates/<int:estate_id>/start/materials", methods=["POST"])
@staff_required
def start_material_add(estate_id: int):
    """⑤ other materials: PDF, PNG or JPEG up to 10 MB, the type judged by the content."""
    _, plan = _current_plan_or_404(estate_id, edit=True)
    storage = request.files.get("file")
    data = check_upload(storage, materials.MATERIAL_KINDS, materials.MAX_MATERIAL_BYTES, field="file",
                        label="上传的材料")
    m = materials.add_material(plan, title=request.form.get("title", ""), filename=storage.filename, data=data,
                               user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已上传材料：{m.title}", "success")
    return redirect(url_for("works.start", estate_id=estate_id) + "#materials")


@bp.route("/estates/<int:estate_id>/start/materials/<int:material_id>")
@staff_required
def start_material_file(estate_id: int, material_id: int):
    _, plan = _current_plan_or_404(estate_id)
    m = materials.get_material(plan, material_id)
    resp = Response(m.data, mimetype=m.content_type)
    resp.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(m.filename)}"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    return resp


@bp.route("/estates/<int:estate_id>/start/materials/<int:material_id>/delete", methods=["POST"])
@staff_required
def start_material_delete(estate_id: int, material_id: int):
    _, plan = _current_plan_or_404(estate_id, edit=True)
    m = materials.get_material(plan, material_id)
    materials.remove_material(plan, m, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已删除材料：{m.title}", "success")
    return redirect(url_for("works.start", estate_id=estate_id) + "#materials")


@api_bp.route("/estates/<int:estate_id>/start", methods=["GET"])
@api_bp.alt_response(200, schema=StartChecklistSchema, success=True)
@staff_required
def api_start(estate_id: int):
    """The start application checklist, each line met or not with its reason."""
    estate = estate_or_404(estate_id)
    plan = plan_svc.current_plan(estate.id)
    if plan is None:
        raise NotFound("本小区还没有已发布的改造方案")
    application = services.start_application_of(plan)
    checks = services.start_checklist(plan, utcnow())
    return {"plan_id": plan.id, "status": application.status if application else None,
            "checks": [c.as_dict() for c in checks], "can_submit": all(c.met for c in checks),
            "materials": materials.materials_manifest(plan)}
