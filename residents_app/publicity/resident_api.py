"""The resident API of publicity (/api/r/board, /api/r/publicities/<id>/objections, /api/r/objections; resident
session): my estate's notice board with its documents, filing and withdrawing an objection, my objections with the
committee's answer; the home section "notices".

The same rules as the H5 pages (/r/publicity, /r/objections): services.raise_objection decides the window
(from 00:00 of the posting day to 24:00 of the last working day, Beijing time) and the text. A publicity of
another estate, or one not yet posted, answers 404 as an unknown id.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, request, url_for
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields, validate

from residents_app.auth.resident import Resident
from residents_app.auth.resident_api import register_home_section, resident_or_401
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.formatting import to_local
from residents_app.publicity import holidays, services
from residents_app.publicity.models import Objection, Publicity
from residents_app.registry.models import Estate

api_bp = ApiBlueprint("publicity_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：本小区公示栏、公示文件、异议")


@api_bp.before_request
def _signed_in():
    resident_or_401()  # before the body is read: without a session, 401 whatever was sent


# ---- schemas ---------------------------------------------------------------------------------------

class DocumentSchema(Schema):
    filename = fields.String(metadata={"example": "表决结果.pdf"})
    content_type = fields.String(metadata={"example": "application/pdf"})
    size_bytes = fields.Integer(metadata={"example": 182044})
    url = fields.String(metadata={"description": "下载地址（无需登录）",
                                  "example": "https://example.org/p/E1/documents/3bX9…"})


class PublicityChangeSchema(Schema):
    kind = fields.String(metadata={"description": "extend 延长 / restart 重新公示", "example": "extend"})
    kind_label = fields.String(metadata={"example": "延长公示"})
    reason = fields.String(metadata={"example": "有住户提出异议，延长公示以便协商"})
    new_last_day = fields.Date(metadata={"example": "2026-09-15"})


class NoticeSchema(Schema):
    id = fields.Integer(metadata={"example": 7})
    title = fields.String(metadata={"example": "加装电梯意见征询结果公示"})
    subject_type = fields.String(metadata={"example": "round_result"})
    subject_label = fields.String(metadata={"example": "表决结果"})
    status = fields.String(metadata={"description": "posted / extended / completed", "example": "posted"})
    status_label = fields.String(metadata={"example": "公示中"})
    posted_on = fields.Date(metadata={"example": "2026-09-01"})
    last_day = fields.Date(metadata={"example": "2026-09-08"})
    working_days = fields.Integer(metadata={"example": 5})
    period = fields.String(metadata={"example": "公示期：2026-09-02 至 2026-09-08（5个工作日）"})
    ends_at = fields.DateTime(metadata={"description": "异议截止时刻（最后一天 24:00 北京时间）",
                                        "example": "2026-09-08T16:00:00+00:00"})
    objections_open = fields.Boolean(metadata={"description": "此刻能否对本公示提出异议", "example": True})
    documents = fields.List(fields.Nested(DocumentSchema))


class NoticeDetailSchema(NoticeSchema):
    notice_text = fields.String(metadata={"example": "经表决，本小区加装电梯事项获得通过，现予公示。"})
    outcome_lines = fields.List(fields.String(), metadata={"example": ["同意：4 户，300.00 平方米"]})
    unit_list_title = fields.String(metadata={"example": "同意的房屋"})
    unit_labels = fields.List(fields.String(), metadata={"example": ["1幢-101", "1幢-102"]})
    changes = fields.List(fields.Nested(PublicityChangeSchema))


class ObjectionInSchema(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(required=True, validate=validate.Length(min=1, max=services.MAX_TEXT),
                         metadata={"example": "公示的同意户数与实际不符，请核实。"})


class ObjectionSchema(Schema):
    id = fields.Integer(metadata={"example": 5})
    publicity_id = fields.Integer(metadata={"example": 7})
    publicity_title = fields.String(metadata={"example": "加装电梯意见征询结果公示"})
    text = fields.String(metadata={"example": "公示的同意户数与实际不符，请核实。"})
    raised_at = fields.DateTime(metadata={"example": "2026-09-02T02:00:00+00:00"})
    status = fields.String(metadata={
        "description": "open 待处理 / withdrawn 已撤回 / answered 已答复 / upheld 异议成立", "example": "answered"})
    status_label = fields.String(metadata={"example": "已答复"})
    answer = fields.String(metadata={"description": "业委会的答复（尚未答复时为空）", "example": "已核实，公示无误。"})
    resolved_at = fields.DateTime(allow_none=True, metadata={"example": "2026-09-03T08:00:00+00:00"})
    can_withdraw = fields.Boolean(metadata={"example": False})


# ---- reading ---------------------------------------------------------------------------------------

def _document_url(estate: Estate, token: str) -> str:
    base = (current_app.config.get("PUBLIC_BASE_URL") or request.url_root).rstrip("/")
    return base + url_for("publicity.public_document", estate_code=estate.code, token=token)


def _notice(pub: Publicity, estate: Estate, now: datetime, calendar) -> dict:
    return {"id": pub.id, "title": pub.title, "subject_type": pub.subject_type, "subject_label": pub.subject_label,
            "status": pub.status, "status_label": pub.status_label, "posted_on": pub.posted_on,
            "last_day": pub.last_day, "working_days": pub.working_days,
            "period": services.period_text(pub, calendar), "ends_at": pub.ends_at,
            "objections_open": pub.is_open_at(now),
            "documents": [{"filename": d.filename, "content_type": d.content_type, "size_bytes": d.size_bytes,
                           "url": _document_url(estate, d.token)} for d in pub.documents if d.is_public_at(now)]}


def _on_board(pub: Publicity, now: datetime) -> bool:
    """Posted (its posting day has come) or completed: what the board shows; a notice posted ahead is not yet."""
    return pub.is_completed or pub.posted_on <= services.beijing_date(now)


def _visible_publicity(publicity_id: int, resident: Resident, now: datetime) -> Publicity:
    pub = db.session.get(Publicity, publicity_id)
    if pub is None or pub.estate_id != resident.unit.estate_id or not _on_board(pub, now):
        raise NotFound("找不到该公示", code="publicity_not_found")
    return pub


def _objection(obj: Objection) -> dict:
    return {"id": obj.id, "publicity_id": obj.publicity_id, "publicity_title": obj.publicity.title, "text": obj.text,
            "raised_at": obj.raised_at, "status": obj.status, "status_label": obj.status_label,
            "answer": obj.answer or "", "resolved_at": obj.resolved_at, "can_withdraw": obj.status == "open"}


@api_bp.route("/board")
@api_bp.response(200, NoticeSchema(many=True))
def board():
    """My estate's notice board: the publicities posted so far, current and ended, newest first, with documents."""
    resident = resident_or_401()
    now = utcnow()
    estate = db.session.get(Estate, resident.unit.estate_id)
    calendar = holidays.load_calendar()
    return [_notice(p, estate, now, calendar) for p in services.estate_publicity(estate.id) if _on_board(p, now)]


