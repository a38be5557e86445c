"""The resident API of the construction (/api/r/..., resident session): file a complaint or question with photos,
my complaints, the anonymised public list, progress reports with photos, the project (parties, the site contact,
the change log as residents see it, the timeline). The same services and rules as the phone page /r/construction.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from flask import url_for
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from residents_app.auth.resident import Resident
from residents_app.auth.resident_api import register_home_section, resident_or_401
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.funding.resident_api import yuan_text
from residents_app.publicity.holidays import load_calendar
from residents_app.registry.models import Estate
from residents_app.works.construction import changes, complaints, progress, services, timeline
from residents_app.works.construction.models import Complaint


class _FormAndFilesParser(FlaskParser):
    """Location "files" reads the whole multipart form, its fields and its files, so one schema documents and
    checks the complaint's kind, body and photos (OpenAPI 3 has one request body per operation); the schema's own
    `unknown = RAISE` applies (webargs would otherwise exclude unknown files)."""

    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "files": None}

    def load_files(self, req, schema):
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class _Blueprint(ApiBlueprint):
    ARGUMENTS_PARSER = _FormAndFilesParser()


api_bp = _Blueprint("construction_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：投诉咨询、施工进度、参建单位与现场联络人、工程变更、项目进程")


@api_bp.before_request
def _resident_first():
    """No resident session: 401 before the body is even read (the mini-program then asks for the identity check)."""
    resident_or_401()

HOME_COMPLAINTS = 5


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---- schemas ---------------------------------------------------------------------------------------------------

class ComplaintIn(Schema):
    """multipart/form-data: kind, body and up to six photos."""

    class Meta:
        unknown = RAISE

    kind = fields.String(required=True, metadata={"description": "complaint 投诉、question 咨询",
                                                  "example": "complaint"})
    body = fields.String(required=True, metadata={"description": "内容（不超过 2000 字）",
                                                  "example": "夜间 22 点后仍在施工，噪音很大"})
    photos = fields.List(fields.Raw(metadata={"type": "string", "format": "binary"}), load_default=list, metadata={
        "description": f"照片（JPEG 或 PNG，最多 {services.MAX_PHOTOS} 张，每张不超过 10 MB；"
                       "保存时缩小并去除位置等 EXIF 信息）"})


class ComplaintSchema(Schema):
    number = fields.String(metadata={"example": "TS2026-0001"})
    kind = fields.String(metadata={"example": "complaint"})
    kind_label = fields.String(metadata={"example": "投诉"})
    body = fields.String(metadata={"example": "夜间 22 点后仍在施工，噪音很大"})
    state = fields.String(metadata={"description": "open 待答复、answered 已答复", "example": "open"})
    state_label = fields.String(metadata={"example": "待答复"})
    filed_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})
    due_on = fields.String(metadata={"description": "应于该日（北京时间）前答复", "example": "2026-09-08"})
    overdue = fields.Boolean(metadata={"description": "已逾期未答复（已报街道）", "example": False})
    reply = fields.String(metadata={"example": ""})
    replied_at = fields.String(allow_none=True, metadata={"example": None})
    photos = fields.List(fields.String(), metadata={"example": ["/api/r/photos/12"]})


class PublicComplaintSchema(Schema):
    number = fields.String(metadata={"example": "TS2026-0001"})
    kind_label = fields.String(metadata={"example": "投诉"})
    body = fields.String(metadata={"example": "夜间 22 点后仍在施工，噪音很大"})
    state_label = fields.String(metadata={"example": "已答复"})
    filed_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})
    due_on = fields.String(metadata={"example": "2026-09-08"})
    reply = fields.String(metadata={"example": "已要求施工单位 22:00 后停工"})
    replied_at = fields.String(allow_none=True, metadata={"example": "2026-09-02T03:00:00+00:00"})


class ReportSchema(Schema):
    id = fields.Integer(metadata={"example": 5})
    title = fields.String(metadata={"example": "第一周进度"})
    body = fields.String(metadata={"example": "外墙脚手架已搭设完毕"})
    percent_done = fields.Integer(metadata={"example": 20})
    posted_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})
    photos = fields.List(fields.String(), metadata={"example": ["/api/r/photos/7"]})


class ProgressSchema(Schema):
    next_report_due = fields.String(metadata={"description": "下一次进度通报的截止日", "example": "2026-09-15"})
    reports = fields.List(fields.Nested(ReportSchema), metadata={"description": "新的在前"})


class PartySchema(Schema):
    kind = fields.String(metadata={"example": "contractor"})
    kind_label = fields.String(metadata={"example": "施工单位"})
    name = fields.String(metadata={"example": "市政建设公司"})


class SiteContactSchema(PartySchema):
    contact_name = fields.String(metadata={"example": "孙施"})
    contact_phone = fields.String(metadata={"example": "13900001111"})


class WorksChangeSchema(Schema):
    number = fields.Integer(metadata={"example": 2})
    title = fields.String(metadata={"example": "雨水管改线"})
    state = fields.String(metadata={"description": "refused 不予变更、approved 已批准、replanned 重新表决",
                                    "example": "approved"})
    state_label = fields.String(metadata={"example": "已批准"})
    reason = fields.String(metadata={"example": "原设计管线与燃气管冲突"})
    decision_note = fields.String(metadata={"example": ""})
    cost_change = fields.String(metadata={"description": "费用变化（元，正数增加）", "example": "-1200.00"})
    decided_at = fields.String(allow_none=True, metadata={"example": "2026-09-03T02:00:00+00:00"})


class StageSchema(Schema):
    key = fields.String(metadata={"example": "construction"})
    label = fields.String(metadata={"example": "施工"})
    state = fields.String(metadata={"description": "done、current、pending、overdue", "example": "current"})
    state_label = fields.String(metadata={"example": "进行中"})
    on = fields.String(allow_none=True, metadata={"example": "2026-09-01"})
    note = fields.String(metadata={"example": "进度 20%"})
    overdue = fields.List(fields.String(), metadata={"example": []})


class ProjectSchema(Schema):
    estate_name = fields.String(metadata={"example": "幸福小区"})
    started_on = fields.String(metadata={"description": "项目获批启动的日期", "example": "2026-09-01"})
    site_contact = fields.Nested(SiteContactSchema, allow_none=True)
    parties = fields.List(fields.Nested(PartySchema))
    complaint_answer_working_days = fields.Integer(metadata={"example": 5})
    changes = fields.List(fields.Nested(WorksChangeSchema), metadata={"description": "已处理的工程变更"})
    pending_changes = fields.Integer(metadata={"description": "正在审批的变更申请数", "example": 0})
    timeline = fields.List(fields.Nested(StageSchema))


# ---- helpers ---------------------------------------------------------------------------------------------------

def _photo_urls(photos) -> list[str]:
    return [url_for("construction_resident_api.photo", photo_id=p.id) for p in photos]


def complaint_json(c: Complaint, photos, today: date) -> dict:
    return {"number": c.number, "kind": c.kind, "kind_label": c.kind_label, "body": c.body, "state": c.state,
            "state_label": c.state_label, "filed_at": _iso(c.filed_at), "due_on": _iso(c.due_on),
            "overdue": c.is_overdue(today), "reply": c.reply or "", "replied_at": _iso(c.replied_at),
            "photos": _photo_urls(photos)}


def _mine(resident: Resident) -> list[Complaint]:
    return complaints.complaints_of(resident.unit.estate_id, unit_id=resident.unit.id)


# ---- routes ----------------------------------------------------------------------------------------------------

@api_bp.route("/complaints", methods=["POST"])
@api_bp.arguments(ComplaintIn, location="files")
@api_bp.response(201, ComplaintSchema)
def complaint_file(form):
    """File a complaint or a question (multipart/form-data, photos optional): its number and the day it is answered
    by (working days from the holiday calendar)."""
    resident = resident_or_401()
    project = services.project_or_404(resident.unit.estate_id)
    now = utcnow()
    c = complaints.file_complaint(project, unit_id=resident.unit.id, owner_id=resident.owner.id, kind=form["kind"],
                                  body=form["body"], photos=services.read_photos(form["photos"]),
                                  calendar=load_calendar(), now=now)
    db.session.commit()
    return complaint_json(c, services.photos_of("complaint", [c.id])[c.id], timeline.today(now))


@api_bp.route("/complaints", methods=["GET"])
@api_bp.response(200, ComplaintSchema(many=True))
def complaints_mine():
    """My unit's complaints and questions, newest first, with their state and reply."""
    resident = resident_or_401()
    mine = _mine(resident)
    photos = services.photos_of("complaint", [c.id for c in mine])
    today = timeline.today(utcnow())
    return [complaint_json(c, photos[c.id], today) for c in mine]


