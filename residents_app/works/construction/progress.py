"""Progress reports (工程进度定期通报, issue 16 item 3): posted with photos by the contractor or the committee; the
next one is due `report_interval_days` after the last (or after the start's approval); the scheduler reminds once
per missed due date."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.works.construction import services
from residents_app.works.construction.models import ProgressReport
from residents_app.works.models import StartApplication


def post_report(project: StartApplication, *, title: str, body: str, percent_done, photos: list[bytes], user,
                now: datetime) -> ProgressReport:
    errors = {}
    title, body = (title or "").strip(), (body or "").strip()
    if not title or len(title) > 200:
        errors["title"] = ["请填写标题（不超过 200 字）"]
    if not body:
        errors["body"] = ["请填写进度说明"]
    pct = str(percent_done or "").strip()
    if not pct.isdigit() or int(pct) > 100:
        errors["percent_done"] = ["完成比例须为 0 至 100 的整数"]
    if errors:
        raise ValidationFailed("进度通报有误", errors=errors)
    r = ProgressReport(estate_id=project.estate_id, start_application_id=project.id, title=title, body=body,
                       percent_done=int(pct), posted_at=now, posted_by_id=user.id)
    db.session.add(r)
    db.session.flush()
    services.attach_photos(project.estate_id, "progress", r.id, photos, now)
    record("construction.progress_posted", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="progress_report", subject_id=r.id,
           data={"title": title, "percent_done": r.percent_done, "photos": len(photos)})
    return r


def reports_of(project: StartApplication) -> list[ProgressReport]:
    return list(db.session.execute(sa.select(ProgressReport).where(ProgressReport.start_application_id == project.id)
                                   .order_by(ProgressReport.posted_at.desc(), ProgressReport.id.desc())).scalars())


def next_report_due(project: StartApplication) -> date:
    """The day by which the next report is due (Beijing): the interval after the last report, or the approval."""
    last = db.session.execute(sa.select(sa.func.max(ProgressReport.posted_at)).where(
        ProgressReport.start_application_id == project.id)).scalar_one()
    interval = services.setup_of(project).report_interval_days
    return beijing_date(last or project.decided_at) + timedelta(days=interval)


def report_overdue(project: StartApplication, now: datetime) -> bool:
    return beijing_date(now) > next_report_due(project)


def remind_overdue_reports(now: datetime) -> int:
    """Scheduler step: every project whose report is overdue is reminded once per missed due date (an audit
    record the committee and the contractor see). Idempotent."""
    projects = db.session.execute(sa.select(StartApplication).where(StartApplication.status == "approved")
                                  .order_by(StartApplication.id)).scalars().all()
    n = 0
    for project in projects:
        if services.project_of(project.estate_id) is not project:
            continue  # a replaced plan's application: only the estate's current project is reported on
        due = next_report_due(project)
        setup = services.setup_of(project)
        if beijing_date(now) <= due or setup.reminded_for == due:
            continue
        setup.reminded_for = due
        record("construction.progress_overdue", chain=project.estate_id, actor="system:scheduler", now=now,
               subject_type="start_application", subject_id=project.id, data={"due_on": due.isoformat()})
        n += 1
    db.session.flush()
    return n
