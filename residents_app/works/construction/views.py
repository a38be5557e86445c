"""Construction pages for the committee, the street office and the project's parties (/estates/<id>/construction),
the residents' phone pages (resident_views.py) and the JSON API (api.py)."""

from __future__ import annotations

from urllib.parse import quote

import sqlalchemy as sa
from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.auth.scoping import estate_or_404, roles_required
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound
from residents_app.extensions import db
from residents_app.registry.models import Owner
from residents_app.works.construction import (
    api,  # noqa: F401  (registers routes)
    changes,
    complaints,
    progress,
    resident_views,  # noqa: F401  (registers routes)
    services,
    supervisors,
    timeline,
)
from residents_app.works.construction.blueprints import api_bp, bp
from residents_app.works.construction.models import PARTY_KIND_LABELS, SIGN_MODE_LABELS

__all__ = ["api_bp", "bp"]

construction_roles = roles_required("admin", "street", "committee", "party")


def project_for_user(estate_id: int, *, edit: bool = False):
    """The estate and its project as the signed-in user may see them: a party account only its own project."""
    estate = estate_or_404(estate_id, edit=edit)
    project = services.project_or_404(estate.id)
    if current_user.role == "party":
        party = services.party_of_user(current_user)
        if party is None or party.start_application_id != project.id:
            raise NotFound("找不到该小区")
    return estate, project


def _back(estate_id: int, anchor: str):
    return redirect(url_for("construction.index", estate_id=estate_id) + f"#{anchor}")


@bp.route("/estates/<int:estate_id>/construction")
@construction_roles
def index(estate_id: int):
    estate = estate_or_404(estate_id)
    project = services.project_of(estate.id)
    if project is None:
        return render_template("works/construction/index.html", estate=estate, project=None,
                               stages=timeline.project_timeline(estate.id, utcnow()))
    estate, project = project_for_user(estate_id)
    now = utcnow()
    reports = progress.reports_of(project)
    all_complaints = complaints.complaints_of(estate.id)
    inspections = supervisors.inspections_of(project)
    owners = db.session.query(Owner).filter(Owner.estate_id == estate.id).order_by(Owner.name).all()
    party = services.party_of_user(current_user)
    return render_template(
        "works/construction/index.html", estate=estate, project=project, now=now,
        setup=services.setup_of(project), parties=services.parties_of(project),
        contact=services.site_contact(project), party=party, to_sign=_acceptances_of_party(party),
        changes=changes.changes_of(project), reports=reports,
        report_photos=services.photos_of("progress", [r.id for r in reports]),
        next_due=progress.next_report_due(project), report_overdue=progress.report_overdue(project, now),
        complaints=all_complaints, complaint_photos=services.photos_of("complaint", [c.id for c in all_complaints]),
        today=timeline.today(now), supervisors=supervisors.supervisors_of(project), owners=owners,
        inspections=inspections, inspection_photos=services.photos_of("inspection", [i.id for i in inspections]),
        rectifications=services.rectifications_of(project), kind_labels=PARTY_KIND_LABELS,
        sign_mode_labels=SIGN_MODE_LABELS, role=current_user.role,
        stages=timeline.project_timeline(estate.id, now))


@bp.route("/estates/<int:estate_id>/construction/setup", methods=["POST"])
@roles_required("admin", "committee")
def setup(estate_id: int):
    _, project = project_for_user(estate_id, edit=True)
    services.update_setup(project, report_interval_days=request.form.get("report_interval_days"),
                          complaint_answer_working_days=request.form.get("complaint_answer_working_days"),
                          user=current_user, now=utcnow())
    db.session.commit()
    flash("设置已保存", "success")
    return _back(estate_id, "setup")


def _acceptances_of_party(party) -> list:
    """The acceptances in which this party (a `party` account's) takes part: its row, to sign online."""
    if party is None:
        return []
    from residents_app.works.acceptance.models import AcceptanceParticipant  # same layer; imports this package

    return list(db.session.execute(sa.select(AcceptanceParticipant).where(AcceptanceParticipant.party_id == party.id)
                                   .order_by(AcceptanceParticipant.id.desc())).scalars())


