"""Publicity periods (公示), their documents and history, objections (异议), the calendar overrides."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.errors import Conflict, ValidationFailed
from residents_app.extensions import db

SUBJECT_TYPES = ("round_result", "plan_version", "hardship_list", "round_roll", "finance_month", "acceptance",
                 "evaluation")
SUBJECT_LABELS = {"round_result": "表决结果", "plan_version": "改造方案", "hardship_list": "困难群众名单",
                  "round_roll": "表决名册", "finance_month": "财务收支", "acceptance": "竣工验收",
                  "evaluation": "改造评价"}
SUBJECT_CHECK = ("subject_type in ('round_result', 'plan_version', 'hardship_list', 'round_roll', 'finance_month', "
                 "'acceptance', 'evaluation')")
# Subjects of higher packages (funding: "finance_month") register their snapshot here instead of this package
# importing upward: subject_type -> fn(estate, subject_id) -> (unit list title, unit labels, outcome lines).
SUBJECT_SNAPSHOTS: dict = {}
STATUSES = ("posted", "extended", "completed")
STATUS_LABELS = {"posted": "公示中", "extended": "公示中（已延长）", "completed": "公示结束"}
OBJECTION_STATUSES = ("open", "withdrawn", "answered", "upheld")
OBJECTION_LABELS = {"open": "待处理", "withdrawn": "已撤回", "answered": "已答复", "upheld": "异议成立"}
OUTCOMES = ("withdrawn", "answered", "upheld")


class CalendarOverride(db.Model):
    """A day entered by the administrator: a new year's schedule or a correction. Wins over the package."""

    __tablename__ = "calendar_override"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, unique=True)
    is_working: Mapped[bool] = mapped_column()
    note: Mapped[str] = mapped_column(sa.String(100), default="")
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CalendarYear(db.Model):
    """A year whose schedule the administrator declared complete (so dates in it may be computed)."""

    __tablename__ = "calendar_year"
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    declared_by: Mapped[str] = mapped_column(sa.String(120))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Publicity(db.Model):
    """One publicity period of a published subject (a round result, a plan version, the hardship list, the frozen
    roll of a round)."""

    __tablename__ = "publicity"
    __table_args__ = (
        sa.CheckConstraint(SUBJECT_CHECK, name="subject_known"),
        sa.CheckConstraint("status in ('posted', 'extended', 'completed')", name="status_known"),
        sa.CheckConstraint("working_days >= 1", name="days_positive"),
        sa.Index("ix_publicity_subject", "subject_type", "subject_id"),
        sa.Index("ix_publicity_status_ends", "status", "ends_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    subject_type: Mapped[str] = mapped_column(sa.String(20))
    subject_id: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(200))
    notice_text: Mapped[str] = mapped_column(sa.Text)
    # Snapshot of what was published: unit numbers only (never names or phones), outcome lines.
    unit_list_title: Mapped[str] = mapped_column(sa.String(100), default="")
    unit_labels: Mapped[list] = mapped_column(sa.JSON, default=list)
    outcome_lines: Mapped[list] = mapped_column(sa.JSON, default=list)
    posted_on: Mapped[date] = mapped_column(sa.Date)
    working_days: Mapped[int] = mapped_column(sa.Integer, default=5)
    last_day: Mapped[date] = mapped_column(sa.Date)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(20), default="posted")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_by: Mapped[str | None] = mapped_column(sa.String(120))
    started_notice_queued: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(sa.String(120))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    documents: Mapped[list[PublicityDocument]] = relationship(
        back_populates="publicity", order_by="PublicityDocument.id", cascade="all, delete-orphan")
    changes: Mapped[list[PublicityChange]] = relationship(
        back_populates="publicity", order_by="PublicityChange.id", cascade="all, delete-orphan")
    objections: Mapped[list[Objection]] = relationship(
        back_populates="publicity", order_by="Objection.id", cascade="all, delete-orphan")
    backdate: Mapped[PublicityBackdate | None] = relationship(cascade="all, delete-orphan")

    @property
    def backdate_reason(self) -> str:
        return self.backdate.reason if self.backdate is not None else ""

    @property
    def subject_label(self) -> str:
        return SUBJECT_LABELS[self.subject_type]

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def is_backdated(self) -> bool:
        """Posted on a day before the day it was entered (Beijing time)."""
        from residents_app.core.calendar import beijing_date

        return self.posted_on < beijing_date(self.created_at)

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @property
    def open_objections(self) -> list[Objection]:
        return [o for o in self.objections if o.status == "open"]

    @property
    def starts_at(self) -> datetime:
        """00:00 Beijing time of the posting day."""
        from residents_app.core.calendar import window_end

        return window_end(self.posted_on - timedelta(days=1))

    def is_open_at(self, now: datetime) -> bool:
        """Objections are accepted from posting until 24:00 of the last day (unless completed)."""
        return not self.is_completed and self.starts_at <= now < self.ends_at

    def reasons_not_complete(self, now: datetime) -> list[str]:
        reasons = []
        if self.is_completed:
            reasons.append("公示已结束")
            return reasons
        if now < self.ends_at:
            reasons.append(f"公示期尚未届满（截至 {self.last_day:%Y-%m-%d} 24:00）")
        n_open = len(self.open_objections)
        if n_open:
            reasons.append(f"还有 {n_open} 条异议尚未处理（须先协商调解并记录结果）")
        return reasons

    def complete(self, now: datetime, actor: str) -> None:
        reasons = self.reasons_not_complete(now)
        if reasons:
            raise Conflict("无法结束公示：" + "；".join(reasons), code="publicity_not_completable",
                           errors={"reasons": reasons})
        self.status = "completed"
        self.completed_at = now
        self.completed_by = actor