@api_bp.route("/board/<int:publicity_id>")
@api_bp.response(200, NoticeDetailSchema)
def notice(publicity_id: int):
    """One publicity of my estate: the notice text, the published outcome and units, the period and its changes."""
    resident = resident_or_401()
    now = utcnow()
    pub = _visible_publicity(publicity_id, resident, now)
    estate = db.session.get(Estate, pub.estate_id)
    changes = [{"kind": c.kind, "kind_label": c.kind_label, "reason": c.reason, "new_last_day": c.new_last_day}
               for c in pub.changes]
    return {**_notice(pub, estate, now, holidays.load_calendar()), "notice_text": pub.notice_text,
            "outcome_lines": list(pub.outcome_lines or []), "unit_list_title": pub.unit_list_title or "",
            "unit_labels": list(pub.unit_labels or []), "changes": changes}


@api_bp.route("/publicities/<int:publicity_id>/objections", methods=["POST"])
@api_bp.arguments(ObjectionInSchema)
@api_bp.response(201, ObjectionSchema)
def raise_objection(data, publicity_id: int):
    """File an objection to a publicity of my estate, during its period (after it: 409 publicity_closed)."""
    resident = resident_or_401()
    now = utcnow()
    pub = db.session.get(Publicity, publicity_id)
    if pub is None or pub.estate_id != resident.unit.estate_id:
        raise NotFound("找不到该公示", code="publicity_not_found")
    obj = services.raise_objection(pub, unit=resident.unit, owner=resident.owner, text=data["text"], photo=None,
                                   now=now)
    out = _objection(obj)
    db.session.commit()
    return out


@api_bp.route("/objections")
@api_bp.response(200, ObjectionSchema(many=True))
def my_objections():
    """The objections my unit has filed, newest first, with the committee's answer and where mediation stands."""
    resident = resident_or_401()
    return [_objection(o) for o in services.objections_of_unit(resident.unit.id)]


@api_bp.route("/objections/<int:objection_id>/withdraw", methods=["POST"])
@api_bp.response(200, ObjectionSchema)
def withdraw_objection(objection_id: int):
    """Withdraw one of my unit's open objections."""
    resident = resident_or_401()
    obj = db.session.get(Objection, objection_id)
    if obj is None or obj.unit_id != resident.unit.id:
        raise NotFound("找不到该异议", code="objection_not_found")
    services.withdraw_own_objection(obj, unit=resident.unit, owner=resident.owner, now=utcnow())
    out = _objection(obj)
    db.session.commit()
    return out


# ---- the home page's section -----------------------------------------------------------------------

def notices_section(resident: Resident, now: datetime) -> list[dict] | None:
    """The publicities of my estate in their period now (objections accepted), newest first."""
    items = [p for p in services.board(resident.unit.estate_id, now)["current"] if p.is_open_at(now)]
    if not items:
        return None
    return [{"id": p.id, "title": p.title, "last_day": p.last_day.isoformat(),
             "ends_at": to_local(p.ends_at).isoformat()} for p in items]


register_home_section("notices", notices_section)
