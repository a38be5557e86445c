"""Pages and JSON API of the joint acceptance (/estates/<id>/acceptance, /acceptance/<id>...); the evaluation's
pages (evaluation_views.py) and the archive's (archive_views.py) hang on the same blueprints.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import quote

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.auth.models import User
from residents_app.auth.scoping import can_see_estate, estate_or_404, roles_required, staff_required
from residents_app.core.calendar import beijing_date
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.uploads import check_upload
from residents_app.works.acceptance import documents, services
from residents_app.works.acceptance.models import ROLE_LABELS, ROLES
from residents_app.works.api_schemas import AcceptanceOutSchema
from residents_app.works.construction import services as construction

bp = Blueprint("acceptance", __name__)
# A construction party's own account (role "party") sees, signs and downloads its project's acceptance only.
signatory_required = roles_required("admin", "street", "committee", "party")
api_bp = ApiBlueprint("acceptance_api", __name__, url_prefix="/api/works", description="竣工验收、归档移交、问效评价")


def parse_day(value: str, field: str, label: str) -> date:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}须为日期（如 2026-09-01）", errors={field: "日期格式有误"}) from None


def _acceptance_or_404(acceptance_id: int):
    acc = services.get_acceptance(acceptance_id)
    estate = estate_or_404(acc.estate_id)
    services.require_party_of_project(acc, current_user)
    return acc, estate


def _user_by_name(username: str, estate, field: str) -> int | None:
    username = (username or "").strip()
    if not username:
        return None
    user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None or not can_see_estate(user, estate):
        raise ValidationFailed(f"找不到能查看本小区的账号「{username}」", errors={field: "账号不存在或不属于本小区"})
    return user.id


@bp.route("/estates/<int:estate_id>/acceptance", methods=["GET", "POST"])
@staff_required
def acceptance_list(estate_id: int):
    estate = estate_or_404(estate_id)
    if request.method == "POST":
        f = request.form
        rows = [services.ParticipantInput(
            role=f.get(f"role{n}", ""), organisation=f.get(f"organisation{n}", ""), name=f.get(f"name{n}", ""),
            user_id=_user_by_name(f.get(f"username{n}", ""), estate, f"username{n}")) for n in range(1, 13)]
        acc = services.open_acceptance(estate, title=f.get("title", ""),
                                       held_on=parse_day(f.get("held_on", ""), "held_on", "验收日期"),
                                       place=f.get("place", ""), participants=rows, user=current_user, now=utcnow())
        db.session.commit()
        flash("已发起共同验收", "success")
        return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))
    return render_template("works/acceptance/list.html", estate=estate, items=services.acceptances_of(estate.id),
                           roles=ROLES, role_labels=ROLE_LABELS, today=beijing_date(utcnow()))


@bp.route("/acceptance/<int:acceptance_id>")
@signatory_required
def acceptance_detail(acceptance_id: int):
    acc, estate = _acceptance_or_404(acceptance_id)
    project = construction.project_of(estate.id)
    return render_template("works/acceptance/detail.html", acc=acc, estate=estate,
                           reasons=acc.reasons_not_passed(), publicity=services.publicity_of(acc),
                           today=beijing_date(utcnow()), parties=construction.parties_of(project) if project else [])


@bp.route("/acceptance/<int:acceptance_id>/participants/<int:participant_id>/sign", methods=["POST"])
@signatory_required
def acceptance_sign(acceptance_id: int, participant_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    p = services.sign_online(acc, participant_id, user=current_user, opinion=request.form.get("opinion", ""),
                             now=utcnow())
    db.session.commit()
    flash(f"{p.display}已签字", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


@bp.route("/acceptance/<int:acceptance_id>/participants/<int:participant_id>/scan", methods=["GET", "POST"])
@staff_required
def acceptance_scan(acceptance_id: int, participant_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    if request.method == "GET":
        p = services.participant_of(acc, participant_id)
        if p.scan is None:
            raise NotFound("该单位没有纸质签字扫描件")
        return Response(p.scan, mimetype=p.scan_content_type, headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(p.scan_filename or 'scan')}"})
    file = request.files.get("scan")
    data = check_upload(file, ("pdf", "jpeg", "png"), 10 * 1024 * 1024, field="scan", label="签字扫描件")
    kind = {b"%PDF": "application/pdf", b"\x89PNG": "image/png"}.get(data[:4], "image/jpeg")
    p = services.enter_paper_signature(acc, participant_id, data=data, filename=file.filename or "scan",
                                       content_type=kind, opinion=request.form.get("opinion", ""),
                                       user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已录入{p.display}的纸质签字，请另一位成员核对确认", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


@bp.route("/acceptance/<int:acceptance_id>/participants/<int:participant_id>/confirm", methods=["POST"])
@staff_required
def acceptance_confirm(acceptance_id: int, participant_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    p = services.confirm_paper_signature(acc, participant_id, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已确认{p.display}的纸质签字", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


@bp.route("/acceptance/<int:acceptance_id>/issues", methods=["POST"])
@staff_required
def acceptance_issue_add(acceptance_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    f = request.form
    party = (f.get("owner_party_id") or "").strip()
    issue = services.add_issue(acc, description=f.get("description", ""), owner=f.get("owner", ""),
                               due_on=parse_day(f.get("due_on", ""), "due_on", "整改期限"), user=current_user,
                               now=utcnow(), owner_party_id=int(party) if party.isdigit() else None)
    db.session.commit()
    flash(f"已登记整改项 #{issue.number}", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


@bp.route("/acceptance/<int:acceptance_id>/issues/<int:issue_id>/close", methods=["POST"])
@staff_required
def acceptance_issue_close(acceptance_id: int, issue_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    issue = services.close_issue(acc, issue_id, note=request.form.get("note", ""), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"整改项 #{issue.number} 已整改完毕", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


@bp.route("/acceptance/<int:acceptance_id>/record.pdf")
@signatory_required
def acceptance_pdf(acceptance_id: int):
    acc, estate = _acceptance_or_404(acceptance_id)
    pdf = documents.acceptance_pdf(acc, estate, now=utcnow())
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f"inline; filename*=UTF-8''{quote(f'验收记录-{acc.id}.pdf')}"})


@bp.route("/acceptance/<int:acceptance_id>/publicity", methods=["POST"])
@staff_required
def acceptance_publicity(acceptance_id: int):
    acc = services.get_acceptance(acceptance_id)
    estate = estate_or_404(acc.estate_id, edit=True)
    now = utcnow()
    services.post_acceptance_publicity(acc, estate, posted_on=beijing_date(now), user=current_user, now=now)
    db.session.commit()
    flash("验收结果已公示", "success")
    return redirect(url_for("acceptance.acceptance_detail", acceptance_id=acc.id))


def acceptance_json(acc) -> dict:
    return {"id": acc.id, "estate_id": acc.estate_id, "title": acc.title, "held_on": acc.held_on.isoformat(),
            "status": acc.status, "passed_at": acc.passed_at.isoformat() if acc.passed_at else None,
            "reasons": acc.reasons_not_passed(),
            "participants": [{"id": p.id, "role": p.role, "organisation": p.organisation, "name": p.name,
                              "signed": p.is_signed, "method": p.signature_method,
                              "signed_at": p.signed_at.isoformat() if p.signed_at else None}
                             for p in acc.participants],
            "issues": [{"id": i.id, "number": i.number, "description": i.description, "owner": i.owner,
                        "due_on": i.due_on.isoformat(), "status": i.status} for i in acc.issues]}


@api_bp.route("/acceptance/<int:acceptance_id>")
@api_bp.alt_response(200, schema=AcceptanceOutSchema, success=True)
@signatory_required
def api_acceptance(acceptance_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    return acceptance_json(acc)


@api_bp.route("/acceptance/<int:acceptance_id>/participants/<int:participant_id>/sign", methods=["POST"])
@api_bp.alt_response(200, schema=AcceptanceOutSchema, success=True)
@signatory_required
def api_acceptance_sign(acceptance_id: int, participant_id: int):
    acc, _ = _acceptance_or_404(acceptance_id)
    body = request.get_json(silent=True) or {}
    services.sign_online(acc, participant_id, user=current_user, opinion=str(body.get("opinion", "")), now=utcnow())
    db.session.commit()
    return acceptance_json(acc)


from residents_app.works.acceptance import archive_views, evaluation_views  # noqa: E402, F401  (routes on bp)
