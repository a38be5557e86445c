"""After the works: the joint completion acceptance (共同验收) with every participant's signature and its
rectification items (整改), the project's archive and its handover (归档、移交), and the evaluation (问效).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.errors import Conflict
from residents_app.extensions import db
from residents_app.works.construction.models import Party

ROLES = ("builder", "street", "community", "owners", "designer", "contractor", "supervisor", "utility")
ROLE_LABELS = {"builder": "建设单位", "street": "街道办事处", "community": "社区", "owners": "业主委员会/业主代表",
               "designer": "设计单位", "contractor": "施工单位", "supervisor": "监理单位", "utility": "专营单位"}
# The parties without whom there is no acceptance at all (a utility company takes part only where its lines
# were touched; the form proposes all eight).
REQUIRED_ROLES = ("builder", "owners", "designer", "contractor", "supervisor")
ACCEPTANCE_STATUSES = ("open", "passed")
ACCEPTANCE_STATUS_LABELS = {"open": "验收中", "passed": "验收通过"}
METHODS = ("online", "paper")
METHOD_LABELS = {"online": "在线签字", "paper": "纸质签字（扫描件）"}
ISSUE_STATUS_LABELS = {"open": "整改中", "closed": "已整改"}


class Acceptance(db.Model):
    """共同验收 of an estate's works: passes only once every participant has signed and no item is open."""

    __tablename__ = "acceptance"
    __table_args__ = (sa.CheckConstraint("status in ('open', 'passed')", name="status_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    held_on: Mapped[date] = mapped_column(sa.Date)
    place: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    opened_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    passed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    participants = relationship("AcceptanceParticipant", back_populates="acceptance",
                                order_by="AcceptanceParticipant.id", cascade="all, delete-orphan")
    issues = relationship("AcceptanceIssue", back_populates="acceptance", order_by="AcceptanceIssue.id",
                          cascade="all, delete-orphan")
    opened_by = relationship("User")

    @property
    def status_label(self) -> str:
        return ACCEPTANCE_STATUS_LABELS[self.status]

    @property
    def is_open(self) -> bool:
        return self.status == "open"

    def reasons_not_passed(self) -> list[str]:
        """Why this acceptance has not passed yet (empty = it passes)."""
        reasons = []
        present = {p.role for p in self.participants}
        missing = [ROLE_LABELS[r] for r in REQUIRED_ROLES if r not in present]
        if missing:
            reasons.append("缺少参加验收的单位：" + "、".join(missing))
        unsigned = [p for p in self.participants if not p.is_signed]
        if unsigned:
            reasons.append(f"还有 {len(unsigned)} 方未签字：" + "、".join(p.display for p in unsigned))
        open_issues = [i for i in self.issues if i.status == "open"]
        if open_issues:
            reasons.append(f"还有 {len(open_issues)} 项整改未完成：" + "、".join(f"#{i.number}" for i in open_issues))
        return reasons

    def require_open(self) -> None:
        if self.status != "open":
            raise Conflict("验收已通过，不能再修改", code="acceptance_passed")


class AcceptanceParticipant(db.Model):
    """One party at the acceptance and its signature: online (a staff user linked to this participant signs
    while logged in) or on paper (the committee enters the scan; a second member confirms it)."""

    __tablename__ = "acceptance_participant"
    __table_args__ = (
        sa.CheckConstraint("role in ('builder', 'street', 'community', 'owners', 'designer', 'contractor', "
                           "'supervisor', 'utility')", name="role_known"),
        sa.CheckConstraint("signature_method is null or signature_method in ('online', 'paper')",
                           name="method_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    acceptance_id: Mapped[int] = mapped_column(sa.ForeignKey("acceptance.id"), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))
    organisation: Mapped[str] = mapped_column(sa.String(200))
    name: Mapped[str] = mapped_column(sa.String(100))
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    # The construction party this participant is (its `party` account, limited to this project, signs online).
    party_id: Mapped[int | None] = mapped_column(sa.ForeignKey("construction_party.id"))
    signature_method: Mapped[str | None] = mapped_column(sa.String(20))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opinion: Mapped[str] = mapped_column(sa.Text, default="")
    scan_filename: Mapped[str | None] = mapped_column(sa.String(200))
    scan_content_type: Mapped[str | None] = mapped_column(sa.String(60))
    scan_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    scan: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    scan_entered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    scan_entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    acceptance = relationship("Acceptance", back_populates="participants")
    user = relationship("User", foreign_keys=[user_id])
    party = relationship(Party)
    scan_entered_by = relationship("User", foreign_keys=[scan_entered_by_id])
    confirmed_by = relationship("User", foreign_keys=[confirmed_by_id])

    @property
    def role_label(self) -> str:
        return ROLE_LABELS[self.role]

    @property
    def display(self) -> str:
        return f"{self.role_label}（{self.organisation} {self.name}）"

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    @property
    def awaits_confirmation(self) -> bool:
        return self.signed_at is None and self.scan_entered_at is not None

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.signature_method or "", "未签字")

    def sign_online(self, *, user_id: int, now: datetime, opinion: str) -> None:
        if self.is_signed:
            raise Conflict(f"{self.display}已签字", code="already_signed")
        if self.user_id is None or self.user_id != user_id:
            raise Conflict("只有该单位登记的签字人本人登录后才能在线签字", code="not_the_signatory")
        self.signature_method = "online"
        self.signed_at = now
        self.opinion = opinion

    def enter_scan(self, *, user_id: int, now: datetime, filename: str, content_type: str, data: bytes,
                   sha256: str, opinion: str) -> None:
        if self.is_signed:
            raise Conflict(f"{self.display}已签字", code="already_signed")
        self.signature_method = "paper"
        self.scan, self.scan_filename, self.scan_content_type, self.scan_sha256 = data, filename, content_type, sha256
        self.scan_entered_by_id = user_id
        self.scan_entered_at = now
        self.opinion = opinion

    def confirm_scan(self, *, user_id: int, now: datetime) -> None:
        if self.is_signed:
            raise Conflict(f"{self.display}已签字", code="already_signed")
        if not self.awaits_confirmation:
            raise Conflict("还没有录入纸质签字扫描件", code="no_scan")
        if user_id == self.scan_entered_by_id:
            raise Conflict("扫描件须由另一位成员核对确认，录入人不能自己确认", code="second_person_required")
        self.confirmed_by_id = user_id
        self.signed_at = now


class AcceptanceIssue(db.Model):
    """A problem found at the acceptance, to be rectified (整改) by its owner before a due date."""

    __tablename__ = "acceptance_issue"
    __table_args__ = (sa.CheckConstraint("status in ('open', 'closed')", name="status_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    acceptance_id: Mapped[int] = mapped_column(sa.ForeignKey("acceptance.id"), index=True)
    number: Mapped[int] = mapped_column(sa.Integer)
    description: Mapped[str] = mapped_column(sa.Text)
    owner: Mapped[str] = mapped_column(sa.String(200))  # the party that rectifies
    owner_party_id: Mapped[int | None] = mapped_column(sa.ForeignKey("construction_party.id"))  # when a party
    due_on: Mapped[date] = mapped_column(sa.Date)
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    closing_note: Mapped[str] = mapped_column(sa.Text, default="")
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # its owner told it is overdue (once)
    acceptance = relationship("Acceptance", back_populates="issues")
    owner_party = relationship(Party)

    @property
    def status_label(self) -> str:
        return ISSUE_STATUS_LABELS[self.status]

    def is_overdue(self, today: date) -> bool:
        return self.status == "open" and today > self.due_on

    def close(self, *, user_id: int, now: datetime, note: str) -> None:
        if self.status != "open":
            raise Conflict(f"整改项 #{self.number} 已整改完毕", code="issue_closed")
        if not note.strip():
            raise Conflict("请写明整改结果", code="note_required")
        self.status = "closed"
        self.closed_at = now
        self.closed_by_id = user_id
        self.closing_note = note.strip()


class EvaluationTemplate(db.Model):
    """A street office's evaluation template (问效评价表), edited from the shipped one."""

    __tablename__ = "evaluation_template"
    id: Mapped[int] = mapped_column(primary_key=True)
    street_office_id: Mapped[int] = mapped_column(sa.ForeignKey("street_office.id"), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    aspects: Mapped[list] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))


class Evaluation(db.Model):
    """问效 of one estate's project: the template as it was when the evaluation began, the groups' weights, the
    named evaluators' sheets; published on the public board once every item is scored."""

    __tablename__ = "evaluation"
    __table_args__ = (sa.CheckConstraint("status in ('draft', 'published')", name="status_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    template: Mapped[list] = mapped_column(sa.JSON)
    group_weights: Mapped[dict] = mapped_column(sa.JSON)
    satisfaction_round_id: Mapped[int | None] = mapped_column(sa.ForeignKey("round.id"))
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_total: Mapped[str | None] = mapped_column(sa.String(20))  # as shown: "87.35"
    sheets = relationship("EvaluationSheet", back_populates="evaluation", order_by="EvaluationSheet.id",
                          cascade="all, delete-orphan")

    @property
    def status_label(self) -> str:
        return {"draft": "评分中", "published": "已公布"}[self.status]

    def require_draft(self) -> None:
        if self.status != "draft":
            raise Conflict("评价结果已公布，不能再修改", code="evaluation_published")


class EvaluationSheet(db.Model):
    """One named evaluator's scores: item key -> "8.5" (an absent key = not scored)."""

    __tablename__ = "evaluation_sheet"
    __table_args__ = (
        sa.CheckConstraint("evaluator_group in ('resident', 'community', 'street')", name="group_known"),
        sa.UniqueConstraint("evaluation_id", "evaluator_name", name="evaluator_once"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    evaluation_id: Mapped[int] = mapped_column(sa.ForeignKey("evaluation.id"), index=True)
    evaluator_name: Mapped[str] = mapped_column(sa.String(100))
    evaluator_group: Mapped[str] = mapped_column(sa.String(20))
    scores: Mapped[dict] = mapped_column(sa.JSON)
    entered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluation = relationship("Evaluation", back_populates="sheets")


class ProjectArchive(db.Model):
    """The project's archive (one ZIP) as it was built; its manifest's hash is in the audit chain."""

    __tablename__ = "project_archive"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    file_count: Mapped[int] = mapped_column(sa.Integer)
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    manifest_sha256: Mapped[str] = mapped_column(sa.String(64))
    zip_sha256: Mapped[str] = mapped_column(sa.String(64))
    chain_head_seq: Mapped[int] = mapped_column(sa.Integer)
    chain_head_hash: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    handovers = relationship("ArchiveHandover", back_populates="archive", order_by="ArchiveHandover.id")
    created_by = relationship("User")


class ArchiveHandover(db.Model):
    """移交 of an archive to the owners' committee or the property company, with its receipt."""

    __tablename__ = "archive_handover"
    __table_args__ = (sa.CheckConstraint("recipient_kind in ('owners', 'property')", name="recipient_known"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    archive_id: Mapped[int] = mapped_column(sa.ForeignKey("project_archive.id"), index=True)
    receipt_no: Mapped[str] = mapped_column(sa.String(40), unique=True)
    recipient_kind: Mapped[str] = mapped_column(sa.String(20))
    recipient_organisation: Mapped[str] = mapped_column(sa.String(200))
    received_by: Mapped[str] = mapped_column(sa.String(100))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    archive = relationship("ProjectArchive", back_populates="handovers")

    @property
    def recipient_label(self) -> str:
        return {"owners": "业主委员会", "property": "物业服务企业"}[self.recipient_kind]


# The acceptance, handover and evaluation stages of the project timeline (works.construction) register here.
from residents_app.works.acceptance import timeline_stages  # noqa: E402,F401
