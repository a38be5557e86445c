"""Resident supervisors (民间监理员, issue 16 item 5): owners appointed by the committee record inspections (date,
place, finding, photos) from their unit's link; a problem found becomes a rectification item (整改)."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import WorkCalendar, beijing_date, publicity_last_day
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Owner
from residents_app.works.construction import services
from residents_app.works.construction.models import Inspection, Party, ResidentSupervisor
from residents_app.works.models import StartApplication

RECTIFY_WORKING_DAYS = 5  # a problem found by a resident supervisor is due this many working days later


def supervisors_of(project: StartApplication, *, active_only: bool = True) -> list[ResidentSupervisor]:
    q = sa.select(ResidentSupervisor).where(ResidentSupervisor.start_application_id == project.id)
    if active_only:
        q = q.where(ResidentSupervisor.ended_at.is_(None))
    return list(db.session.execute(q.order_by(ResidentSupervisor.id)).scalars())


def supervisor_for(project: StartApplication, owner_id: int) -> ResidentSupervisor | None:
    return db.session.execute(sa.select(ResidentSupervisor).where(
        ResidentSupervisor.start_application_id == project.id, ResidentSupervisor.owner_id == owner_id,
        ResidentSupervisor.ended_at.is_(None))).scalars().first()


def appoint(project: StartApplication, owner_id: int, *, user, now: datetime) -> ResidentSupervisor:
    owner = db.session.get(Owner, owner_id)
    if owner is None or owner.estate_id != project.estate_id:
        raise ValidationFailed("请选择本小区的业主", errors={"owner_id": ["不是本小区的业主"]})
    if supervisor_for(project, owner_id) is not None:
        raise Conflict(f"{owner.name} 已是民间监理员", code="already_supervisor")
    s = ResidentSupervisor(estate_id=project.estate_id, start_application_id=project.id, owner_id=owner_id,
                           appointed_at=now, appointed_by_id=user.id)
    db.session.add(s)
    db.session.flush()
    record("construction.supervisor_appointed", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="resident_supervisor", subject_id=s.id, data={"owner_id": owner_id})
    return s


def end_appointment(project: StartApplication, supervisor_id: int, *, user, now: datetime) -> None:
    s = db.session.get(ResidentSupervisor, supervisor_id)
    if s is None or s.start_application_id != project.id or s.ended_at is not None:
        raise NotFound("找不到该民间监理员")
    s.ended_at = now
    record("construction.supervisor_ended", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="resident_supervisor", subject_id=s.id, data={"owner_id": s.owner_id})


def record_inspection(project: StartApplication, supervisor: ResidentSupervisor, *, inspected_on: str, place: str,
                      finding: str, has_problem: bool, photos: list[bytes], calendar: WorkCalendar,
                      now: datetime) -> Inspection:
    errors = {}
    try:
        day = date.fromisoformat(str(inspected_on or "").strip())
    except ValueError:
        day = None
        errors["inspected_on"] = ["请按 2026-09-01 的格式填写日期"]
    if day is not None and day > beijing_date(now):
        errors["inspected_on"] = ["巡查日期不能晚于今天"]
    place, finding = (place or "").strip(), (finding or "").strip()
    if not place or len(place) > 200:
        errors["place"] = ["请填写巡查部位（不超过 200 字）"]
    if not finding:
        errors["finding"] = ["请填写巡查情况"]
    if errors:
        raise ValidationFailed("巡查记录有误", errors=errors)
    insp = Inspection(estate_id=project.estate_id, start_application_id=project.id, supervisor_id=supervisor.id,
                      inspected_on=day, place=place, finding=finding, has_problem=bool(has_problem),
                      recorded_at=now)
    db.session.add(insp)
    db.session.flush()
    services.attach_photos(project.estate_id, "inspection", insp.id, photos, now)
    actor = f"owner:{supervisor.owner_id}"
    record("construction.inspection_recorded", chain=project.estate_id, actor=actor, now=now,
           subject_type="inspection", subject_id=insp.id,
           data={"inspected_on": day.isoformat(), "place": place, "has_problem": insp.has_problem,
                 "photos": len(photos)})
    if insp.has_problem:
        contractor = db.session.execute(sa.select(Party).where(Party.start_application_id == project.id,
                                                               Party.kind == "contractor")).scalars().first()
        insp.rectification_item = services.open_rectification(
            project, source="inspection", source_id=insp.id, description=f"{place}：{finding}",
            owner_party=contractor, due_on=publicity_last_day(beijing_date(now), RECTIFY_WORKING_DAYS, calendar),
            user=None, now=now)
    return insp


def inspections_of(project: StartApplication) -> list[Inspection]:
    return list(db.session.execute(sa.select(Inspection).where(Inspection.start_application_id == project.id)
                                   .order_by(Inspection.inspected_on.desc(), Inspection.id.desc())).scalars())
