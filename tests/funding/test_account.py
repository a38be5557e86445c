"""Issue 15 item 4: the dedicated account, its ledger, the bank statement (CSV, UTF-8 or GB18030) and the
reconciliation: matched, missing from the statement, unknown to the ledger."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from residents_app.core.reconcile import Line, reconcile
from residents_app.errors import Conflict, ValidationFailed
from residents_app.funding import account
from residents_app.funding import services as funding_svc
from residents_app.funding.account_models import AccountEntry

STATEMENT = ("日期,金额,对方户名,摘要\n"
             "2026-08-28,5400.00,张一,1幢-101 改造出资 BK001\n"
             "2026-08-31,12.34,银行,结息\n")


def test_core_reconcile_one_matched_one_missing_one_unknown():
    ledger = [Line(1, date(2026, 8, 28), 540_000, reference="BK001"), Line(2, date(2026, 8, 30), -1_000_000)]
    bank = [Line(1, date(2026, 8, 28), 540_000, memo="BK001"), Line(2, date(2026, 8, 31), 1_234)]
    r = reconcile(ledger, bank)
    assert [(a.key, b.key) for a, b in r.matched] == [(1, 1)]
    assert [(ln.key, ln.amount_fen) for ln in r.missing_from_bank] == [(2, -1_000_000)]
    assert [(ln.key, ln.amount_fen) for ln in r.unknown_in_ledger] == [(2, 1_234)]
    assert (r.balanced, r.missing_fen, r.unknown_fen) == (False, -1_000_000, 1_234)


def test_core_reconcile_prefers_same_day_then_nearest_and_each_line_once():
    ledger = [Line("a", date(2026, 8, 1), 100), Line("b", date(2026, 8, 3), 100), Line("c", date(2026, 8, 20), 100)]
    bank = [Line(1, date(2026, 8, 3), 100), Line(2, date(2026, 8, 2), 100), Line(3, date(2026, 8, 2), 100)]
    r = reconcile(ledger, bank)
    assert sorted((a.key, b.key) for a, b in r.matched) == [("a", 2), ("b", 1)]
    assert [ln.key for ln in r.missing_from_bank] == ["c"] and [ln.key for ln in r.unknown_in_ledger] == [3]


def _ledger(world, now):
    account.set_account(world.estate, bank_name="温州银行鹿城支行", account_name="幸福小区改造资金专户",
                        account_number="6222 0000 1111", opened_on=date(2026, 8, 1), user=world.committee, now=now)
    pay = funding_svc.record_payment(world.estate, unit_id=world.u101.id, amount_fen=540_000, method="bank",
                                     paid_on=date(2026, 8, 28), reference="BK001", user=world.committee, now=now)
    spend = account.book_spending(world.estate, kind="works", amount_fen=1_000_000, booked_on=date(2026, 8, 30),
                                  counterparty="某建设公司", memo="第一期工程款", user=world.committee, now=now)
    return pay, spend


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8"])
def test_every_payment_is_an_entry_and_the_statement_reconciles(world, now, encoding):
    world.plan()
    pay, spend = _ledger(world, now)
    assert account.account_of(world.estate.id).account_number == "622200001111"
    entries = account.entries_of(world.estate.id)
    assert [(e.kind, e.amount_fen, e.payment_id) for e in entries] == [
        ("payment", 540_000, pay.id), ("works", -1_000_000, None)]
    assert account.balance_fen(world.estate.id) == -460_000
    rows = account.import_statement(world.estate, STATEMENT.encode(encoding), user=world.committee, now=now)
    assert [(r.booked_on, r.amount_fen, r.counterparty) for r in rows] == [
        (date(2026, 8, 28), 540_000, "张一"), (date(2026, 8, 31), 1_234, "银行")]
    rec = account.reconciliation(world.estate.id)
    assert [(a.key, b.key) for a, b in rec.matched] == [(entries[0].id, 1)]
    assert [(ln.amount_fen, ln.counterparty) for ln in rec.missing_from_bank] == [(-1_000_000, "某建设公司")]
    assert [(ln.amount_fen, ln.memo) for ln in rec.unknown_in_ledger] == [(1_234, "结息")]
    with pytest.raises(Conflict):
        account.import_statement(world.estate, STATEMENT.encode(encoding), user=world.committee, now=now)


def test_reversal_is_an_entry_and_entries_are_append_only(world, now, db):
    world.plan()
    pay, _ = _ledger(world, now)
    funding_svc.reverse_payment(pay, reason="录错户", user=world.committee, now=now)
    entries = account.entries_of(world.estate.id)
    assert [(e.kind, e.amount_fen) for e in entries] == [("payment", 540_000), ("works", -1_000_000),
                                                         ("payment", -540_000)]
    entries[0].amount_fen = 1
    with pytest.raises(Conflict):
        db.session.flush()
    db.session.rollback()


def test_bad_statement_and_account_input_are_refused(world, now):
    with pytest.raises(ValidationFailed) as info:
        account.parse_statement("日期,金额\n2026-13-01,1\n2026-08-01,abc\n".encode())
    assert set(info.value.errors) == {"line_1", "line_2"}
    with pytest.raises(ValidationFailed):
        account.parse_statement(b"\x00\x01binary")
    # no header row: date, amount, counterparty, memo
    assert account.parse_statement('2026/8/1,"-1,234.50",某公司,退款\n'.encode("gb18030")) == [
        Line(1, date(2026, 8, 1), -123_450, "某公司", "退款")]
    with pytest.raises(ValidationFailed) as info:
        account.set_account(world.estate, bank_name="", account_name="x", account_number="12a", user=world.committee,
                            now=now)
    assert set(info.value.errors) == {"bank_name", "account_number"}
    with pytest.raises(ValidationFailed):
        account.book_spending(world.estate, kind="works", amount_fen=1, booked_on=now.date() + timedelta(days=1),
                              counterparty="x", user=world.committee, now=now)


def test_account_page_imports_and_lists_differences(client, login_as, world, db):
    world.plan()
    _ledger(world, world.now)
    db.session.commit()
    login_as(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/account", content_type="multipart/form-data",
                       data={"action": "statement",
                             "statement": (io.BytesIO(STATEMENT.encode("gb18030")), "流水.csv")})
    assert resp.status_code == 302
    page = client.get(f"/estates/{world.estate.id}/account").get_data(as_text=True)
    assert "匹配 1 笔" in page and "流水中有、银行没有 1 笔（-10,000.00 元）" in page
    assert "银行有、流水中没有 1 笔（12.34 元）" in page
    assert db.session.query(AccountEntry).count() == 2
