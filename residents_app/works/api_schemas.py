"""Documented responses of the staff works API (start, construction, acceptance, archive, evaluation).

The handlers build these dicts themselves; the routes declare them with alt_response(success=True), so a
body is documented (and checked by tests/security/test_schemathesis.py) without being dumped again.
"""

from __future__ import annotations

from marshmallow import Schema, fields


def _ex(value) -> dict:
    return {"example": value}


# ---- project start (/api/plans/estates/<id>/start) ----

class StartCheckOutSchema(Schema):
    key = fields.String(metadata=_ex("vote_passed"))
    label = fields.String(metadata=_ex("改造方案表决通过"))
    met = fields.Boolean(metadata=_ex(True))
    reason = fields.String(metadata=_ex("第 2 版方案已表决通过"))


class StartMaterialOutSchema(Schema):
    title = fields.String(metadata=_ex("施工许可"))
    filename = fields.String(metadata=_ex("permit.pdf"))
    sha256 = fields.String(metadata=_ex("3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b"))


class StartChecklistSchema(Schema):
    plan_id = fields.Integer(metadata=_ex(5))
    status = fields.String(allow_none=True, metadata=_ex("submitted"))
    checks = fields.List(fields.Nested(StartCheckOutSchema))
    can_submit = fields.Boolean(metadata=_ex(False))
    materials = fields.List(fields.Nested(StartMaterialOutSchema))


# ---- construction (/api/construction) ----

class TimelineStageOutSchema(Schema):
    key = fields.String(metadata=_ex("construction"))
    label = fields.String(metadata=_ex("施工"))
    state = fields.String(metadata=_ex("current"))
    on = fields.String(allow_none=True, metadata=_ex("2026-10-01"))
    note = fields.String(metadata=_ex("计划 2026-12-31 竣工"))
    overdue = fields.List(fields.String(), metadata=_ex(["进度报告逾期"]))


class ProjectTimelineSchema(Schema):
    estate_id = fields.Integer(metadata=_ex(1))
    stages = fields.List(fields.Nested(TimelineStageOutSchema))


class StaffComplaintRowSchema(Schema):
    number = fields.Integer(metadata=_ex(3))
    kind = fields.String(metadata=_ex("complaint"))
    state = fields.String(metadata=_ex("open"))
    filed_at = fields.String(metadata=_ex("2026-09-01T02:00:00+00:00"))
    due_on = fields.String(metadata=_ex("2026-09-08"))
    overdue = fields.Boolean(metadata=_ex(False))
    flagged = fields.Boolean(metadata=_ex(False))


class StaffComplaintListSchema(Schema):
    complaints = fields.List(fields.Nested(StaffComplaintRowSchema))


# ---- acceptance (/api/works/acceptance) ----

class AcceptanceParticipantOutSchema(Schema):
    id = fields.Integer(metadata=_ex(3))
    role = fields.String(metadata=_ex("contractor"))
    organisation = fields.String(metadata=_ex("某建设公司"))
    name = fields.String(metadata=_ex("李四"))
    signed = fields.Boolean(metadata=_ex(True))
    method = fields.String(allow_none=True, metadata=_ex("online"))
    signed_at = fields.String(allow_none=True, metadata=_ex("2026-09-01T02:00:00+00:00"))


class AcceptanceIssueOutSchema(Schema):
    id = fields.Integer(metadata=_ex(2))
    number = fields.Integer(metadata=_ex(1))
    description = fields.String(metadata=_ex("3 幢外墙空鼓"))
    owner = fields.String(metadata=_ex("施工单位"))
    due_on = fields.String(metadata=_ex("2026-09-15"))
    status = fields.String(metadata=_ex("open"))


class AcceptanceOutSchema(Schema):
    id = fields.Integer(metadata=_ex(1))
    estate_id = fields.Integer(metadata=_ex(1))
    title = fields.String(metadata=_ex("竣工验收"))
    held_on = fields.String(metadata=_ex("2026-09-01"))
    status = fields.String(metadata=_ex("open"))
    passed_at = fields.String(allow_none=True, metadata=_ex(None))
    reasons = fields.List(fields.String(), metadata=_ex(["监理单位尚未签字"]))
    participants = fields.List(fields.Nested(AcceptanceParticipantOutSchema))
    issues = fields.List(fields.Nested(AcceptanceIssueOutSchema))


# ---- archives (/api/works/estates/<id>/archives) ----

class ArchiveChainHeadOutSchema(Schema):
    seq = fields.Integer(metadata=_ex(120))
    hash = fields.String(metadata=_ex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"))


class ArchiveHandoverOutSchema(Schema):
    receipt_no = fields.String(metadata=_ex("YJ-2026-0001"))
    recipient_kind = fields.String(metadata=_ex("committee"))
    organisation = fields.String(metadata=_ex("鹿城小区业主委员会"))
    received_by = fields.String(metadata=_ex("王五"))
    received_at = fields.String(metadata=_ex("2026-09-01T02:00:00+00:00"))


class ArchiveOutSchema(Schema):
    id = fields.Integer(metadata=_ex(1))
    created_at = fields.String(metadata=_ex("2026-09-01T02:00:00+00:00"))
    file_count = fields.Integer(metadata=_ex(14))
    manifest_sha256 = fields.String(metadata=_ex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
    zip_sha256 = fields.String(metadata=_ex("2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"))
    chain_head = fields.Nested(ArchiveChainHeadOutSchema)
    handovers = fields.List(fields.Nested(ArchiveHandoverOutSchema))


class ArchiveListSchema(Schema):
    archives = fields.List(fields.Nested(ArchiveOutSchema))


# ---- evaluation (/api/works/evaluation/<id>) ----

class EvaluationAspectOutSchema(Schema):
    aspect = fields.String(metadata=_ex("工程质量"))
    score = fields.String(metadata=_ex("88.50"))
    points = fields.String(metadata=_ex("35.40"))


class EvaluationSheetOutSchema(Schema):
    evaluator = fields.String(metadata=_ex("赵六"))
    group = fields.String(metadata=_ex("residents"))
    scores = fields.Dict(keys=fields.String(), values=fields.String(), metadata=_ex({"q1": "8.5"}))


class EvaluationDetailOutSchema(Schema):
    id = fields.Integer(metadata=_ex(1))
    title = fields.String(metadata=_ex("改造项目问效评价"))
    status = fields.String(metadata=_ex("draft"))
    weights = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata=_ex({"residents": 50, "committee": 30, "street": 20}))
    total = fields.String(metadata=_ex("86.25"))
    grade = fields.String(metadata=_ex("良好"))
    total_points = fields.String(metadata=_ex("86.2500"))
    missing = fields.List(fields.String(), metadata=_ex(["street"]))
    aspects = fields.List(fields.Nested(EvaluationAspectOutSchema))
    sheets = fields.List(fields.Nested(EvaluationSheetOutSchema))
    survey = fields.Dict(allow_none=True, metadata=_ex({"round_id": 9, "title": "满意度调查", "total_count": 120,
                                                        "response_count": 90, "response_rate": "75.00%"}))