@api_bp.route("/complaints/public", methods=["GET"])
@api_bp.response(200, PublicComplaintSchema(many=True))
def complaints_public():
    """Every complaint and question of my estate, without unit, owner or photos."""
    resident = resident_or_401()
    return [{**row, "filed_at": _iso(row["filed_at"]), "due_on": _iso(row["due_on"]), "reply": row["reply"] or "",
             "replied_at": _iso(row["replied_at"])} for row in complaints.public_list(resident.unit.estate_id)]


@api_bp.route("/complaints/<number>", methods=["GET"])
@api_bp.response(200, ComplaintSchema)
def complaint_one(number: str):
    """One of my unit's complaints or questions, by its number."""
    resident = resident_or_401()
    c = db.session.execute(sa.select(Complaint).where(
        Complaint.estate_id == resident.unit.estate_id, Complaint.unit_id == resident.unit.id,
        Complaint.number == number[:30])).scalars().first()
    if c is None:
        raise NotFound("找不到该事项", code="no_complaint")
    return complaint_json(c, services.photos_of("complaint", [c.id])[c.id], timeline.today(utcnow()))


@api_bp.route("/progress", methods=["GET"])
@api_bp.response(200, ProgressSchema)
def progress_reports():
    """The progress reports of my estate's project, newest first, with their photos."""
    resident = resident_or_401()
    project = services.project_or_404(resident.unit.estate_id)
    reports = progress.reports_of(project)
    photos = services.photos_of("progress", [r.id for r in reports])
    return {"next_report_due": _iso(progress.next_report_due(project)), "reports": [
        {"id": r.id, "title": r.title, "body": r.body, "percent_done": r.percent_done, "posted_at": _iso(r.posted_at),
         "photos": _photo_urls(photos[r.id])} for r in reports]}


