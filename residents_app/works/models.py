"""The works after the decision: the start application (项目启动申请) for one plan version.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.errors import Conflict
from residents_app.extensions import db
from residents_app.funding.models import MONEY_LOCKS

START_STATUSES = ("draft", "submitted", "approved", "returned")


START_STATUS_LABELS = {"draft": "草稿", "submitted": "已提交", "approved": "已批准", "returned": "已退回"}


class StartApplication(db.Model):
    """项目启动申请 for one plan version; the street office approves or returns it."""

    __tablename__ = "start_application"
    __table_args__ = (
        sa.CheckConstraint("status in ('draft', 'submitted', 'approved', 'returned')", name="status_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id"), unique=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    checklist: Mapped[list | None] = mapped_column(sa.JSON)  # snapshot at submission
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    comment: Mapped[str] = mapped_column(sa.Text, default="")
    plan_version = relationship("PlanVersion")
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    submitted_by = relationship("User", foreign_keys=[submitted_by_id])

    @property
    def status_label(self) -> str:
        return START_STATUS_LABELS[self.status]

    def submit(self, *, user_id: int, now: datetime, checklist: list) -> None:
        if self.status not in ("draft", "returned"):
            raise Conflict(f"启动申请{self.status_label}，不能再次提交", code="start_not_submittable")
        self.status = "submitted"
        self.submitted_at = now
        self.submitted_by_id = user_id
        self.checklist = checklist
        self.decided_at = None
        self.decided_by_id = None

    def decide(self, *, approve: bool, user_id: int, now: datetime, comment: str) -> None:
        if self.status != "submitted":
            raise Conflict(f"启动申请{self.status_label}，只有已提交的申请可以审批", code="start_not_submitted")
        if not approve and not comment.strip():
            raise Conflict("退回申请时必须填写退回意见", code="comment_required")
        self.status = "approved" if approve else "returned"
        self.decided_at = now
        self.decided_by_id = user_id
        self.comment = comment.strip()


class StartMaterial(db.Model):
    """⑤ other materials of the start application: a PDF or image the committee uploads (type sniffed)."""

    __tablename__ = "start_material"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(60))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)


def _start_locks_money(plan) -> bool:
    status = db.session.execute(
        sa.select(StartApplication.status).where(StartApplication.plan_version_id == plan.id)).scalar_one_or_none()
    return status in ("submitted", "approved")


MONEY_LOCKS.append(_start_locks_money)
