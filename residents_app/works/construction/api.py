"""JSON API of the construction (/api/construction): the project's timeline and its public construction facts."""

from __future__ import annotations

from residents_app.auth.scoping import estate_or_404, roles_required
from residents_app.db import utcnow
from residents_app.works.api_schemas import ProjectTimelineSchema, StaffComplaintListSchema
from residents_app.works.construction import complaints, services, timeline
from residents_app.works.construction.blueprints import api_bp


@api_bp.route("/estates/<int:estate_id>/timeline", methods=["GET"])
@api_bp.alt_response(200, schema=ProjectTimelineSchema, success=True)
@roles_required("admin", "street", "committee")
def api_timeline(estate_id: int):
    """Each stage of the project with its date, state and what is overdue."""
    estate = estate_or_404(estate_id)
    return {"estate_id": estate.id, "stages": [
        {"key": s.key, "label": s.label, "state": s.state, "on": s.on.isoformat() if s.on else None,
         "note": s.note, "overdue": s.overdue} for s in timeline.project_timeline(estate.id, utcnow())]}


@api_bp.route("/estates/<int:estate_id>/complaints", methods=["GET"])
@api_bp.alt_response(200, schema=StaffComplaintListSchema, success=True)
@roles_required("admin", "street", "committee")
def api_complaints(estate_id: int):
    """Complaints and questions with their number, due day and state."""
    estate = estate_or_404(estate_id)
    services.project_or_404(estate.id)
    today = timeline.today(utcnow())
    return {"complaints": [
        {"number": c.number, "kind": c.kind, "state": c.state, "filed_at": c.filed_at.isoformat(),
         "due_on": c.due_on.isoformat(), "overdue": c.is_overdue(today), "flagged": c.flagged_at is not None}
        for c in complaints.complaints_of(estate.id)]}
