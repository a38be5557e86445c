"""The dedicated account (资金专用账户): its details, its ledger, the bank statement and the reconciliation.

Every resident payment (and its reversal), every settlement refund and top-up, every funding source paid
into the account and every payment of the works is one `AccountEntry` (+ in, − out). The bank statement
is imported as CSV (date, amount, counterparty, memo; UTF-8 or GB18030) and reconciled with the ledger
by `residents_app.core.reconcile`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.core.reconcile import Line, Reconciliation, reconcile
from residents_app.errors import Conflict, ValidationFailed
from residents_app.extensions import db
from residents_app.funding.account_models import AccountEntry, BankStatementLine, FundingAccount, FundingSource
from residents_app.funding.models import Payment
from residents_app.plans.services import MAX_COST_FEN
from residents_app.registry.models import Estate
from residents_app.uploads import decode_text

MAX_STATEMENT_LINES = 20_000


def account_of(estate_id: int) -> FundingAccount | None:
    return db.session.execute(sa.select(FundingAccount).where(FundingAccount.estate_id == estate_id)
                              ).scalar_one_or_none()


def set_account(estate: Estate, *, bank_name: str, account_name: str, account_number: str,
                opened_on: date | None = None, user, now: datetime) -> FundingAccount:
    fields = {"bank_name": (bank_name or "").strip(), "account_name": (account_name or "").strip(),
              "account_number": re.sub(r"\s+", "", account_number or "")}
    errors = {}
    labels = {"bank_name": "开户银行", "account_name": "账户名称", "account_number": "账号"}
    for key, value in fields.items():
        if not value:
            errors[key] = [f"请填写{labels[key]}"]
        elif len(value) > (40 if key == "account_number" else 100):
            errors[key] = [f"{labels[key]}过长"]
    if fields["account_number"] and not fields["account_number"].isdigit():
        errors["account_number"] = ["账号只能包含数字"]
    if errors:
        raise ValidationFailed("资金专用账户信息有误", errors=errors)
    acc = account_of(estate.id)
    if acc is None:
        acc = FundingAccount(estate_id=estate.id)
        db.session.add(acc)
    acc.bank_name, acc.account_name, acc.account_number = (fields["bank_name"], fields["account_name"],
                                                          fields["account_number"])
    acc.opened_on = opened_on
    acc.updated_at = now
    db.session.flush()
    record("funding.account_set", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="funding_account",
           subject_id=acc.id, data={**fields, "opened_on": opened_on.isoformat() if opened_on else None})
    return acc


def _entry(estate_id: int, *, kind: str, amount_fen: int, booked_on: date, counterparty: str = "", memo: str = "",
           reference: str = "", unit_id: int | None = None, payment_id: int | None = None,
           source_id: int | None = None, user=None, now: datetime) -> AccountEntry:
    e = AccountEntry(estate_id=estate_id, kind=kind, amount_fen=amount_fen, booked_on=booked_on,
                     counterparty=(counterparty or "")[:100], memo=(memo or "")[:200],
                     reference=(reference or "")[:100],
                     unit_id=unit_id, payment_id=payment_id, source_id=source_id,
                     entered_by_id=getattr(user, "id", None), entered_at=now)
    db.session.add(e)
    db.session.flush()
    return e


def book_payment(pay: Payment, *, kind: str = "payment", user=None, now: datetime) -> AccountEntry:
    """The account entry of a resident's payment, its reversal, a settlement refund (−) or top-up (+)."""
    memo = pay.note or ("冲正" if pay.reverses_id else "")
    return _entry(pay.estate_id, kind=kind, amount_fen=pay.amount_fen, booked_on=pay.paid_on,
                  counterparty=pay.unit.label, memo=memo, reference=pay.reference, unit_id=pay.unit_id,
                  payment_id=pay.id, user=user, now=now)


