"""Pages of publicity: committee (/estates/<id>/publicity, /publicity/<id>), the public notice board
(/p/<estate_code>, no login), residents (/r/publicity, /r/objections) and the calendar (/admin/calendar).

Views parse, call a service, commit, render. Nothing else.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app import qr
from residents_app.audit.services import actor_for_user
from residents_app.auth.resident import current_resident, resident_required
from residents_app.auth.scoping import can_see_estate, estate_or_404, roles_required, staff_required
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.publicity import holidays, services
from residents_app.publicity.models import Objection, Publicity, PublicityDocument
from residents_app.publicity.schemas import PublicityStatusSchema, StatusQuerySchema
from residents_app.registry.models import Estate
from residents_app.uploads import check_upload

bp = Blueprint("publicity", __name__)
api_bp = ApiBlueprint("publicity_api", __name__, url_prefix="/api/publicity", description="公示")


def _parse_date(value: str, field: str, label: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}“{value}”无效，应为 YYYY-MM-DD",
                               errors={field: "日期格式应为 YYYY-MM-DD"}) from None


def _read_document(storage) -> bytes:
    return check_upload(storage, ("pdf", "png", "jpeg"), services.MAX_DOCUMENT_BYTES, field="documents",
                        label=f"附件“{storage.filename}”")


def _read_photo(storage) -> bytes:
    return check_upload(storage, ("png", "jpeg"), services.MAX_PHOTO_BYTES, field="photo", label="照片")


def _publicity_for_staff(publicity_id: int, *, edit: bool = False) -> Publicity:
    pub = services.get_publicity(publicity_id)
    estate_or_404(pub.estate_id, edit=edit)
    return pub


# ---- committee ------------------------------------------------------------------------------------

@bp.route("/estates/<int:estate_id>/publicity", methods=["GET", "POST"])
@staff_required
def estate_publicity(estate_id: int):
    now = utcnow()
    if request.method == "POST":
        estate = estate_or_404(estate_id, edit=True)
        f = request.form
        actor = actor_for_user(current_user)
        subject_type, subject_id = f.get("subject_type", ""), f.get("subject_id", "")
        if f.get("subject"):  # the page's select: "round_result:12"
            subject_type, _, subject_id = f["subject"].partition(":")
        pub = services.post_publicity(
            estate, subject_type=subject_type, subject_id=subject_id,
            title=f.get("title", ""), notice_text=f.get("notice_text", ""),
            posted_on=_parse_date(f.get("posted_on", ""), "posted_on", "张贴日期"),
            working_days=f.get("working_days", "5"), actor=actor, now=now,
            backdate_reason=f.get("backdate_reason", ""))
        for storage in request.files.getlist("documents"):
            if storage and storage.filename:
                services.add_document(pub, storage.filename, _read_document(storage),
                                      actor=actor, now=now)
        db.session.commit()
        flash(f"已发布公示：{pub.title}", "success")
        return redirect(url_for("publicity.detail", publicity_id=pub.id))
    estate = estate_or_404(estate_id)
    items = services.estate_publicity(estate.id)
    cal = holidays.load_calendar()
    return render_template("publicity/estate_list.html", estate=estate, items=items,
                           subjects=services.publishable_subjects(estate),
                           period_text=lambda p: services.period_text(p, cal), today=services.beijing_date(now),
                           can_edit=_can_edit(estate))


def _can_edit(estate: Estate) -> bool:
    from residents_app.auth.scoping import can_edit_estate

    return can_edit_estate(current_user, estate)


@bp.route("/publicity/<int:publicity_id>")
@staff_required
def detail(publicity_id: int):
    pub = _publicity_for_staff(publicity_id)
    estate = db.session.get(Estate, pub.estate_id)
    now = utcnow()
    return render_template("publicity/detail.html", pub=pub, estate=estate, now=now,
                           reasons=pub.reasons_not_complete(now), period=services.period_text(pub),
                           can_edit=_can_edit(estate))


@bp.route("/publicity/<int:publicity_id>/documents", methods=["POST"])
@staff_required
def add_documents(publicity_id: int):
    pub = _publicity_for_staff(publicity_id, edit=True)
    files = [s for s in request.files.getlist("documents") if s and s.filename]
    if not files:
        raise ValidationFailed("请选择要上传的文件", errors={"documents": "未选择文件"})
    now, actor = utcnow(), actor_for_user(current_user)
    for storage in files:
        services.add_document(pub, storage.filename, _read_document(storage),
                              actor=actor, now=now)
    db.session.commit()
    flash(f"已上传 {len(files)} 个文件", "success")
    return redirect(url_for("publicity.detail", publicity_id=pub.id))


def _send_document(doc: PublicityDocument) -> Response:
    resp = Response(doc.data, mimetype=doc.content_type)
    from urllib.parse import quote

    resp.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(doc.filename)}"
    return resp


@bp.route("/publicity/<int:publicity_id>/documents/<int:document_id>")
@staff_required
def staff_document(publicity_id: int, document_id: int):
    pub = _publicity_for_staff(publicity_id)
    doc = db.session.get(PublicityDocument, document_id)
    if doc is None or doc.publicity_id != pub.id:
        raise NotFound("找不到该文件")
    return _send_document(doc)


def _objection_for_staff(publicity_id: int, objection_id: int, *, edit: bool) -> Objection:
    pub = _publicity_for_staff(publicity_id, edit=edit)
    obj = db.session.get(Objection, objection_id)
    if obj is None or obj.publicity_id != pub.id:
        raise NotFound("找不到该异议")
    return obj


@bp.route("/publicity/<int:publicity_id>/objections/<int:objection_id>/photo")
@staff_required
def objection_photo(publicity_id: int, objection_id: int):
    obj = _objection_for_staff(publicity_id, objection_id, edit=False)
    if not obj.has_photo:
        raise NotFound("该异议没有照片")
    return Response(obj.photo, mimetype=obj.photo_type)


@bp.route("/publicity/<int:publicity_id>/objections/<int:objection_id>/mediate", methods=["POST"])
@staff_required
def mediate(publicity_id: int, objection_id: int):
    obj = _objection_for_staff(publicity_id, objection_id, edit=True)
    f = request.form
    services.mediate(obj, outcome=f.get("outcome", ""), notes=f.get("notes", ""), answer=f.get("answer", ""),
                     action=f.get("action", "none"), extra_days=f.get("extra_days") or None,
                     reason=f.get("reason", ""), actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash("已记录协商调解结果", "success")
    return redirect(url_for("publicity.detail", publicity_id=publicity_id))


@bp.route("/publicity/<int:publicity_id>/extend", methods=["POST"])
@staff_required
def extend(publicity_id: int):
    pub = _publicity_for_staff(publicity_id, edit=True)
    services.extend_publicity(pub, request.form.get("extra_days"), request.form.get("reason", ""),
                              actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash(f"公示已延长至 {pub.last_day:%Y-%m-%d}", "success")
    return redirect(url_for("publicity.detail", publicity_id=pub.id))


@bp.route("/publicity/<int:publicity_id>/restart", methods=["POST"])
@staff_required
def restart(publicity_id: int):
    pub = _publicity_for_staff(publicity_id, edit=True)
    services.restart_publicity(pub, request.form.get("reason", ""), actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash(f"已重新公示，至 {pub.last_day:%Y-%m-%d}", "success")
    return redirect(url_for("publicity.detail", publicity_id=pub.id))


@bp.route("/publicity/<int:publicity_id>/complete", methods=["POST"])
@staff_required
def complete(publicity_id: int):
    pub = _publicity_for_staff(publicity_id, edit=True)
    services.complete_publicity(pub, actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash("公示已结束", "success")
    return redirect(url_for("publicity.detail", publicity_id=pub.id))


# ---- public notice board (no login) ---------------------------------------------------------------

def _estate_by_code(code: str) -> Estate:
    estate = db.session.execute(sa.select(Estate).where(Estate.code == code)).scalar_one_or_none()
    if estate is None:
        raise NotFound("找不到该小区")
    return estate


def board_url(estate: Estate) -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.url_root
    return base.rstrip("/") + url_for("publicity.board", estate_code=estate.code)


@bp.route("/p/<estate_code>")
def board(estate_code: str):
    estate = _estate_by_code(estate_code)
    now = utcnow()
    cal = holidays.load_calendar()
    return render_template("publicity/board.html", estate=estate, board=services.board(estate.id, now),
                           period_text=lambda p: services.period_text(p, cal), url=board_url(estate), now=now)


@bp.route("/p/<estate_code>/qr.svg")
def board_qr(estate_code: str):
    estate = _estate_by_code(estate_code)
    return Response(qr.svg(board_url(estate), scale=6, border=2), mimetype="image/svg+xml")


@bp.route("/p/<estate_code>/documents/<token>")
def public_document(estate_code: str, token: str):
    """A document by its random token (ids are sequential), only once its publicity is posted."""
    estate = _estate_by_code(estate_code)
    doc = db.session.execute(
        sa.select(PublicityDocument).where(PublicityDocument.token == token)).scalar_one_or_none()
    if doc is None or doc.publicity.estate_id != estate.id or not doc.is_public_at(utcnow()):
        raise NotFound("找不到该文件")
    return _send_document(doc)


# ---- residents ------------------------------------------------------------------------------------

@bp.route("/r/publicity")
@resident_required
def resident_publicity():
    res = current_resident()
    now = utcnow()
    cal = holidays.load_calendar()
    data = services.board(res.unit.estate_id, now)
    estate = db.session.get(Estate, res.unit.estate_id)
    return render_template("resident/publicity.html", estate=estate, current=data["current"],
                           past=data["past"][:5], period_text=lambda p: services.period_text(p, cal), now=now)


@bp.route("/r/objections", methods=["GET", "POST"])
@resident_required
def resident_objections():
    res = current_resident()
    now = utcnow()
    if request.method == "POST":
        try:
            pid = int(request.form.get("publicity_id", ""))
        except ValueError:
            raise ValidationFailed("请选择要提出异议的公示", errors={"publicity_id": "未选择"}) from None
        pub = db.session.get(Publicity, pid)
        if pub is None or pub.estate_id != res.unit.estate_id:
            raise NotFound("找不到该公示")
        photo = request.files.get("photo")
        data = _read_photo(photo) if photo and photo.filename else None
        services.raise_objection(pub, unit=res.unit, owner=res.owner, text=request.form.get("text", ""),
                                 photo=data, now=now)
        db.session.commit()
        flash("您的异议已提交，业委会将与您协商并答复。", "success")
        return redirect(url_for("publicity.resident_objections"))
    open_items = [p for p in services.board(res.unit.estate_id, now)["current"] if p.is_open_at(now)]
    selected = request.args.get("publicity_id", type=int)
    return render_template("resident/objections.html", open_items=open_items, selected=selected,
                           mine=services.objections_of_unit(res.unit.id), unit=res.unit)


@bp.route("/r/objections/<int:objection_id>/withdraw", methods=["POST"])
@resident_required
def resident_withdraw(objection_id: int):
    res = current_resident()
    obj = db.session.get(Objection, objection_id)
    if obj is None or obj.unit_id != res.unit.id:
        raise NotFound("找不到该异议")
    services.withdraw_own_objection(obj, unit=res.unit, owner=res.owner, now=utcnow())
    db.session.commit()
    flash("已撤回异议", "success")
    return redirect(url_for("publicity.resident_objections"))


# ---- the calendar (administrator) -----------------------------------------------------------------

@bp.route("/admin/calendar")
@roles_required("admin")
def admin_calendar():
    return render_template("admin/calendar.html", info=holidays.calendar_overview(utcnow()))


@bp.route("/admin/calendar/overrides", methods=["POST"])
@roles_required("admin")
def admin_set_override():
    f = request.form
    day = _parse_date(f.get("day", ""), "day", "日期")
    kind = f.get("kind", "")
    if kind not in ("rest", "work"):
        raise ValidationFailed("请选择该日是放假（休）还是上班（班）", errors={"kind": "未选择"})
    holidays.set_override(day, kind == "work", f.get("note", ""), actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash(f"已保存 {day.isoformat()}：{'上班' if kind == 'work' else '放假'}", "success")
    return redirect(url_for("publicity.admin_calendar"))


@bp.route("/admin/calendar/overrides/delete", methods=["POST"])
@roles_required("admin")
def admin_delete_override():
    day = _parse_date(request.form.get("day", ""), "day", "日期")
    holidays.delete_override(day, actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash(f"已删除 {day.isoformat()} 的调整", "success")
    return redirect(url_for("publicity.admin_calendar"))


@bp.route("/admin/calendar/years", methods=["POST"])
@roles_required("admin")
def admin_declare_year():
    try:
        year = int(request.form.get("year", ""))
    except ValueError:
        raise ValidationFailed("年份须为四位数字", errors={"year": request.form.get("year", "")}) from None
    holidays.declare_year(year, actor=actor_for_user(current_user), now=utcnow())
    db.session.commit()
    flash(f"{year} 年已确认完整，可以计算该年的公示期", "success")
    return redirect(url_for("publicity.admin_calendar"))


# ---- JSON API -------------------------------------------------------------------------------------

@api_bp.route("/status", methods=["GET"])
@api_bp.arguments(StatusQuerySchema, location="query")
@api_bp.alt_response(200, schema=PublicityStatusSchema, success=True)
@staff_required
def api_status(args):
    """Publicity state of a subject: posted, ended, open objections, reasons it is not complete."""
    # A subject outside the caller's scope answers exactly as one that does not exist.
    estate_id = services.subject_estate_id(args["subject_type"], args["subject_id"])
    estate = db.session.get(Estate, estate_id) if estate_id is not None else None
    if estate is None or not can_see_estate(current_user, estate):
        raise NotFound("找不到该公示对象")
    return services.publicity_status(args["subject_type"], args["subject_id"], utcnow())