@api_bp.route("/project", methods=["GET"])
@api_bp.response(200, ProjectSchema)
def project_view():
    """My estate's project: its parties and the site contact, the change log as residents see it, the timeline."""
    resident = resident_or_401()
    estate = db.session.get(Estate, resident.unit.estate_id)
    project = services.project_or_404(estate.id)
    contact = services.site_contact(project)
    all_changes = changes.changes_of(project)
    return {
        "estate_name": estate.name, "started_on": _iso(timeline.today(project.decided_at)),
        "site_contact": None if contact is None else {
            "kind": contact.kind, "kind_label": contact.kind_label, "name": contact.name,
            "contact_name": contact.contact_name, "contact_phone": contact.contact_phone},
        "parties": [{"kind": p.kind, "kind_label": p.kind_label, "name": p.name} for p in services.parties_of(project)],
        "complaint_answer_working_days": services.setup_of(project).complaint_answer_working_days,
        "changes": [{"number": ch.number, "title": ch.title, "state": ch.state, "state_label": ch.state_label,
                     "reason": ch.reason, "decision_note": ch.decision_note or "",
                     "cost_change": yuan_text(ch.delta_fen),
                     "decided_at": _iso(ch.decided_at)} for ch in all_changes if ch.state != "submitted"],
        "pending_changes": sum(1 for ch in all_changes if ch.state == "submitted"),
        "timeline": [{"key": s.key, "label": s.label, "state": s.state, "state_label": s.state_label, "on": _iso(s.on),
                      "note": s.note, "overdue": list(s.overdue)}
                     for s in timeline.project_timeline(estate.id, utcnow())]}


@api_bp.route("/photos/<int:photo_id>", methods=["GET"])
@api_bp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg")
def photo(photo_id: int):
    """A photo of my estate's progress reports, or of my own unit's complaints (JPEG, EXIF removed)."""
    from residents_app.works.construction.views import photo_response

    return photo_response(services.resident_photo(resident_or_401().unit, photo_id))


def _home_complaints(resident: Resident, now: datetime) -> dict | None:
    if services.project_of(resident.unit.estate_id) is None:
        return None
    mine = _mine(resident)
    today = timeline.today(now)
    return {"open": sum(1 for c in mine if c.state == "open"), "total": len(mine), "latest": [
        {"number": c.number, "kind_label": c.kind_label, "state_label": c.state_label, "due_on": _iso(c.due_on),
         "overdue": c.is_overdue(today)} for c in mine[:HOME_COMPLAINTS]]}


register_home_section("complaints", _home_complaints)