def book_source(src: FundingSource, *, user, now: datetime) -> AccountEntry:
    e = _entry(src.estate_id, kind="source", amount_fen=src.amount_fen, booked_on=src.received_on,
               counterparty=src.provider or src.kind_label, memo=f"{src.kind_label} {src.description}".strip(),
               source_id=src.id, user=user, now=now)
    record("funding.account_booked", chain=src.estate_id, actor=actor_for_user(user), now=now,
           subject_type="account_entry", subject_id=e.id, data={"kind": "source", "amount_fen": e.amount_fen})
    return e


def book_spending(estate: Estate, *, kind: str, amount_fen: int, booked_on: date, counterparty: str, memo: str = "",
                  reference: str = "", user, now: datetime) -> AccountEntry:
    """Money leaving the account for the works (or another documented use)."""
    errors = {}
    if kind not in ("works", "other"):
        errors["kind"] = ["支出类别必须是 工程款支付 或 其他"]
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        errors["amount_fen"] = ["支出金额必须大于零（分）"]
    elif amount_fen > MAX_COST_FEN:
        errors["amount_fen"] = ["金额过大，请检查"]
    if not (counterparty or "").strip():
        errors["counterparty"] = ["请填写收款方"]
    if not isinstance(booked_on, date):
        errors["booked_on"] = ["请填写日期"]
    elif booked_on > beijing_date(now):
        errors["booked_on"] = ["日期不能晚于今天"]
    if errors:
        raise ValidationFailed("支出记录有误", errors=errors)
    e = _entry(estate.id, kind=kind, amount_fen=-amount_fen, booked_on=booked_on, counterparty=counterparty.strip(),
               memo=memo, reference=reference, user=user, now=now)
    record("funding.account_booked", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="account_entry", subject_id=e.id,
           data={"kind": kind, "amount_fen": e.amount_fen, "counterparty": e.counterparty})
    return e


def entries_of(estate_id: int, start: date | None = None, end: date | None = None) -> list[AccountEntry]:
    """The account's ledger, oldest first; `start`/`end` inclusive."""
    q = sa.select(AccountEntry).where(AccountEntry.estate_id == estate_id)
    if start is not None:
        q = q.where(AccountEntry.booked_on >= start)
    if end is not None:
        q = q.where(AccountEntry.booked_on <= end)
    return list(db.session.execute(q.order_by(AccountEntry.booked_on, AccountEntry.id)).scalars())


def balance_fen(estate_id: int) -> int:
    return int(db.session.execute(sa.select(sa.func.coalesce(sa.func.sum(AccountEntry.amount_fen), 0))
                                  .where(AccountEntry.estate_id == estate_id)).scalar_one())


_HEADERS = {"date": ("日期", "交易日期", "记账日期", "date"), "amount": ("金额", "交易金额", "amount"),
            "counterparty": ("对方户名", "对方", "交易对方", "counterparty"), "memo": ("摘要", "备注", "附言", "memo")}


def _amount_fen(text: str) -> int | None:
    raw = text.strip().replace(",", "").replace("，", "").replace("¥", "").replace("元", "")
    m = re.fullmatch(r"([+-]?)(\d{1,11})(?:\.(\d{1,2}))?", raw)
    if not m:
        return None
    fen = int(m.group(2)) * 100 + int((m.group(3) or "0").ljust(2, "0"))
    return -fen if m.group(1) == "-" else fen


