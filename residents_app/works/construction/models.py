"""Construction under the residents' watch (issue 16 items 1-5): the project's parties and site contact,
rectification items (整改, shared with the joint acceptance), change requests, progress reports, complaints and
questions, resident supervisors and their inspections, and the photos of all of them.

The "project" is an estate's approved start application (works.models.StartApplication).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.errors import Conflict
from residents_app.extensions import db

PARTY_KINDS = ("builder", "designer", "contractor", "supervisor", "utility", "community", "street", "committee")
PARTY_KIND_LABELS = {"builder": "建设单位", "designer": "设计单位", "contractor": "施工单位", "supervisor": "监理单位",
                     "utility": "管线单位", "community": "社区", "street": "街道办事处", "committee": "业主委员会"}
# How a party signs: with its own account limited to this project, or on paper (a scan entered by the committee
# and confirmed by a second person).
SIGN_MODES = ("account", "paper")
SIGN_MODE_LABELS = {"account": "平台账号签字", "paper": "纸质签字（扫描件录入）"}


def _kinds_check(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class Party(db.Model):
    """A party of the project (参建及相关单位) with its contact person; one of them is the site contact
    (现场联络人) shown to residents."""

    __tablename__ = "construction_party"
    __table_args__ = (
        sa.CheckConstraint(_kinds_check("kind", PARTY_KINDS), name="kind_known"),
        sa.CheckConstraint(_kinds_check("sign_mode", SIGN_MODES), name="sign_mode_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    name: Mapped[str] = mapped_column(sa.String(120))  # the organisation (or the committee's name)
    contact_name: Mapped[str] = mapped_column(sa.String(60), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(30), default="")
    is_site_contact: Mapped[bool] = mapped_column(default=False)
    sign_mode: Mapped[str] = mapped_column(sa.String(10), default="paper")
    # The account limited to this project (role "party"), when sign_mode is "account".
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    user = relationship("User", foreign_keys=[user_id])

    @property
    def kind_label(self) -> str:
        return PARTY_KIND_LABELS[self.kind]

    @property
    def sign_mode_label(self) -> str:
        return SIGN_MODE_LABELS[self.sign_mode]


RECTIFICATION_SOURCES = ("inspection", "acceptance", "complaint", "other")
RECTIFICATION_SOURCE_LABELS = {"inspection": "民间监理巡查", "acceptance": "竣工验收", "complaint": "居民投诉",
                               "other": "其他"}
RECTIFICATION_STATES = ("open", "closed")
RECTIFICATION_STATE_LABELS = {"open": "整改中", "closed": "已整改"}


class RectificationItem(db.Model):
    """整改事项: a problem found (by a resident supervisor's inspection, the joint acceptance, ...) with the party
    that must fix it and a due date; followed to closure."""

    __tablename__ = "rectification_item"
    __table_args__ = (
        sa.CheckConstraint(_kinds_check("source", RECTIFICATION_SOURCES), name="source_known"),
        sa.CheckConstraint(_kinds_check("state", RECTIFICATION_STATES), name="state_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    source: Mapped[str] = mapped_column(sa.String(20))
    source_id: Mapped[int | None] = mapped_column(sa.Integer)  # the inspection's / acceptance's id
    description: Mapped[str] = mapped_column(sa.Text)
    owner_party_id: Mapped[int | None] = mapped_column(sa.ForeignKey("construction_party.id"))  # who fixes it
    due_on: Mapped[date | None] = mapped_column(sa.Date)
    state: Mapped[str] = mapped_column(sa.String(10), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    closing_note: Mapped[str] = mapped_column(sa.Text, default="")
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its owner told it is overdue (once)
    owner_party = relationship(Party)

    @property
    def source_label(self) -> str:
        return RECTIFICATION_SOURCE_LABELS[self.source]

    @property
    def state_label(self) -> str:
        return RECTIFICATION_STATE_LABELS[self.state]

    def is_overdue(self, today: date) -> bool:
        return self.state == "open" and self.due_on is not None and today > self.due_on

    def close(self, *, user_id: int | None, now: datetime, note: str) -> None:
        if self.state != "open":
            raise Conflict("该整改事项已关闭", code="rectification_closed")
        if not note.strip():
            raise Conflict("关闭整改事项时必须说明整改结果", code="closing_note_required")
        self.state = "closed"
        self.closed_at = now
        self.closed_by_id = user_id
        self.closing_note = note.strip()


class ConstructionSetup(db.Model):
    """Per-project settings of the construction: how often progress is reported, when a reminder last went out."""

    __tablename__ = "construction_setup"
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    report_interval_days: Mapped[int] = mapped_column(default=14)
    complaint_answer_working_days: Mapped[int] = mapped_column(default=5)
    # The due date of the report that was reminded about (a reminder goes once per missed due date).
    reminded_for: Mapped[date | None] = mapped_column(sa.Date)


CHANGE_STATES = ("submitted", "refused", "approved", "replanned")
CHANGE_STATE_LABELS = {"submitted": "待审批", "refused": "不予变更", "approved": "已批准",
                       "replanned": "转入方案重新表决"}


class ChangeRequest(db.Model):
    """工程变更申请. Refused in principle; one that moves residents' costs or scope goes back to a new plan version
    and vote, the others need the committee and the street office."""

    __tablename__ = "change_request"
    __table_args__ = (
        sa.CheckConstraint(_kinds_check("state", CHANGE_STATES), name="state_known"),
        sa.UniqueConstraint("start_application_id", "number", name="uq_change_request_number"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    number: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(200))
    reason: Mapped[str] = mapped_column(sa.Text)
    # [{"item": "外墙保温", "delta_fen": 120000}, ...]: the effect on cost, item by item (fen, signed).
    cost_effect: Mapped[list] = mapped_column(sa.JSON)
    moves_residents: Mapped[bool] = mapped_column(default=False)  # residents' costs or scope change
    explanation_filename: Mapped[str] = mapped_column(sa.String(200))
    explanation_type: Mapped[str] = mapped_column(sa.String(60))
    explanation_sha256: Mapped[str] = mapped_column(sa.String(64))
    explanation: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    state: Mapped[str] = mapped_column(sa.String(12), default="submitted")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    committee_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    committee_approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    street_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    street_approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(sa.Text, default="")
    new_plan_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plan_version.id"))

    @property
    def state_label(self) -> str:
        return CHANGE_STATE_LABELS[self.state]

    @property
    def delta_fen(self) -> int:
        return sum(int(e["delta_fen"]) for e in self.cost_effect)

    def _require_open(self) -> None:
        if self.state != "submitted":
            raise Conflict(f"该变更{self.state_label}，不能再审批", code="change_decided")

    def refuse(self, *, now: datetime, note: str) -> None:
        self._require_open()
        if not note.strip():
            raise Conflict("不予变更时必须说明理由", code="comment_required")
        self.state = "refused"
        self.decided_at = now
        self.decision_note = note.strip()

    def approve(self, *, side: str, user_id: int, now: datetime, note: str = "") -> None:
        """One side's approval (committee or street); the change is approved once both have approved."""
        self._require_open()
        if self.moves_residents:
            raise Conflict("该变更涉及居民出资或改造范围，须形成新版方案并重新表决", code="change_needs_vote")
        if side == "committee":
            if self.committee_approved_at is not None:
                raise Conflict("业委会已批准该变更", code="already_approved")
            self.committee_approved_at, self.committee_approved_by_id = now, user_id
        else:
            if self.street_approved_at is not None:
                raise Conflict("街道已批准该变更", code="already_approved")
            self.street_approved_at, self.street_approved_by_id = now, user_id
        if note.strip():
            self.decision_note = (self.decision_note + "\n" + note.strip()).strip()
        if self.committee_approved_at is not None and self.street_approved_at is not None:
            self.state = "approved"
            self.decided_at = now


class ProgressReport(db.Model):
    """工程进度通报 posted by the contractor (a party account) or the committee, with photos."""

    __tablename__ = "progress_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    body: Mapped[str] = mapped_column(sa.Text)
    percent_done: Mapped[int] = mapped_column(sa.Integer)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    posted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    posted_by = relationship("User")


COMPLAINT_KINDS = ("complaint", "question")
COMPLAINT_KIND_LABELS = {"complaint": "投诉", "question": "咨询"}
COMPLAINT_STATES = ("open", "answered")
COMPLAINT_STATE_LABELS = {"open": "待答复", "answered": "已答复"}


class Complaint(db.Model):
    """投诉、咨询 filed by a resident from the unit link; answered within working days."""

    __tablename__ = "complaint"
    __table_args__ = (
        sa.CheckConstraint(_kinds_check("kind", COMPLAINT_KINDS), name="kind_known"),
        sa.CheckConstraint(_kinds_check("state", COMPLAINT_STATES), name="state_known"),
        sa.UniqueConstraint("estate_id", "number", name="uq_complaint_number"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    number: Mapped[str] = mapped_column(sa.String(30))
    kind: Mapped[str] = mapped_column(sa.String(10))
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    body: Mapped[str] = mapped_column(sa.Text)
    filed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_on: Mapped[date] = mapped_column(sa.Date)  # answer by the end of this day (Beijing)
    state: Mapped[str] = mapped_column(sa.String(10), default="open")
    reply: Mapped[str] = mapped_column(sa.Text, default="")
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replied_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    flagged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # overdue, flagged to the street office

    @property
    def kind_label(self) -> str:
        return COMPLAINT_KIND_LABELS[self.kind]

    @property
    def state_label(self) -> str:
        return COMPLAINT_STATE_LABELS[self.state]

    def is_overdue(self, today: date) -> bool:
        return self.state == "open" and today > self.due_on

    def answer(self, *, reply: str, user_id: int, now: datetime) -> None:
        if self.state != "open":
            raise Conflict("该事项已答复", code="complaint_answered")
        if not reply.strip():
            raise Conflict("答复内容不能为空", code="reply_required")
        self.state = "answered"
        self.reply = reply.strip()
        self.replied_at = now
        self.replied_by_id = user_id


class ResidentSupervisor(db.Model):
    """民间监理员: an owner appointed by the committee."""

    __tablename__ = "resident_supervisor"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    appointed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    appointed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner = relationship("Owner")


class Inspection(db.Model):
    """A resident supervisor's inspection record; a problem found becomes a rectification item."""

    __tablename__ = "inspection"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    start_application_id: Mapped[int] = mapped_column(sa.ForeignKey("start_application.id"), index=True)
    supervisor_id: Mapped[int] = mapped_column(sa.ForeignKey("resident_supervisor.id"), index=True)
    inspected_on: Mapped[date] = mapped_column(sa.Date)
    place: Mapped[str] = mapped_column(sa.String(200))
    finding: Mapped[str] = mapped_column(sa.Text)
    has_problem: Mapped[bool] = mapped_column(default=False)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rectification_item_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rectification_item.id"))
    supervisor = relationship(ResidentSupervisor)
    rectification_item = relationship(RectificationItem)


PHOTO_SUBJECTS = ("progress", "complaint", "inspection")


class ConstructionPhoto(db.Model):
    """A photo of a progress report, complaint or inspection: sniffed, resized, re-encoded without EXIF."""

    __tablename__ = "construction_photo"
    __table_args__ = (
        sa.CheckConstraint(_kinds_check("subject_type", PHOTO_SUBJECTS), name="subject_known"),
        sa.Index("ix_construction_photo_subject", "subject_type", "subject_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(12))
    subject_id: Mapped[int] = mapped_column(sa.Integer)
    content_type: Mapped[str] = mapped_column(sa.String(30))
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
