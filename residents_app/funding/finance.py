"""Finance publicity (财务公示): the estate's income and spending by month, from the account's ledger, posted on
the public board as a publicity of its own; the scheduler reminds the committee when a month is due.

The figures are sums of the ledger's entries booked in the month, so income − spending equals the ledger's
movement of the month and the closing balance equals the ledger's balance at the month's end.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.errors import Conflict, ValidationFailed
from residents_app.extensions import db
from residents_app.formatting import format_yuan
from residents_app.funding.account_models import ENTRY_KIND_LABELS, ENTRY_KINDS, AccountEntry, FinanceReport
from residents_app.publicity import services as publicity_svc
from residents_app.publicity.models import SUBJECT_SNAPSHOTS
from residents_app.registry.models import Estate

INCOME_KINDS = ("payment", "top_up", "source", "other")


def _order(kind: str) -> int:
    return ENTRY_KINDS.index(kind) if kind in ENTRY_KINDS else len(ENTRY_KINDS)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    if not (isinstance(year, int) and isinstance(month, int) and 2000 <= year <= 2100 and 1 <= month <= 12):
        raise ValidationFailed("月份有误", errors={"month": [f"{year}-{month}"]})
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])


def month_figures(estate_id: int, year: int, month: int) -> dict:
    """Opening balance, income and spending by kind, totals and closing balance of one month (fen)."""
    start, end = month_bounds(year, month)
    opening = int(db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(AccountEntry.amount_fen), 0)).where(
        AccountEntry.estate_id == estate_id, AccountEntry.booked_on < start)).scalar_one())
    positive = AccountEntry.amount_fen > sa.literal_column("0")  # a literal: PostgreSQL groups by the same text
    rows = db.session.execute(
        sa.select(AccountEntry.kind, positive, sa.func.sum(AccountEntry.amount_fen), sa.func.count())
        .where(AccountEntry.estate_id == estate_id, AccountEntry.booked_on >= start, AccountEntry.booked_on <= end)
        .group_by(AccountEntry.kind, positive)).all()
    income, spending = [], []
    for kind, positive, total, count in sorted(rows, key=lambda r: (not r[1], _order(r[0]))):
        label = ENTRY_KIND_LABELS.get(kind, kind)
        if not positive and kind in INCOME_KINDS:
            label += "（冲正、退回）"
        (income if positive else spending).append({"kind": kind, "label": label, "fen": abs(int(total)),
                                                   "count": int(count)})
    income_fen = sum(r["fen"] for r in income)
    spending_fen = sum(r["fen"] for r in spending)
    return {"year": year, "month": month, "opening_fen": opening, "income": income, "spending": spending,
            "income_fen": income_fen, "spending_fen": spending_fen,
            "closing_fen": opening + income_fen - spending_fen}


def figure_lines(f: dict) -> list[str]:
    lines = [f"期初余额：{format_yuan(f['opening_fen'])} 元"]
    lines += [f"收入 · {r['label']}：{format_yuan(r['fen'])} 元（{r['count']} 笔）" for r in f["income"]]
    lines += [f"支出 · {r['label']}：{format_yuan(r['fen'])} 元（{r['count']} 笔）" for r in f["spending"]]
    lines.append(f"本月收入合计 {format_yuan(f['income_fen'])} 元，支出合计 {format_yuan(f['spending_fen'])} 元，"
                 f"期末余额 {format_yuan(f['closing_fen'])} 元")
    return lines


def reports_of(estate_id: int) -> list[FinanceReport]:
    return list(db.session.execute(sa.select(FinanceReport).where(FinanceReport.estate_id == estate_id)
                                   .order_by(FinanceReport.year.desc(), FinanceReport.month.desc())).scalars())


def _report(estate_id: int, year: int, month: int) -> FinanceReport | None:
    return db.session.execute(sa.select(FinanceReport).where(
        FinanceReport.estate_id == estate_id, FinanceReport.year == year, FinanceReport.month == month)
    ).scalar_one_or_none()


def post_finance_publicity(estate: Estate, year: int, month: int, *, posted_on: date, user, now: datetime,
                           working_days: int = 5, calendar_=None) -> FinanceReport:
    """Post a finished month's income and spending on the public board (a publicity of its own)."""
    start, end = month_bounds(year, month)
    if beijing_date(now) <= end:
        raise Conflict(f"{year} 年 {month} 月尚未结束，不能公示该月收支", code="month_not_over")
    report = _report(estate.id, year, month)
    if report is not None and report.publicity_id is not None:
        raise Conflict(f"{year} 年 {month} 月的财务收支已公示", code="finance_posted")
    if report is None:
        report = FinanceReport(estate_id=estate.id, year=year, month=month)
        db.session.add(report)
    f = month_figures(estate.id, year, month)
    report.income_fen, report.spending_fen, report.lines = f["income_fen"], f["spending_fen"], figure_lines(f)
    db.session.flush()
    notice = (f"根据老旧小区改造资金管理要求，现将本小区资金专用账户 {year} 年 {month} 月的收支情况公示如下。"
              f"如有疑问，请在公示期内向业委会提出。")
    title = f"{estate.name} {year} 年 {month} 月财务收支公示"
    pub = publicity_svc.post_publicity(
        estate, subject_type="finance_month", subject_id=report.id, title=title,
        notice_text=notice, posted_on=posted_on, working_days=working_days, actor=actor_for_user(user), now=now,
        calendar=calendar_)
    report.publicity_id = pub.id
    report.posted_at = now
    db.session.flush()
    record("funding.finance_posted", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="finance_report", subject_id=report.id,
           data={"year": year, "month": month, "income_fen": report.income_fen, "spending_fen": report.spending_fen,
                 "publicity_id": pub.id})
    return report


def _snapshot(estate: Estate, subject_id: int) -> tuple[str, list[str], list[str]]:
    report = db.session.get(FinanceReport, subject_id)
    if report is None or report.estate_id != estate.id:
        raise ValidationFailed("找不到本小区的该月财务收支", errors={"subject_id": str(subject_id)})
    return "", [], list(report.lines)


SUBJECT_SNAPSHOTS["finance_month"] = _snapshot


def _months(first: date, last: date):
    y, m = first.year, first.month
    while (y, m) <= (last.year, last.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def remind_due_finance_publicity(now: datetime) -> int:
    """Once per estate and month: every finished month since the account's first entry that is not yet
    publicised gets a reminder (a due report the committee sees, and an audit record). Idempotent."""
    today = beijing_date(now)
    firsts = db.session.execute(sa.select(AccountEntry.estate_id, sa.func.min(AccountEntry.booked_on))
                                .group_by(AccountEntry.estate_id).order_by(AccountEntry.estate_id)).all()
    n = 0
    for estate_id, first in firsts:
        known = {(r.year, r.month) for r in db.session.execute(
            sa.select(FinanceReport.year, FinanceReport.month).where(FinanceReport.estate_id == estate_id)).all()}
        for y, m in _months(first, today):
            if (y, m) >= (today.year, today.month) or (y, m) in known:
                continue
            db.session.add(FinanceReport(estate_id=estate_id, year=y, month=m, reminded_at=now, lines=[]))
            db.session.flush()
            record("funding.finance_publicity_due", chain=estate_id, actor="system:scheduler", now=now,
                   subject_type="estate", subject_id=estate_id, data={"year": y, "month": m})
            n += 1
    return n


def due_reports(estate_id: int) -> list[FinanceReport]:
    return [r for r in reports_of(estate_id) if r.publicity_id is None]