def new_document_token() -> str:
    """192 random bits, URL-safe: the document's reference in public URLs (ids are sequential, guessable)."""
    return secrets.token_urlsafe(24)


class PublicityBackdate(db.Model):
    """Why a notice was entered after the day it says it was posted (补录): the verification desk flags it."""

    __tablename__ = "publicity_backdate"
    publicity_id: Mapped[int] = mapped_column(sa.ForeignKey("publicity.id", ondelete="CASCADE"), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(500))


class PublicityDocument(db.Model):
    """A file published with the notice (PDF or image), stored in the database."""

    __tablename__ = "publicity_document"
    id: Mapped[int] = mapped_column(primary_key=True)
    publicity_id: Mapped[int] = mapped_column(sa.ForeignKey("publicity.id", ondelete="CASCADE"), index=True)
    token: Mapped[str] = mapped_column(sa.String(64), unique=True, default=new_document_token)
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(60))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by: Mapped[str] = mapped_column(sa.String(120))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    publicity: Mapped[Publicity] = relationship(back_populates="documents")

    def is_public_at(self, now: datetime) -> bool:
        """On the public board from 00:00 Beijing time of the posting day (before that, staff only)."""
        return self.publicity.starts_at <= now


class PublicityChange(db.Model):
    """History: an extension or a restart of the period, with its reason."""

    __tablename__ = "publicity_change"
    __table_args__ = (sa.CheckConstraint("kind in ('extend', 'restart')", name="kind_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    publicity_id: Mapped[int] = mapped_column(sa.ForeignKey("publicity.id", ondelete="CASCADE"), index=True)
    objection_id: Mapped[int | None] = mapped_column(sa.ForeignKey("objection.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    reason: Mapped[str] = mapped_column(sa.Text)
    extra_working_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    old_posted_on: Mapped[date] = mapped_column(sa.Date)
    old_last_day: Mapped[date] = mapped_column(sa.Date)
    new_posted_on: Mapped[date] = mapped_column(sa.Date)
    new_last_day: Mapped[date] = mapped_column(sa.Date)
    actor: Mapped[str] = mapped_column(sa.String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    publicity: Mapped[Publicity] = relationship(back_populates="changes")

    @property
    def kind_label(self) -> str:
        return "延长公示" if self.kind == "extend" else "重新公示"


class Objection(db.Model):
    """异议 raised by a resident through the unit's session, mediated by the committee."""

    __tablename__ = "objection"
    __table_args__ = (
        sa.CheckConstraint("status in ('open', 'withdrawn', 'answered', 'upheld')", name="status_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    publicity_id: Mapped[int] = mapped_column(sa.ForeignKey("publicity.id", ondelete="CASCADE"), index=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    text: Mapped[str] = mapped_column(sa.Text)
    photo: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    photo_type: Mapped[str | None] = mapped_column(sa.String(60))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    mediation_notes: Mapped[str] = mapped_column(sa.Text, default="")
    answer: Mapped[str] = mapped_column(sa.Text, default="")
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by: Mapped[str | None] = mapped_column(sa.String(120))
    publicity: Mapped[Publicity] = relationship(back_populates="objections")
    unit = relationship("Unit")

    @property
    def status_label(self) -> str:
        return OBJECTION_LABELS[self.status]

    @property
    def has_photo(self) -> bool:
        return self.photo_type is not None

    def resolve(self, outcome: str, notes: str, answer: str, now: datetime, actor: str) -> None:
        if self.status != "open":
            raise Conflict(f"该异议已处理（{self.status_label}），不能再次处理", code="objection_resolved")
        if outcome not in OUTCOMES:
            raise ValidationFailed("处理结果须为：已撤回、已答复或异议成立", errors={"outcome": "取值无效"})
        self.status = outcome
        self.mediation_notes = notes
        self.answer = answer
        self.resolved_at = now
        self.resolved_by = actor
