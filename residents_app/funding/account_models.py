"""Money as estates really pay (issue 15): funding sources, the dedicated account and its ledger, the bank
statement, settlement dues (多退少补 carried out) and the monthly finance publicity.

Money is integer fen (BigInteger). Account entries are append-only like payments: a mistake is corrected by
a reversing entry.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from residents_app.db import UTCDateTime
from residents_app.errors import Conflict
from residents_app.extensions import db

# Seed 001: 个人出资、单位捐资、专项维修资金、小区公共收益; seed 003: selling the use of parking spaces;
# seeds 000/002: donations in kind and labour, valued.
SOURCE_KINDS = ("unit_donation", "maintenance_fund", "public_income", "parking_rights", "in_kind", "labour")


SOURCE_KIND_LABELS = {"unit_donation": "单位捐资", "maintenance_fund": "专项维修资金", "public_income": "小区公共收益",
                      "parking_rights": "停车位使用权出让", "in_kind": "捐资捐物（折价）", "labour": "投工投劳（折价）"}


# Using these is decided by the owners (Civil Code art. 278: maintenance funds item 5, common parts and
# their income items 8/9): a passed round of the estate is required.
SOURCES_NEEDING_VOTE = ("maintenance_fund", "public_income", "parking_rights")


# Valued contributions never pass through the account.
NON_CASH_SOURCES = ("in_kind", "labour")


ENTRY_KINDS = ("payment", "refund", "top_up", "source", "works", "other")


ENTRY_KIND_LABELS = {"payment": "居民出资", "refund": "决算退款", "top_up": "决算补缴", "source": "资金来源",
                     "works": "工程款支付", "other": "其他"}


class FundingSource(db.Model):
    """Estate money with its source, its evidence and the decision that allows it; offsets residents' shares."""

    __tablename__ = "funding_source"
    __table_args__ = (sa.CheckConstraint("amount_fen > 0", name="amount_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(30))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    provider: Mapped[str] = mapped_column(sa.String(100), default="")
    description: Mapped[str] = mapped_column(sa.String(200), default="")
    item_names: Mapped[list] = mapped_column(sa.JSON, default=list)  # empty: by area over all units
    decision_round_id: Mapped[int | None] = mapped_column(sa.ForeignKey("round.id"))
    decision_note: Mapped[str] = mapped_column(sa.Text, default="")
    received_on: Mapped[date | None] = mapped_column(sa.Date)
    evidence_filename: Mapped[str] = mapped_column(sa.String(200), default="")
    evidence_content_type: Mapped[str] = mapped_column(sa.String(60), default="")
    evidence_sha256: Mapped[str] = mapped_column(sa.String(64), default="")
    evidence_data: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str] = mapped_column(sa.String(200), default="")
    decision_round = relationship("Round")

    @property
    def kind_label(self) -> str:
        return SOURCE_KIND_LABELS.get(self.kind, self.kind)

    @property
    def has_evidence(self) -> bool:
        return bool(self.evidence_sha256)

    @property
    def target_label(self) -> str:
        if not self.item_names:
            return "按产权面积抵扣全体业主分摊"
        return "抵扣以下项目的分摊：" + "、".join(self.item_names)


class FundingAccount(db.Model):
    """资金专用账户: where every payment arrives and every refund leaves."""

    __tablename__ = "funding_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), unique=True)
    bank_name: Mapped[str] = mapped_column(sa.String(100))
    account_name: Mapped[str] = mapped_column(sa.String(100))
    account_number: Mapped[str] = mapped_column(sa.String(40))
    opened_on: Mapped[date | None] = mapped_column(sa.Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AccountEntry(db.Model):
    """One line of the account's ledger (+ money in, − money out). Never edited nor deleted."""

    __tablename__ = "account_entry"
    __table_args__ = (sa.CheckConstraint("amount_fen <> 0", name="amount_nonzero"),
                      sa.Index("ix_account_entry_estate_booked", "estate_id", "booked_on"))
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    booked_on: Mapped[date] = mapped_column(sa.Date)
    counterparty: Mapped[str] = mapped_column(sa.String(100), default="")
    memo: Mapped[str] = mapped_column(sa.String(200), default="")
    reference: Mapped[str] = mapped_column(sa.String(100), default="")
    unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey("unit.id"))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payment.id"), unique=True)
    source_id: Mapped[int | None] = mapped_column(sa.ForeignKey("funding_source.id"))
    reverses_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account_entry.id"), unique=True)
    entered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime)
    unit = relationship("Unit")

    @property
    def kind_label(self) -> str:
        return ENTRY_KIND_LABELS.get(self.kind, self.kind)


class BankStatementLine(db.Model):
    """One line of an imported bank statement (CSV: date, amount, counterparty, memo)."""

    __tablename__ = "bank_statement_line"
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    import_id: Mapped[str] = mapped_column(sa.String(64), index=True)  # sha256 of the file
    line_no: Mapped[int] = mapped_column(sa.Integer)
    booked_on: Mapped[date] = mapped_column(sa.Date)
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    counterparty: Mapped[str] = mapped_column(sa.String(100), default="")
    memo: Mapped[str] = mapped_column(sa.String(200), default="")
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SettlementDue(db.Model):
    """A unit's refund or top-up after the settlement is final; closed when the money has moved."""

    __tablename__ = "settlement_due"
    __table_args__ = (sa.UniqueConstraint("settlement_id", "unit_id"),
                      sa.CheckConstraint("kind in ('refund', 'top_up')", name="kind_known"),
                      sa.CheckConstraint("amount_fen > 0", name="amount_positive"))
    id: Mapped[int] = mapped_column(primary_key=True)
    settlement_id: Mapped[int] = mapped_column(sa.ForeignKey("settlement.id"), index=True)
    unit_id: Mapped[int] = mapped_column(sa.ForeignKey("unit.id"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(20))
    amount_fen: Mapped[int] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("app_user.id"))
    payment_id: Mapped[int | None] = mapped_column(sa.ForeignKey("payment.id"))
    unit = relationship("Unit")

    @property
    def kind_label(self) -> str:
        return "退还" if self.kind == "refund" else "补缴"

    @property
    def state_label(self) -> str:
        if self.closed_at is None:
            return "待退还" if self.kind == "refund" else "待补缴"
        return "已退还" if self.kind == "refund" else "已补缴"


class FinanceReport(db.Model):
    """One month of the estate's income and spending: due (the scheduler's reminder), then posted as a publicity."""

    __tablename__ = "finance_report"
    __table_args__ = (sa.UniqueConstraint("estate_id", "year", "month"),
                      sa.CheckConstraint("month >= 1 and month <= 12", name="month_range"))
    id: Mapped[int] = mapped_column(primary_key=True)
    estate_id: Mapped[int] = mapped_column(sa.ForeignKey("estate.id"), index=True)
    year: Mapped[int] = mapped_column(sa.Integer)
    month: Mapped[int] = mapped_column(sa.Integer)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    income_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    spending_fen: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    lines: Mapped[list] = mapped_column(sa.JSON, default=list)
    publicity_id: Mapped[int | None] = mapped_column(sa.ForeignKey("publicity.id"))
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def label(self) -> str:
        return f"{self.year} 年 {self.month} 月"


@event.listens_for(Session, "before_flush")
def _guard_account_ledger(session, flush_context, instances):
    """An account entry is never changed or deleted in place."""
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AccountEntry) and (obj in session.deleted or session.is_modified(obj)):
            raise Conflict("账户流水不能修改或删除，请录入冲正记录", code="ledger_append_only")
