"""Register pages (/estates/<id>, units, import, export) and the JSON API (/api/estates)."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.audit.services import actor_for_user, log_export
from residents_app.auth.scoping import can_edit_estate, estate_or_404, staff_required, visible_estates_query
from residents_app.db import utcnow
from residents_app.errors import DomainError, ValidationFailed
from residents_app.extensions import db
from residents_app.ints import MAX_PAGE, query_int
from residents_app.registry import importer, services, uploads
from residents_app.registry import roster as roster_svc
from residents_app.registry.cli import register_cli
from residents_app.registry.models import UNIT_KIND_LABELS
from residents_app.registry.schemas import (
    EstateDetailSchema,
    EstateSchema,
    ImportFileSchema,
    ImportFormSchema,
    ImportResultSchema,
    OwnerAddSchema,
    OwnerSchema,
    UnitPageSchema,
    UnitQuerySchema,
    UnitSchema,
    UnitUpdateSchema,
)

# cli_group=None merges `flask register ...` into the app's commands (create_app registers one group per feature).
bp = Blueprint("registry", __name__, cli_group=None)
bp.cli.add_command(register_cli)
api_bp = ApiBlueprint("registry_api", __name__, url_prefix="/api/estates", description="小区名册")

FEATURE_LINKS = (
    ("rounds", "征求与表决"),
    ("links", "入户二维码"),
    ("publicity", "公示与异议"),
    ("plans", "改造方案"),
    ("funding", "资金筹集"),
    ("start", "项目启动"),
    ("dashboard", "进度与核验"),
)
TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")


def _actor() -> str:
    return actor_for_user(current_user)


# ---- stored uploads: the commit step re-parses the file kept on the server ------------------------

def _upload_dir(estate_id: int) -> Path:
    return uploads.upload_dir(estate_id)


def _store_upload(estate_id: int, filename: str, data: bytes) -> str:
    return uploads.store(estate_id, "xlsx" if importer.is_xlsx(filename, data) else "csv", data)


def _load_upload(estate_id: int, token: str) -> tuple[Path, bytes]:
    if not TOKEN_RE.match(token or ""):
        raise ValidationFailed("上传的文件已失效，请重新上传", code="upload_expired")
    for ext in ("xlsx", "csv"):
        path = _upload_dir(estate_id) / f"{token}.{ext}"
        if path.exists():
            return path, path.read_bytes()
    raise ValidationFailed("上传的文件已失效，请重新上传", code="upload_expired")


# ---- pages -------------------------------------------------------------------------------------

@bp.route("/estates/<int:estate_id>")
@staff_required
def estate_overview(estate_id: int):
    estate = estate_or_404(estate_id)
    summary = services.register_summary(estate.id)
    links = [(f"/estates/{estate.id}/{path}", label) for path, label in FEATURE_LINKS]
    return render_template("registry/estate.html", estate=estate, summary=summary, links=links,
                           can_edit=can_edit_estate(current_user, estate))


@bp.route("/estates/<int:estate_id>/units")
@staff_required
def unit_list(estate_id: int):
    estate = estate_or_404(estate_id)
    q = request.args.get("q", "").strip()[:60]
    building_id = query_int("building", label="楼栋")
    page = query_int("page", 1, max_value=MAX_PAGE, label="页码") or 1
    result = services.search_units(estate.id, q, building_id=building_id, page=page, per_page=50)
    return render_template("registry/units.html", estate=estate, result=result, q=q, building_id=building_id,
                           kind_labels=UNIT_KIND_LABELS, can_edit=can_edit_estate(current_user, estate))


def _unit_page(estate, unit, errors=None, form=None, status=200, revealed=None):
    return render_template("registry/unit.html", estate=estate, unit=unit, errors=errors or {}, form=form or {},
                           kind_labels=UNIT_KIND_LABELS, can_edit=can_edit_estate(current_user, estate),
                           can_reveal=services.may_reveal_phone(current_user, estate),
                           revealed=revealed or {}), status


@bp.route("/estates/<int:estate_id>/units/<int:unit_id>", methods=["GET", "POST"])
@staff_required
def unit_edit(estate_id: int, unit_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    unit = services.get_unit(estate.id, unit_id)
    if request.method == "GET":
        return _unit_page(estate, unit)
    kind = request.form.get("kind")
    try:
        services.update_unit(estate.id, unit.id, actor=_actor(), now=utcnow(),
                             title_area_m2=request.form.get("title_area_m2", "").strip(),
                             kind=kind if kind else None,
                             is_hardship=request.form.get("is_hardship") == "1")
    except ValidationFailed as exc:
        db.session.rollback()
        unit = services.get_unit(estate.id, unit_id)
        return _unit_page(estate, unit, errors=exc.errors, form=request.form, status=422)
    db.session.commit()
    flash(f"已保存 {unit.label}", "success")
    return redirect(url_for("registry.unit_edit", estate_id=estate.id, unit_id=unit.id))


@bp.route("/estates/<int:estate_id>/units/<int:unit_id>/owners/<int:owner_id>/phone", methods=["POST"])
@staff_required
def owner_phone_reveal(estate_id: int, unit_id: int, owner_id: int):
    """The full number, on request, for the estate's committee only (logged); answered in this response alone
    (no redirect, no flash) and not cached."""
    estate = estate_or_404(estate_id)
    if not services.may_reveal_phone(current_user, estate):
        raise DomainError("只有本小区业委会可以查看完整手机号", code="forbidden", status=403)
    phone = services.reveal_phone(estate.id, unit_id, owner_id, actor=_actor(), now=utcnow())
    db.session.commit()
    unit = services.get_unit(estate.id, unit_id)
    body, status = _unit_page(estate, unit, revealed={owner_id: phone})
    return body, status, {"Cache-Control": "no-store"}


@bp.route("/estates/<int:estate_id>/units/<int:unit_id>/owners", methods=["POST"])
@staff_required
def owner_add(estate_id: int, unit_id: int):
    estate = estate_or_404(estate_id, edit=True)
    unit = services.get_unit(estate.id, unit_id)
    try:
        owner = services.add_owner(estate.id, unit.id, name=request.form.get("name", ""),
                                   phone=request.form.get("phone", ""), id_last4=request.form.get("id_last4") or None,
                                   actor=_actor(), now=utcnow())
    except DomainError as exc:
        db.session.rollback()
        unit = services.get_unit(estate.id, unit_id)
        errors = exc.errors or {"owner": exc.message}
        return _unit_page(estate, unit, errors=errors, form=request.form, status=exc.status)
    db.session.commit()
    flash(f"已为 {unit.label} 添加业主 {owner.name}", "success")
    return redirect(url_for("registry.unit_edit", estate_id=estate.id, unit_id=unit.id))


@bp.route("/estates/<int:estate_id>/units/<int:unit_id>/owners/<int:owner_id>/remove", methods=["POST"])
@staff_required
def owner_remove(estate_id: int, unit_id: int, owner_id: int):
    estate = estate_or_404(estate_id, edit=True)
    unit = services.get_unit(estate.id, unit_id)
    try:
        services.remove_owner(estate.id, unit.id, owner_id, actor=_actor(), now=utcnow())
    except DomainError as exc:
        if exc.status == 404:
            raise
        db.session.rollback()
        unit = services.get_unit(estate.id, unit_id)
        return _unit_page(estate, unit, errors={"owner": exc.message}, status=exc.status)
    db.session.commit()
    flash(f"已从 {unit.label} 移除该业主", "success")
    return redirect(url_for("registry.unit_edit", estate_id=estate.id, unit_id=unit.id))


@bp.route("/estates/<int:estate_id>/owners/<int:owner_id>", methods=["GET", "POST"])
@staff_required
def owner_edit(estate_id: int, owner_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    owner = services.get_owner(estate.id, owner_id)
    errors, status = {}, 200
    if request.method == "POST":
        try:
            # The form shows the number masked; left empty it keeps the registered one.
            services.update_owner(estate.id, owner.id, name=request.form.get("name", ""),
                                  phone=request.form.get("phone", "").strip() or owner.phone,
                                  id_last4=request.form.get("id_last4") or None,
                                  actor=_actor(), now=utcnow())
        except ValidationFailed as exc:
            db.session.rollback()
            owner = services.get_owner(estate.id, owner_id)
            errors, status = exc.errors, 422
        else:
            db.session.commit()
            flash(f"已保存业主 {owner.name}", "success")
            return redirect(url_for("registry.owner_edit", estate_id=estate.id, owner_id=owner.id))
    return render_template("registry/owner.html", estate=estate, owner=owner, errors=errors,
                           form=request.form if errors else {}, can_edit=can_edit_estate(current_user, estate)), status


@bp.route("/estates/<int:estate_id>/import", methods=["GET", "POST"])
@staff_required
def import_page(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    if request.method == "GET":
        return render_template("registry/import.html", estate=estate, plan=None, errors=None, token=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("registry/import.html", estate=estate, plan=None, token=None,
                               errors=[importer.RowError(1, "", "请选择要上传的名册文件（CSV 或 XLSX）")]), 422
    data = upload.read()
    filename = upload.filename
    try:
        plan = roster_svc.import_roster(estate, filename, data, actor=_actor(), now=utcnow(), dry_run=True)
    except roster_svc.RosterRejected as exc:
        db.session.rollback()
        return render_template("registry/import.html", estate=estate, plan=None, token=None,
                               errors=exc.row_errors, filename=filename), 422
    db.session.rollback()
    token = _store_upload(estate.id, filename, data)
    return render_template("registry/import.html", estate=estate, plan=plan, errors=None, token=token,
                           filename=filename)


@bp.route("/estates/<int:estate_id>/import/commit", methods=["POST"])
@staff_required
def import_commit(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    path, data = _load_upload(estate.id, request.form.get("token", ""))
    try:
        plan = roster_svc.import_roster(estate, path.name, data, actor=_actor(), now=utcnow())
    except roster_svc.RosterRejected as exc:
        db.session.rollback()
        return render_template("registry/import.html", estate=estate, plan=None, token=None,
                               errors=exc.row_errors), 422
    db.session.commit()
    path.unlink(missing_ok=True)
    if plan.has_changes:
        c = plan.counts()
        flash(f"名册已导入：新增 {c['units_added']} 户、修改 {c['units_changed']} 户、"
              f"新增业主 {c['owners_added']} 人", "success")
    else:
        flash("名册与现有登记一致，没有变化", "success")
    if plan.units_missing:
        flash(f"有 {len(plan.units_missing)} 个房号不在文件中，已保留未删除：" + "、".join(plan.units_missing[:30]),
              "error")
    return redirect(url_for("registry.estate_overview", estate_id=estate.id))


@bp.route("/estates/<int:estate_id>/export.xlsx")
@staff_required
def export_xlsx(estate_id: int):
    estate = estate_or_404(estate_id)
    import io

    rows = roster_svc.roster_rows(estate.id)
    data = roster_svc.export_roster_xlsx(estate.id, rows=rows)
    log_export("register_xlsx", estate_id=estate.id, user=current_user, now=utcnow(), subject_type="estate",
               subject_id=estate.id, rows=len(rows))
    db.session.commit()
    resp = send_file(io.BytesIO(data), as_attachment=True, download_name=f"{estate.code}-名册.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", max_age=0,
                     etag=False, conditional=False)
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---- JSON API -----------------------------------------------------------------------------------

@api_bp.route("/")
@api_bp.response(200, EstateSchema(many=True))
@staff_required
def api_estates():
    """Estates the user may see."""
    return db.session.execute(visible_estates_query()).scalars().all()


@api_bp.route("/<int:estate_id>")
@api_bp.response(200, EstateDetailSchema)
@staff_required
def api_estate(estate_id: int):
    """An estate with its register summary (units, households, owners as persons, title area)."""
    estate = estate_or_404(estate_id)
    return {"id": estate.id, "code": estate.code, "name": estate.name, "address": estate.address,
            "street_office_id": estate.street_office_id, "street_office": estate.street_office,
            "summary": services.register_summary(estate.id), "can_edit": can_edit_estate(current_user, estate),
            "street_office_name": estate.street_office.name}


@api_bp.route("/<int:estate_id>/units")
@api_bp.arguments(UnitQuerySchema, location="query")
@api_bp.response(200, UnitPageSchema)
@staff_required
def api_units(args, estate_id: int):
    """Units of the estate, searched and paged."""
    estate = estate_or_404(estate_id)
    result = services.search_units(estate.id, args["q"], building_id=args["building_id"], page=args["page"],
                                   per_page=args["per_page"])
    # Names of the owners of every unit (phones masked): a register download page by page, logged like one.
    log_export("register_units_api", estate_id=estate.id, user=current_user, now=utcnow(), subject_type="estate",
               subject_id=estate.id, rows=len(result.items))
    payload = UnitPageSchema().dump(result)  # before the commit expires the loaded units
    db.session.commit()
    return jsonify(payload)


@api_bp.route("/<int:estate_id>/units/<int:unit_id>")
@api_bp.response(200, UnitSchema)
@staff_required
def api_unit(estate_id: int, unit_id: int):
    estate = estate_or_404(estate_id)
    return services.get_unit(estate.id, unit_id)


@api_bp.route("/<int:estate_id>/units/<int:unit_id>", methods=["PATCH"])
@api_bp.arguments(UnitUpdateSchema)
@api_bp.response(200, UnitSchema)
@staff_required
def api_unit_update(data, estate_id: int, unit_id: int):
    """Change title area, kind or hardship flag (recorded in the audit log)."""
    estate = estate_or_404(estate_id, edit=True)
    unit = services.update_unit(estate.id, unit_id, actor=_actor(), now=utcnow(), **data)
    db.session.commit()
    return unit


@api_bp.route("/<int:estate_id>/units/<int:unit_id>/owners", methods=["POST"])
@api_bp.arguments(OwnerAddSchema)
@api_bp.response(201, UnitSchema)
@staff_required
def api_owner_add(data, estate_id: int, unit_id: int):
    """Add a (co-)owner; a phone already in the estate is the same person."""
    estate = estate_or_404(estate_id, edit=True)
    services.add_owner(estate.id, unit_id, actor=_actor(), now=utcnow(), **data)
    db.session.commit()
    return services.get_unit(estate.id, unit_id)


@api_bp.route("/<int:estate_id>/units/<int:unit_id>/owners/<int:owner_id>", methods=["DELETE"])
@api_bp.response(200, UnitSchema)
@staff_required
def api_owner_remove(estate_id: int, unit_id: int, owner_id: int):
    """Remove a co-owner (not the last one)."""
    estate = estate_or_404(estate_id, edit=True)
    services.remove_owner(estate.id, unit_id, owner_id, actor=_actor(), now=utcnow())
    db.session.commit()
    return services.get_unit(estate.id, unit_id)


@api_bp.route("/<int:estate_id>/owners/<int:owner_id>", methods=["PUT"])
@api_bp.arguments(OwnerAddSchema)
@api_bp.response(200, OwnerSchema)
@staff_required
def api_owner_update(data, estate_id: int, owner_id: int):
    """Correct an owner's name, phone or ID digits (for every unit they own)."""
    estate = estate_or_404(estate_id, edit=True)
    owner = services.update_owner(estate.id, owner_id, actor=_actor(), now=utcnow(), **data)
    db.session.commit()
    return owner


@api_bp.route("/<int:estate_id>/import", methods=["POST"])
@api_bp.arguments(ImportFormSchema, location="form")
@api_bp.arguments(ImportFileSchema, location="files")
@api_bp.response(200, ImportResultSchema)
@staff_required
def api_import(form, files, estate_id: int):
    """Import a roster (multipart `file`); `dry_run=true` reports without writing. Bad rows: 422, nothing written."""
    estate = estate_or_404(estate_id, edit=True)
    upload = files["file"]
    data = upload.read()
    plan = roster_svc.import_roster(estate, upload.filename or "", data, actor=_actor(), now=utcnow(),
                                  dry_run=form["dry_run"])
    if form["dry_run"]:
        db.session.rollback()
    else:
        db.session.commit()
    return plan.as_dict()