@bp.route("/estates/<int:estate_id>/construction/parties", methods=["POST"])
@roles_required("admin", "committee")
def party_add(estate_id: int):
    _, project = project_for_user(estate_id, edit=True)
    f = request.form
    p = services.add_party(project, kind=f.get("kind", ""), name=f.get("name", ""),
                           contact_name=f.get("contact_name", ""), contact_phone=f.get("contact_phone", ""),
                           is_site_contact=f.get("is_site_contact") == "1", sign_mode=f.get("sign_mode", "paper"),
                           username=f.get("username", ""), password=f.get("password", ""), user=current_user,
                           now=utcnow())
    db.session.commit()
    flash(f"已添加{p.kind_label}：{p.name}", "success")
    return _back(estate_id, "parties")


@bp.route("/estates/<int:estate_id>/construction/parties/<int:party_id>/site-contact", methods=["POST"])
@roles_required("admin", "committee")
def party_site_contact(estate_id: int, party_id: int):
    _, project = project_for_user(estate_id, edit=True)
    p = services.get_party(project, party_id)
    services.set_site_contact(project, p, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"现场联络人：{p.contact_name}（{p.name}）", "success")
    return _back(estate_id, "parties")


@bp.route("/estates/<int:estate_id>/construction/changes", methods=["POST"])
@construction_roles
def change_add(estate_id: int):
    _, project = project_for_user(estate_id, edit=current_user.role != "party")
    if current_user.role == "street":
        abort(404)
    f = request.form
    file = request.files.get("explanation")
    data = file.stream.read(changes.MAX_EXPLANATION_BYTES + 1) if file and file.filename else None
    ch = changes.submit_change(project, title=f.get("title", ""), reason=f.get("reason", ""),
                               cost_effect=changes.parse_cost_effect(f.get("cost_effect", "")),
                               moves_residents=f.get("moves_residents") == "1", explanation=data,
                               explanation_filename=file.filename if file else "", user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已登记变更申请第 {ch.number} 号", "success")
    return _back(estate_id, "changes")


def _decide_change(estate_id: int, change_id: int, action: str):
    _, project = project_for_user(estate_id)
    if current_user.role == "committee":
        estate_or_404(estate_id, edit=True)
    ch = changes.get_change(project, change_id)
    now, note = utcnow(), request.form.get("note", "")
    if action == "refuse":
        changes.refuse_change(ch, note=note, user=current_user, now=now)
        msg = f"变更第 {ch.number} 号：不予变更"
    elif action == "approve":
        if current_user.role == "admin":
            raise DomainError("请由业委会和街道分别审批", code="forbidden", status=403)
        changes.approve_change(ch, note=note, user=current_user, now=now)
        msg = f"变更第 {ch.number} 号：{ch.state_label}"
    elif current_user.role == "committee":  # replan: the committee's plan goes back to the residents
        changes.send_to_residents(ch, project, user=current_user, now=now)
        msg = "已生成新版方案草稿：修改后发布并重新表决"
    else:
        abort(404)
    db.session.commit()
    flash(msg, "success")
    return _back(estate_id, "changes")


@bp.route("/estates/<int:estate_id>/construction/changes/<int:change_id>/refuse", methods=["POST"])
@roles_required("admin", "street", "committee")
def change_refuse(estate_id: int, change_id: int):
    return _decide_change(estate_id, change_id, "refuse")


@bp.route("/estates/<int:estate_id>/construction/changes/<int:change_id>/approve", methods=["POST"])
@roles_required("admin", "street", "committee")
def change_approve(estate_id: int, change_id: int):
    return _decide_change(estate_id, change_id, "approve")


@bp.route("/estates/<int:estate_id>/construction/changes/<int:change_id>/replan", methods=["POST"])
@roles_required("admin", "street", "committee")
def change_replan(estate_id: int, change_id: int):
    """A change of the residents' costs or scope: a new plan version (draft) and then a new plan vote."""
    return _decide_change(estate_id, change_id, "replan")


@bp.route("/estates/<int:estate_id>/construction/changes/<int:change_id>/explanation")
@construction_roles
def change_explanation(estate_id: int, change_id: int):
    _, project = project_for_user(estate_id)
    ch = changes.get_change(project, change_id)
    resp = Response(ch.explanation, mimetype=ch.explanation_type)
    resp.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(ch.explanation_filename)}"
    return resp


