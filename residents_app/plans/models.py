"""Plans and money: plan versions and items, contribution rules, hardship treatment, pledges,
the payment ledger, the start application and the final settlement.

Money is integer fen (`..._fen`, BigInteger). A published plan version is frozen: its fields and
items refuse changes (model methods and a flush guard), a new version supersedes it.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from residents_app.db import UTCDateTime, utcnow
from residents_app.errors import Conflict
from residents_app.extensions import db

CATEGORIES = ("required", "basic", "improvement", "upgrade")
CATEGORY_LABELS = {"required": "必选", "basic": "基础", "improvement": "完善", "upgrade": "提升"}
# Seed 001 (Lucheng) section 四: residents pay 0 / 10 / 30 / 70 % by category, the subsidy is
# capped at 400 yuan per m² of title area.
DEFAULT_RESIDENT_PCT = {"required": 0, "basic": 10, "improvement": 30, "upgrade": 70}
DEFAULT_CAP_FEN_PER_M2 = 40000

PLAN_STATUSES = ("draft", "published", "superseded")
PLAN_STATUS_LABELS = {"draft": "草稿", "published": "已发布", "superseded": "已被新版本取代"}
ATTACHMENT_KINDS = ("rendering", "drawing", "management_plan", "other")
ATTACHMENT_KIND_LABELS = {"rendering": "效果图", "drawing": "设计图纸", "management_plan": "长效管理方案",
                          "other": "其他材料"}
HARDSHIP_MODES = ("exempt", "partial")
HARDSHIP_MODE_LABELS = {"exempt": "全额减免", "partial": "部分补助"}
PAYMENT_METHODS = ("cash", "bank", "wechat", "alipay", "other")
PAYMENT_METHOD_LABELS = {"cash": "现金", "bank": "银行转账", "wechat": "微信", "alipay": "支付宝", "other": "其他"}
START_STATUSES = ("draft", "submitted", "approved", "returned")
START_STATUS_LABELS = {"draft": "草稿", "submitted": "已提交", "approved": "已批准", "returned": "已退回"}


class ContributionRule(db.Model):
    """A street office's contribution ratios and subsidy cap (absent: the seed-001 defaults)."""

    __tablename__ = "contribution_rule"
    __table_args__ = tuple(
        sa.CheckConstraint(f"{c}_pct >= 0 and {c}_pct <= 100", name=f"{c}_pct_range") for c in CATEGORIES
    ) + (sa.CheckConstraint("cap_fen_per_m2 >= 0", name="cap_nonnegative"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    street_office_id: Mapped[int] = mapped_column(sa.ForeignKey("street_office.id"), unique=True)
    required_pct: Mapped[int] = mapped_column(sa.Integer, default=0)
    basic_pct: Mapped[int] = mapped_column(sa.Integer, default=10)
    improvement_pct: Mapped[int] = mapped_column(sa.Integer, default=30)
    upgrade_pct: Mapped[int] = mapped_column(sa.Integer, default=70)
    cap_fen_per_m2: Mapped[int] = mapped_column(sa.BigInteger, default=DEFAULT_CAP_FEN_PER_M2)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def pct_by_category(self) -> dict[str, int]:
        return {c: getattr(self, f"{c}_pct") for c in CATEGORIES}


class PlanVersion(db.Model):
    """改造方案 version. Votes and pledges refer to exactly one version."""

    __tablename__ = "plan_version"
    __table_args__ = (
        sa.UniqueConstraint("estate_id", "number"),
        sa.CheckConstraint("status in ('draft', 'published', 'superseded')", name="status_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    number: Mapped[int] = mapped_column(sa.Integer)
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="draft")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    supersedes_id: Mapped[int | None] = mapped_column(sa.ForeignKey("plan_version.id"))
    change_summary: Mapped[str] = mapped_column(sa.Text, default="")
    budget_summary: Mapped[str] = mapped_column(sa.Text, default="")
    funding_plan: Mapped[str] = mapped_column(sa.Text, default="")
    management_plan: Mapped[str] = mapped_column(sa.Text, default="")
    pledge_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pledge_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pledge_closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    estate = relationship("Estate")
    supersedes: Mapped[PlanVersion | None] = relationship(remote_side="PlanVersion.id")
    items: Mapped[list[PlanItem]] = relationship(
        back_populates="plan_version", order_by="PlanItem.position, PlanItem.id", cascade="all, delete-orphan")
    attachments: Mapped[list[PlanAttachment]] = relationship(
        back_populates="plan_version", order_by="PlanAttachment.id", cascade="all, delete-orphan")

    @property
    def is_frozen(self) -> bool:
        return self.status != "draft"

    @property
    def status_label(self) -> str:
        return PLAN_STATUS_LABELS[self.status]

    @property
    def total_cost_fen(self) -> int:
        return sum(i.cost_fen for i in self.items)

    def has_management_plan(self) -> bool:
        return bool((self.management_plan or "").strip()) or any(
            a.kind == "management_plan" for a in self.attachments)

    def ensure_editable(self) -> None:
        if self.is_frozen:
            raise Conflict(f"方案第 {self.number} 版{self.status_label}，不能再修改；请新建版本",
                           code="plan_frozen")

    def publish_problems(self) -> list[str]:
        """Why this draft cannot be published yet (empty = it can)."""
        problems = []
        if self.status != "draft":
            problems.append(f"方案第 {self.number} 版{self.status_label}")
        if not self.items:
            problems.append("方案还没有任何改造项目")
        if not (self.title or "").strip():
            problems.append("方案标题不能为空")
        if self.supersedes_id and not (self.change_summary or "").strip():
            problems.append("新版本必须写明与上一版相比的变更说明")
        if (self.pledge_opens_at and self.pledge_closes_at
                and self.pledge_closes_at <= self.pledge_opens_at):
            problems.append("出资承诺截止时间必须晚于开始时间")
        return problems

    def publish(self, now: datetime) -> None:
        problems = self.publish_problems()
        if problems:
            raise Conflict("方案不能发布：" + "；".join(problems), code="plan_not_publishable",
                           errors={"plan": problems})
        self.status = "published"
        self.published_at = now

    def mark_superseded(self, now: datetime) -> None:
        if self.status != "published":
            raise Conflict(f"只有已发布的方案才能被取代（第 {self.number} 版为{self.status_label}）",
                           code="plan_not_published")
        self.status = "superseded"
        self.superseded_at = now

    def pledge_window_open(self, now: datetime) -> bool:
        if self.status != "published" or self.pledge_closed_at is not None:
            return False
        if self.pledge_opens_at and now < self.pledge_opens_at:
            return False
        if self.pledge_closes_at and now >= self.pledge_closes_at:
            return False
        return True


plan_item_building = sa.Table(
    "plan_item_building",
    db.Model.metadata,
    sa.Column("plan_item_id", sa.ForeignKey("plan_item.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("building_id", sa.ForeignKey("building.id"), primary_key=True, index=True),
)


class PlanItem(db.Model):
    """One work of a plan: its category decides the residents' percentage; scope decides who pays."""

    __tablename__ = "plan_item"
    __table_args__ = (
        sa.CheckConstraint("cost_fen > 0", name="cost_positive"),
        sa.CheckConstraint("category in ('required', 'basic', 'improvement', 'upgrade')", name="category_known"),
        sa.CheckConstraint("scope in ('estate', 'buildings')", name="scope_known"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    name: Mapped[str] = mapped_column(sa.String(200))
    category: Mapped[str] = mapped_column(sa.String(20))
    scope: Mapped[str] = mapped_column(sa.String(20), default="estate")
    cost_fen: Mapped[int] = mapped_column(sa.BigInteger)
    description: Mapped[str] = mapped_column(sa.Text, default="")
    plan_version: Mapped[PlanVersion] = relationship(back_populates="items")
    buildings = relationship("Building", secondary=plan_item_building, order_by="Building.name")

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]

    @property
    def scope_label(self) -> str:
        if self.scope == "estate":
            return "全小区"
        return "、".join(b.name for b in self.buildings)


class PlanAttachment(db.Model):
    """Renderings, drawings, the long-term management plan: PDF or images, stored in the database."""

    __tablename__ = "plan_attachment"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    filename: Mapped[str] = mapped_column(sa.String(200))
    content_type: Mapped[str] = mapped_column(sa.String(60))
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    sha256: Mapped[str] = mapped_column(sa.String(64))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    plan_version: Mapped[PlanVersion] = relationship(back_populates="attachments")

    @property
    def kind_label(self) -> str:
        return ATTACHMENT_KIND_LABELS.get(self.kind, self.kind)


class HardshipTreatment(db.Model):
    """困难户: the unit's share is exempted in full or reduced by a fixed amount someone else covers."""

    __tablename__ = "hardship_treatment"
    __table_args__ = (
        sa.CheckConstraint("mode in ('exempt', 'partial')", name="mode_known"),
        sa.CheckConstraint("subsidy_fen >= 0", name="subsidy_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), unique=True)
    mode: Mapped[str] = mapped_column(sa.String(20))
    subsidy_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)  # partial only
    covered_by: Mapped[str] = mapped_column(sa.String(60))  # 街道 / 社区 / 慈善 ...
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    unit = relationship("Unit")

    @property
    def mode_label(self) -> str:
        return HARDSHIP_MODE_LABELS[self.mode]


class Pledge(db.Model):
    """居民承诺书: the owner commits the unit's amount for one plan version."""

    __tablename__ = "pledge"
    __table_args__ = (
        sa.CheckConstraint("amount_fen >= 0", name="amount_nonnegative"),
        # At most one pledge in force per unit and version; withdrawn ones stay as history.
        sa.Index("ix_pledge_active_unit", "plan_version_id", "unit_id", unique=True,
                 sqlite_where=sa.text("withdrawn_at IS NULL"), postgresql_where=sa.text("withdrawn_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    signed_by_owner_id: Mapped[int] = mapped_column(sa.ForeignKey("owner.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_by_owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("owner.id"))
    plan_version = relationship("PlanVersion")
    unit = relationship("Unit")
    signed_by = relationship("Owner", foreign_keys=[signed_by_owner_id])

    @property
    def is_active(self) -> bool:
        return self.withdrawn_at is None


class Payment(db.Model):
    """One ledger line. Never edited nor deleted: a mistake is corrected by a reversing entry."""

    __tablename__ = "payment"
    __table_args__ = (sa.CheckConstraint("amount_fen <> 0", name="amount_nonzero"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    method: Mapped[str] = mapped_column(sa.String(20))
    reference: Mapped[str] = mapped_column(sa.String(100), default="")
    paid_on: Mapped[date] = mapped_column(sa.Date)
    note: Mapped[str] = mapped_column(sa.String(200), default="")
    entered_by_id: Mapped[int] = mapped_column(sa.ForeignKey("app_user.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payment.id"), unique=True)
    unit = relationship("Unit")
    entered_by = relationship("User")
    reverses: Mapped[Payment | None] = relationship(remote_side="Payment.id")

    @property
    def method_label(self) -> str:
        return PAYMENT_METHOD_LABELS.get(self.method, self.method)


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


class Settlement(db.Model):
    """决算: audited final cost per item; per-unit refund or top-up (多退少补) fixed when finalised."""

    __tablename__ = "settlement"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_version_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_version.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalised_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    plan_version = relationship("PlanVersion")
    items: Mapped[list[SettlementItem]] = relationship(back_populates="settlement", cascade="all, delete-orphan")
    unit_lines: Mapped[list[SettlementUnitLine]] = relationship(
        back_populates="settlement", cascade="all, delete-orphan", order_by="SettlementUnitLine.unit_id")

    @property
    def is_final(self) -> bool:
        return self.finalised_at is not None

    def ensure_editable(self) -> None:
        if self.is_final:
            raise Conflict("决算已定稿，不能再修改", code="settlement_final")


class SettlementItem(db.Model):
    __tablename__ = "settlement_item"
    __table_args__ = (
        sa.UniqueConstraint("settlement_id", "plan_item_id"),
        sa.CheckConstraint("audited_cost_fen >= 0", name="cost_nonnegative"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(sa.ForeignKey("settlement.id", ondelete="CASCADE"), index=True)
    plan_item_id: Mapped[int] = mapped_column(sa.ForeignKey("plan_item.id"))
    audited_cost_fen: Mapped[int] = mapped_column(sa.BigInteger)
    settlement: Mapped[Settlement] = relationship(back_populates="items")
    plan_item = relationship("PlanItem")


class SettlementUnitLine(db.Model):
    """Frozen at finalisation: final share, paid, and the difference (+ top-up, − refund)."""

    __tablename__ = "settlement_unit_line"
    __table_args__ = (sa.UniqueConstraint("settlement_id", "unit_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(sa.ForeignKey("settlement.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"))
    planned_owed_fen: Mapped[int] = mapped_column(sa.BigInteger)
    final_owed_fen: Mapped[int] = mapped_column(sa.BigInteger)
    paid_fen: Mapped[int] = mapped_column(sa.BigInteger)
    difference_fen: Mapped[int] = mapped_column(sa.BigInteger)
    settlement: Mapped[Settlement] = relationship(back_populates="unit_lines")
    unit = relationship("Unit")


_PLAN_LIFECYCLE_FIELDS = {"status", "superseded_at", "published_at", "pledge_closed_at"}


@event.listens_for(Session, "before_flush")
def _guard_frozen_plans(session, flush_context, instances):
    """Last line of defence: a frozen plan version or a ledger entry is never changed in place."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Payment) and session.is_modified(obj, include_collections=False):
            raise Conflict("收款记录不能修改或删除，请录入冲正记录", code="ledger_append_only")
        if isinstance(obj, Payment) and obj in session.deleted:
            raise Conflict("收款记录不能修改或删除，请录入冲正记录", code="ledger_append_only")
        if isinstance(obj, PlanVersion) and obj in session.dirty:
            state = sa.inspect(obj)
            changed = {a.key for a in state.attrs if a.history.has_changes() and a.key not in
                       ("items", "attachments", "supersedes", "estate")}
            old_status = state.attrs.status.history.deleted
            was_frozen = (old_status[0] if old_status else obj.status) != "draft"
            if was_frozen and changed - _PLAN_LIFECYCLE_FIELDS:
                raise Conflict(f"方案第 {obj.number} 版已发布，不能再修改", code="plan_frozen")
        if isinstance(obj, PlanItem | PlanAttachment):
            version = obj.plan_version
            if version is not None and version.status != "draft" and (
                    obj in session.deleted or session.is_modified(obj)):
                raise Conflict(f"方案第 {version.number} 版已发布，不能修改其项目或附件", code="plan_frozen")
    for obj in session.new:
        if isinstance(obj, PlanItem | PlanAttachment):
            version = obj.plan_version
            if version is not None and version.status != "draft":
                raise Conflict(f"方案第 {version.number} 版已发布，不能再添加项目或附件", code="plan_frozen")
