"""Money: contribution rules, hardship treatment, pledges, the payment ledger and the final settlement.

Money is integer fen (`..._fen`, BigInteger). The ledger is append-only: a mistake is corrected by a
reversing entry (a flush guard refuses changes and deletes).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from residents_app.db import UTCDateTime, utcnow
from residents_app.errors import Conflict
from residents_app.extensions import db
from residents_app.plans.models import CATEGORIES

# Seed 001 (Lucheng) section 四: residents pay 0 / 10 / 30 / 70 % by category, the subsidy is
# capped at 400 yuan per m² of title area.
DEFAULT_RESIDENT_PCT = {"required": 0, "basic": 10, "improvement": 30, "upgrade": 70}


DEFAULT_CAP_FEN_PER_M2 = 40000


HARDSHIP_MODES = ("exempt", "partial")


HARDSHIP_MODE_LABELS = {"exempt": "全额减免", "partial": "部分补助"}


PAYMENT_METHODS = ("cash", "bank", "wechat", "alipay", "other")


PAYMENT_METHOD_LABELS = {"cash": "现金", "bank": "银行转账", "wechat": "微信", "alipay": "支付宝", "other": "其他"}


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
    # "category" (percentages and the per-m² cap) or "match" (seed 003, Zhuhai: the government adds
    # match_ratio_pct % of what a household pays, at most match_limit_fen per household)
    kind: Mapped[str] = mapped_column(sa.String(20), default="category", server_default="category")
    match_ratio_pct: Mapped[int] = mapped_column(sa.Integer, default=100, server_default="100")
    match_limit_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def pct_by_category(self) -> dict[str, int]:
        return {c: getattr(self, f"{c}_pct") for c in CATEGORIES}


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


@event.listens_for(Session, "before_flush")
def _guard_ledger(session, flush_context, instances):
    """Last line of defence: a ledger entry is never changed or deleted in place."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, Payment) and (obj in session.deleted or session.is_modified(obj, include_collections=False)):
            raise Conflict("收款记录不能修改或删除，请录入冲正记录", code="ledger_append_only")


# Once the start application is submitted the money is fixed. The start application lives in works/, above
# this package, so works registers its check here instead of funding importing upward.
MONEY_LOCKS: list = []


def money_locked(plan) -> bool:
    return any(check(plan) for check in MONEY_LOCKS)


# The per-estate summary rows and the hooks that keep them (read by the district view).
from residents_app.funding import owed, summary  # noqa: E402,F401