@bp.route("/estates/<int:estate_id>/construction/progress", methods=["POST"])
@construction_roles
def progress_add(estate_id: int):
    _, project = project_for_user(estate_id, edit=current_user.role != "party")
    party = services.party_of_user(current_user)
    if current_user.role == "street" or (party is not None and party.kind not in ("contractor", "builder")):
        abort(404)
    f = request.form
    progress.post_report(project, title=f.get("title", ""), body=f.get("body", ""),
                         percent_done=f.get("percent_done", ""),
                         photos=services.read_photos(request.files.getlist("photos")), user=current_user,
                         now=utcnow())
    db.session.commit()
    flash("进度通报已发布，居民可在手机上查看", "success")
    return _back(estate_id, "progress")


@bp.route("/estates/<int:estate_id>/construction/complaints/<int:complaint_id>/answer", methods=["POST"])
@construction_roles
def complaint_answer(estate_id: int, complaint_id: int):
    estate, _ = project_for_user(estate_id, edit=current_user.role != "party")
    c = complaints.get_complaint(estate.id, complaint_id)
    complaints.answer_complaint(c, reply=request.form.get("reply", ""), user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已答复 {c.number}", "success")
    return _back(estate_id, "complaints")


@bp.route("/estates/<int:estate_id>/construction/supervisors", methods=["POST"])
@roles_required("admin", "committee")
def supervisor_add(estate_id: int):
    _, project = project_for_user(estate_id, edit=True)
    owner_id = request.form.get("owner_id", type=int)
    supervisors.appoint(project, owner_id or 0, user=current_user, now=utcnow())
    db.session.commit()
    flash("已聘任民间监理员", "success")
    return _back(estate_id, "supervisors")


@bp.route("/estates/<int:estate_id>/construction/supervisors/<int:supervisor_id>/end", methods=["POST"])
@roles_required("admin", "committee")
def supervisor_end(estate_id: int, supervisor_id: int):
    _, project = project_for_user(estate_id, edit=True)
    supervisors.end_appointment(project, supervisor_id, user=current_user, now=utcnow())
    db.session.commit()
    flash("已解聘", "success")
    return _back(estate_id, "supervisors")


@bp.route("/estates/<int:estate_id>/construction/rectifications/<int:item_id>/close", methods=["POST"])
@roles_required("admin", "committee")
def rectification_close(estate_id: int, item_id: int):
    _, project = project_for_user(estate_id, edit=True)
    services.close_rectification(project, item_id, note=request.form.get("note", ""), user=current_user,
                                 now=utcnow())
    db.session.commit()
    flash("整改事项已关闭", "success")
    return _back(estate_id, "rectifications")


@bp.route("/estates/<int:estate_id>/construction/photos/<int:photo_id>")
@construction_roles
def photo(estate_id: int, photo_id: int):
    estate, _ = project_for_user(estate_id)
    return photo_response(services.get_photo(estate.id, photo_id))


def photo_response(p) -> Response:
    resp = Response(p.data, mimetype=p.content_type)
    resp.headers["Cache-Control"] = "private, max-age=3600"
    return resp


@bp.route("/construction/overdue")
@roles_required("admin", "street")
def overdue():
    """The street office's list of complaints past their answer day, across its estates."""
    office = None if current_user.role == "admin" else current_user.street_office_id
    items = complaints.overdue_complaints(now=utcnow(), street_office_id=office)
    return render_template("works/construction/overdue.html", items=items, today=timeline.today(utcnow()))



@bp.app_template_global("construction_timeline")
def construction_timeline(estate_id: int):
    """For the dashboards' include (templates/works/construction/_timeline.html)."""
    return timeline.project_timeline(estate_id, utcnow())


@bp.app_template_global("construction_summary")
def construction_summary(estate_id: int) -> str:
    return timeline.summary(timeline.project_timeline(estate_id, utcnow()))
