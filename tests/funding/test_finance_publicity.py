"""Issue 15 item 6: finance publicity: a month's income and spending posted on the public board, totals equal to
the ledger; the scheduler reminds the committee once per finished month (fixed clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict
from residents_app.funding import account, finance, sources
from residents_app.funding import services as funding_svc
from residents_app.funding.account_models import AccountEntry, FinanceReport
from residents_app.scheduler import jobs


def august(world):
    """Aug 2026: a donation into the account 3,000.00, 1幢-101 pays 5,400.00 and 1幢-102 pays 100.00 then it is
    reversed, works paid 10,000.00; 2幢-101 pays 2,000.00 on 2026-09-01 (next month)."""
    world.plan()
    now = world.now
    sources.add_source(world.estate, kind="unit_donation", amount_fen=300_000, provider="某某公司",
                       received_on=date(2026, 8, 15), into_account=True, decision_note="业委会决议",
                       user=world.committee, now=now)
    funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=540_000, method="bank",
                               paid_on=date(2026, 8, 28), user=world.committee, now=now)
    wrong = funding_svc.record_payment(world.estate, unit_id=world.u102.id, amount_fen=10_000, method="cash",
                                       paid_on=date(2026, 8, 29), user=world.committee, now=now)
    # a reversal is booked on the day it is entered; enter it on a clock still in August
    funding_svc.reverse_payment(wrong, reason="录错", user=world.committee, now=datetime(2026, 8, 30, 2, tzinfo=UTC))
    account.book_spending(world.estate, kind="works", amount_fen=1_000_000, booked_on=date(2026, 8, 30),
                          counterparty="某建设公司", user=world.committee, now=now)
    funding_svc.record_payment(world.estate, unit_id=world.u201.id, amount_fen=200_000, method="bank",
                               paid_on=date(2026, 9, 1), user=world.committee, now=now)


def test_month_figures_equal_the_ledger(world, db):
    august(world)
    f = finance.month_figures(world.estate.id, 2026, 8)
    assert finance.figure_lines(f) == [
        "期初余额：0.00 元",
        "收入 · 居民出资：5,500.00 元（2 笔）",
        "收入 · 资金来源：3,000.00 元（1 笔）",
        "支出 · 居民出资（冲正、退回）：100.00 元（1 笔）",
        "支出 · 工程款支付：10,000.00 元（1 笔）",
        "本月收入合计 8,500.00 元，支出合计 10,100.00 元，期末余额 -1,600.00 元",
    ]
    aug = db.session.execute(sa.select(sa.func.sum(AccountEntry.amount_fen)).where(
        AccountEntry.booked_on >= date(2026, 8, 1), AccountEntry.booked_on <= date(2026, 8, 31))).scalar_one()
    assert f["income_fen"] - f["spending_fen"] == aug == -160_000
    sep = finance.month_figures(world.estate.id, 2026, 9)
    assert (sep["opening_fen"], sep["closing_fen"]) == (-160_000, account.balance_fen(world.estate.id)) == (
        -160_000, 40_000)


def test_post_finance_publicity_on_the_board(client, world, db):
    august(world)
    with pytest.raises(Conflict) as info:
        finance.post_finance_publicity(world.estate, 2026, 9, posted_on=date(2026, 9, 1), user=world.committee,
                                       now=world.now)
    assert info.value.code == "month_not_over"
    report = finance.post_finance_publicity(world.estate, 2026, 8, posted_on=date(2026, 9, 1), user=world.committee,
                                            now=world.now)
    assert (report.income_fen, report.spending_fen) == (850_000, 1_010_000)
    with pytest.raises(Conflict):
        finance.post_finance_publicity(world.estate, 2026, 8, posted_on=date(2026, 9, 1), user=world.committee,
                                       now=world.now)
    db.session.commit()
    page = client.get(f"/p/{world.estate.code}").get_data(as_text=True)
    assert f"{world.estate.name} 2026 年 8 月财务收支公示" in page
    assert "<p>本月收入合计 8,500.00 元，支出合计 10,100.00 元，期末余额 -1,600.00 元</p>" in page


def test_scheduler_reminds_once_per_finished_month(world, db, client, login_as):
    august(world)
    db.session.commit()
    assert jobs.remind_finance_publicity in jobs.STEPS
    run = jobs.tick(datetime(2026, 8, 31, 15, 59, tzinfo=UTC))  # 23:59 Beijing: August not over yet
    assert "finance_publicity_due" not in run.summary
    run = jobs.tick(datetime(2026, 10, 1, 1, 0, tzinfo=UTC))  # 09:00 Beijing, 1 October
    assert run.summary["finance_publicity_due"] == 2
    due = db.session.execute(sa.select(FinanceReport.year, FinanceReport.month, FinanceReport.reminded_at)
                             .order_by(FinanceReport.month)).all()
    reminded = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    assert due == [(2026, 8, reminded), (2026, 9, reminded)]
    assert "finance_publicity_due" not in jobs.tick(datetime(2026, 10, 2, 1, 0, tzinfo=UTC)).summary
    login_as(client, world.committee)
    page = client.get(f"/estates/{world.estate.id}/funding").get_data(as_text=True)
    assert "财务收支待公示：2026 年 9 月、2026 年 8 月" in page
    events = db.session.execute(sa.select(AuditEvent.data).where(AuditEvent.kind == "funding.finance_publicity_due")
                                .order_by(AuditEvent.id)).scalars().all()
    assert events == [{"year": 2026, "month": 8}, {"year": 2026, "month": 9}]
    # posting a reminded month fills in the same report
    report = finance.post_finance_publicity(world.estate, 2026, 8, posted_on=date(2026, 10, 8), user=world.committee,
                                            now=datetime(2026, 10, 8, 2, tzinfo=UTC))
    assert report.publicity_id is not None and [r.label for r in finance.due_reports(world.estate.id)] == [
        "2026 年 9 月"]
