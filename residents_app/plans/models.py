"""Plans: plan versions, their items (cost by category, scope) and attachments.

Money is integer fen (`..._fen`, BigInteger). A published plan version is frozen: its fields and
items refuse changes (model methods and a flush guard), a new version supersedes it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from residents_app.db import UTCDateTime, utcnow
from residents_app.errors import Conflict
from residents_app.extensions import db

CATEGORIES = ("required", "basic", "improvement", "upgrade")


CATEGORY_LABELS = {"required": "必选", "basic": "基础", "improvement": "完善", "upgrade": "提升"}


PLAN_STATUSES = ("draft", "published", "superseded")


PLAN_STATUS_LABELS = {"draft": "草稿", "published": "已发布", "superseded": "已被新版本取代"}


# How an item is paid (issue 15): subsidised by category (default), 居民自费 (residents pay 100 %), or
# 另行补助 (its own fixed subsidy, e.g. a lift); the last two are outside the subsidy base and the cap.
FUNDING_MODES = ("subsidised", "self_paid", "separate")


FUNDING_MODE_LABELS = {"subsidised": "按类别补助", "self_paid": "居民自费", "separate": "另行补助"}


ATTACHMENT_KINDS = ("rendering", "drawing", "management_plan", "other")


ATTACHMENT_KIND_LABELS = {"rendering": "效果图", "drawing": "设计图纸", "management_plan": "长效管理方案",
                          "other": "其他材料"}


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
    funding_mode: Mapped[str] = mapped_column(sa.String(20), default="subsidised", server_default="subsidised")
    fixed_subsidy_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    plan_version: Mapped[PlanVersion] = relationship(back_populates="items")
    buildings = relationship("Building", secondary=plan_item_building, order_by="Building.name")

    @property
    def category_label(self) -> str:
        return CATEGORY_LABELS[self.category]

    @property
    def funding_mode_label(self) -> str:
        return FUNDING_MODE_LABELS.get(self.funding_mode or "subsidised", self.funding_mode)

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


_PLAN_LIFECYCLE_FIELDS = {"status", "superseded_at", "published_at", "pledge_closed_at"}


@event.listens_for(Session, "before_flush")
def _guard_frozen_plans(session, flush_context, instances):
    """Last line of defence: a frozen plan version is never changed in place."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, PlanVersion) and obj in session.dirty:
            state = sa.inspect(obj)
            changed = {a.key for a in state.attrs if a.history.has_changes() and a.key not in
                       ("items", "attachments", "supersedes", "estate")}
            old_status = state.attrs.status.history.deleted
            was_frozen = (old_status[0] if old_status else obj.status) != "draft"
            # published_at only moves with the publication itself: votes are checked against it
            if was_frozen and (changed - _PLAN_LIFECYCLE_FIELDS or "published_at" in changed):
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
