"""Complaints and questions (投诉、咨询, issue 16 item 4): filed from a unit's link, numbered, answered within a
number of working days (the holiday calendar), flagged to the street office when overdue."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import WorkCalendar, beijing_date, publicity_last_day
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.notify.outbox import queue
from residents_app.notify.templates import render
from residents_app.registry.models import Estate, Unit
from residents_app.works.construction import services
from residents_app.works.construction.models import COMPLAINT_KINDS, Complaint
from residents_app.works.models import StartApplication

MAX_BODY = 2000


def answer_due_on(filed_on: date, working_days: int, calendar: WorkCalendar) -> date:
    """The last day to answer: `working_days` working days after the filing day (which never counts), rest days
    and make-up working days as the calendar has them."""
    return publicity_last_day(filed_on, working_days, calendar)


def _next_number(estate_id: int, year: int) -> str:
    prefix = f"TS{year}-"
    count = db.session.execute(sa.select(sa.func.count(Complaint.id)).where(
        Complaint.estate_id == estate_id, Complaint.number.like(f"{prefix}%"))).scalar_one()
    return f"{prefix}{count + 1:04d}"


def file_complaint(project: StartApplication, *, unit_id: int, owner_id: int, kind: str, body: str,
                   photos: list[bytes], calendar: WorkCalendar, now: datetime) -> Complaint:
    errors = {}
    if kind not in COMPLAINT_KINDS:
        errors["kind"] = ["请选择投诉或咨询"]
    body = (body or "").strip()
    if not body:
        errors["body"] = ["请填写内容"]
    elif len(body) > MAX_BODY:
        errors["body"] = [f"内容不超过 {MAX_BODY} 字"]
    if errors:
        raise ValidationFailed("提交的内容有误", errors=errors)
    setup = services.lock_project(project)
    filed_on = beijing_date(now)
    c = Complaint(estate_id=project.estate_id, start_application_id=project.id,
                  number=_next_number(project.estate_id, filed_on.year), kind=kind, unit_id=unit_id,
                  owner_id=owner_id, body=body, filed_at=now,
                  due_on=answer_due_on(filed_on, setup.complaint_answer_working_days, calendar), state="open")
    db.session.add(c)
    db.session.flush()
    services.attach_photos(project.estate_id, "complaint", c.id, photos, now)
    record("construction.complaint_filed", chain=project.estate_id, actor=f"unit:{unit_id}", now=now,
           subject_type="complaint", subject_id=c.id,
           data={"number": c.number, "kind": kind, "due_on": c.due_on.isoformat(), "photos": len(photos)})
    return c


def get_complaint(estate_id: int, complaint_id: int) -> Complaint:
    c = db.session.get(Complaint, complaint_id)
    if c is None or c.estate_id != estate_id:
        raise NotFound("找不到该事项")
    return c


def answer_complaint(c: Complaint, *, reply: str, user, now: datetime) -> Complaint:
    """Answer it, and queue the message that tells the complainant's unit (issue 17 item 5: complaint answered)."""
    c.answer(reply=reply, user_id=user.id, now=now)
    record("construction.complaint_answered", chain=c.estate_id, actor=actor_for_user(user), now=now,
           subject_type="complaint", subject_id=c.id,
           data={"number": c.number, "late": beijing_date(now) > c.due_on})
    queue_answer_notice(c, now)
    return c


SUBJECT_MAX = 20


def answer_notice_key(complaint_id: int) -> str:
    return f"complaint:{complaint_id}:answered"


def queue_answer_notice(c: Complaint, now: datetime):
    """The outbox message to the unit that filed `c` (once per complaint; held until 08:00 in quiet hours)."""
    body = " ".join(c.body.split())
    subject = f"{c.number} {body[:SUBJECT_MAX]}" + ("…" if len(body) > SUBJECT_MAX else "")
    msg = render("complaint_answered", estate=db.session.get(Estate, c.estate_id).name,
                 unit=db.session.get(Unit, c.unit_id).label, subject=subject, answer=c.reply)
    return queue(estate_id=c.estate_id, unit_id=c.unit_id, text=msg.text, title=msg.title, now=now,
                 dedupe_key=answer_notice_key(c.id))


def complaints_of(estate_id: int, *, unit_id: int | None = None) -> list[Complaint]:
    q = sa.select(Complaint).where(Complaint.estate_id == estate_id)
    if unit_id is not None:
        q = q.where(Complaint.unit_id == unit_id)
    return list(db.session.execute(q.order_by(Complaint.filed_at.desc(), Complaint.id.desc())).scalars())


def public_list(estate_id: int) -> list[dict]:
    """The anonymised list every resident sees: no unit, no owner, no photos."""
    return [{"number": c.number, "kind_label": c.kind_label, "filed_at": c.filed_at, "due_on": c.due_on,
             "state_label": c.state_label, "body": c.body, "reply": c.reply, "replied_at": c.replied_at}
            for c in complaints_of(estate_id)]


def overdue_complaints(*, now: datetime, street_office_id: int | None = None) -> list[Complaint]:
    """Open complaints past their due day (Beijing), optionally of one street office's estates."""
    from residents_app.registry.models import Estate

    q = sa.select(Complaint).where(Complaint.state == "open", Complaint.due_on < beijing_date(now))
    if street_office_id is not None:
        q = q.join(Estate, Estate.id == Complaint.estate_id).where(Estate.street_office_id == street_office_id)
    return list(db.session.execute(q.order_by(Complaint.due_on, Complaint.id)).scalars())


def flag_overdue_complaints(now: datetime) -> int:
    """Scheduler step: each overdue complaint is flagged to the street office once (flagged_at, an audit record).
    Idempotent."""
    n = 0
    for c in overdue_complaints(now=now):
        if c.flagged_at is not None:
            continue
        c.flagged_at = now
        record("construction.complaint_overdue", chain=c.estate_id, actor="system:scheduler", now=now,
               subject_type="complaint", subject_id=c.id, data={"number": c.number, "due_on": c.due_on.isoformat()})
        n += 1
    db.session.flush()
    return n