def _parse_day(text: str) -> date | None:
    raw = text.strip().replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"(\d{4})-?(\d{1,2})-?(\d{1,2})", raw)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def parse_statement(data: bytes) -> list[Line]:
    """Bank statement CSV → lines. A header row (日期, 金额, 对方户名, 摘要 or English) is optional; without it
    the columns are date, amount, counterparty, memo. Raises ValidationFailed naming the bad rows."""
    text = decode_text(data)
    if text is None:
        raise ValidationFailed("银行流水须为 CSV 文本（UTF-8 或 GB18030 编码）", errors={"file": ["无法识别的文件"]})
    rows = [r for r in csv.reader(io.StringIO(text)) if any(c.strip() for c in r)]
    if not rows:
        raise ValidationFailed("银行流水是空的", errors={"file": ["没有任何行"]})
    cols = {"date": 0, "amount": 1, "counterparty": 2, "memo": 3}
    head = [c.strip().lower() for c in rows[0]]
    if any(h in names for names in _HEADERS.values() for h in head):
        for key, names in _HEADERS.items():
            idx = next((i for i, h in enumerate(head) if h in names), None)
            if idx is None and key in ("date", "amount"):
                raise ValidationFailed("银行流水缺少“日期”或“金额”列", errors={"file": ["缺少列"]})
            cols[key] = idx
        rows = rows[1:]
    if len(rows) > MAX_STATEMENT_LINES:
        raise ValidationFailed(f"银行流水不能超过 {MAX_STATEMENT_LINES} 行", errors={"file": ["行数过多"]})
    lines, errors = [], {}

    def cell(row, key):
        i = cols.get(key)
        return row[i].strip() if i is not None and i < len(row) else ""

    for n, row in enumerate(rows, start=1):
        day, fen = _parse_day(cell(row, "date")), _amount_fen(cell(row, "amount"))
        if day is None or fen is None or fen == 0:
            errors[f"line_{n}"] = [f"第 {n} 行的日期或金额无法识别：{','.join(row)[:80]}"]
            continue
        lines.append(Line(key=n, booked_on=day, amount_fen=fen, counterparty=cell(row, "counterparty")[:100],
                          memo=cell(row, "memo")[:200]))
    if errors:
        raise ValidationFailed(f"银行流水有 {len(errors)} 行无法识别", errors=errors)
    return lines


def import_statement(estate: Estate, data: bytes, *, user, now: datetime) -> list[BankStatementLine]:
    lines = parse_statement(data)
    digest = hashlib.sha256(data).hexdigest()
    exists = db.session.execute(sa.select(BankStatementLine.id).where(
        BankStatementLine.estate_id == estate.id, BankStatementLine.import_id == digest).limit(1)).scalar()
    if exists is not None:
        raise Conflict("这份银行流水已经导入过", code="statement_imported")
    rows = [BankStatementLine(estate_id=estate.id, import_id=digest, line_no=ln.key, booked_on=ln.booked_on,
                              amount_fen=ln.amount_fen, counterparty=ln.counterparty, memo=ln.memo, imported_at=now)
            for ln in lines]
    db.session.add_all(rows)
    db.session.flush()
    record("funding.statement_imported", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="estate", subject_id=estate.id,
           data={"sha256": digest, "lines": len(rows), "sum_fen": sum(r.amount_fen for r in rows)})
    return rows


def reconciliation(estate_id: int, import_id: str | None = None) -> Reconciliation | None:
    """The latest imported statement (or `import_id`) against the ledger over the statement's dates."""
    if import_id is None:
        import_id = db.session.execute(
            sa.select(BankStatementLine.import_id).where(BankStatementLine.estate_id == estate_id)
            .order_by(BankStatementLine.imported_at.desc(), BankStatementLine.id.desc()).limit(1)).scalar()
    if import_id is None:
        return None
    bank_rows = db.session.execute(sa.select(BankStatementLine).where(
        BankStatementLine.estate_id == estate_id, BankStatementLine.import_id == import_id)
        .order_by(BankStatementLine.line_no)).scalars().all()
    start, end = min(r.booked_on for r in bank_rows), max(r.booked_on for r in bank_rows)
    bank = [Line(key=r.line_no, booked_on=r.booked_on, amount_fen=r.amount_fen, counterparty=r.counterparty,
                 memo=r.memo) for r in bank_rows]
    ledger = [Line(key=e.id, booked_on=e.booked_on, amount_fen=e.amount_fen, counterparty=e.counterparty,
                   memo=e.memo, reference=e.reference) for e in entries_of(estate_id, start, end)]
    return reconcile(ledger, bank)
