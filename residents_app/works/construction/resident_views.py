"""The residents' phone pages of the construction: the site contact, progress with photos, the change log,
complaints and questions (their own and the anonymised public list), and a resident supervisor's inspections."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from residents_app.auth.resident import current_resident, resident_required
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.publicity.holidays import load_calendar
from residents_app.registry.models import Estate
from residents_app.rounds.resident_views import RESIDENT_LINKS
from residents_app.works.construction import changes, complaints, progress, services, supervisors
from residents_app.works.construction.blueprints import bp

CONSTRUCTION_LINK = ("/r/construction", "施工进展、投诉咨询")
if CONSTRUCTION_LINK not in RESIDENT_LINKS:  # the resident home's menu
    RESIDENT_LINKS.append(CONSTRUCTION_LINK)


@bp.route("/r/construction")
@resident_required
def resident_index():
    res = current_resident()
    estate = db.session.get(Estate, res.unit.estate_id)
    project = services.project_of(estate.id)
    if project is None:
        return render_template("resident/construction.html", estate=estate, project=None)
    reports = progress.reports_of(project)
    mine = complaints.complaints_of(estate.id, unit_id=res.unit.id)
    supervisor = supervisors.supervisor_for(project, res.owner.id)
    return render_template(
        "resident/construction.html", estate=estate, project=project, contact=services.site_contact(project),
        reports=reports, report_photos=services.photos_of("progress", [r.id for r in reports]),
        changes=[c for c in changes.changes_of(project) if c.state != "submitted"],
        pending_changes=len([c for c in changes.changes_of(project) if c.state == "submitted"]),
        mine=mine, mine_photos=services.photos_of("complaint", [c.id for c in mine]),
        public=complaints.public_list(estate.id), supervisor=supervisor,
        today=services_today(), setup=services.setup_of(project))


def services_today():
    from residents_app.works.construction.timeline import today

    return today(utcnow())


@bp.route("/r/complaints", methods=["POST"])
@resident_required
def resident_complain():
    res = current_resident()
    project = services.project_or_404(res.unit.estate_id)
    c = complaints.file_complaint(project, unit_id=res.unit.id, owner_id=res.owner.id,
                                  kind=request.form.get("kind", ""), body=request.form.get("body", ""),
                                  photos=services.read_photos(request.files.getlist("photos")),
                                  calendar=load_calendar(), now=utcnow())
    db.session.commit()
    flash(f"已提交，编号 {c.number}，将于 {c.due_on:%Y年%m月%d日} 前答复", "success")
    return redirect(url_for("construction.resident_index") + "#mine")


@bp.route("/r/inspections", methods=["POST"])
@resident_required
def resident_inspect():
    res = current_resident()
    project = services.project_or_404(res.unit.estate_id)
    supervisor = supervisors.supervisor_for(project, res.owner.id)
    if supervisor is None:
        raise NotFound("您不是本项目的民间监理员")
    f = request.form
    insp = supervisors.record_inspection(
        project, supervisor, inspected_on=f.get("inspected_on", ""), place=f.get("place", ""),
        finding=f.get("finding", ""), has_problem=f.get("has_problem") == "1",
        photos=services.read_photos(request.files.getlist("photos")), calendar=load_calendar(), now=utcnow())
    db.session.commit()
    flash("巡查记录已提交" + ("，发现的问题已转为整改事项" if insp.has_problem else ""), "success")
    return redirect(url_for("construction.resident_index") + "#inspect")


@bp.route("/r/construction/photos/<int:photo_id>")
@resident_required
def resident_photo(photo_id: int):
    """Progress and inspection photos for the estate's residents; a complaint's photos for its own unit only."""
    from residents_app.works.construction.views import photo_response

    return photo_response(services.resident_photo(current_resident().unit, photo_id))
