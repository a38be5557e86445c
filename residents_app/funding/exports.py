"""XLSX exports: statements, pledges, ledger, settlement.

Each returns (the file, how many records it holds): every download is logged with its row count.

Amounts are written as exact Decimal yuan (openpyxl stores the decimal text, no float). Text cells
that a spreadsheet would read as a formula (starting with = + - @, tab or CR) get a leading
apostrophe so a name or reference typed by someone can never run as a formula.
"""

from __future__ import annotations

import io
from decimal import Decimal

from openpyxl import Workbook

from residents_app.exports import appended_row, safe_cell
from residents_app.formatting import format_local_dt, mask_phone
from residents_app.funding import services
from residents_app.funding import settlement as settlement_svc
from residents_app.funding.models import PAYMENT_METHOD_LABELS, Settlement
from residents_app.plans.models import PlanVersion

YUAN_FORMAT = "#,##0.00"


def neutralise(value):
    return safe_cell(value)


def yuan(fen: int) -> Decimal:
    return Decimal(int(fen)).scaleb(-2)


class _Sheet:
    def __init__(self, ws, headers: list[str], money_cols: set[int]):
        self.ws = ws
        self.money_cols = money_cols
        ws.append([neutralise(h) for h in headers])

    def row(self, values: list) -> None:
        self.ws.append([neutralise(v) for v in values])
        r = appended_row(self.ws)
        for col in self.money_cols:
            self.ws.cell(row=r, column=col).number_format = YUAN_FORMAT


def _save(wb: Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def statements_xlsx(plan: PlanVersion) -> tuple[bytes, int]:
    c = services.contributions_of(plan)
    wb = Workbook()
    ws = wb.active
    ws.title = "每户分摊"
    items = list(plan.items)
    headers = (["房号", "产权面积(m²)"] + [f"{i.name}(元)" for i in items]
               + ["合计应摊(元)", "困难减免(元)", "减免承担方", "资金来源抵扣(元)", "应缴(元)"])
    n = len(items)
    sheet = _Sheet(ws, headers, set(range(3, 3 + n + 5)) - {3 + n + 2})
    units = services.estate_units(plan.estate_id)
    for u in units:
        out = c.units[u.id]
        per_item = {ln.item_key: ln.share_fen for ln in out.lines}
        sheet.row([u.label, u.title_area_m2] + [yuan(per_item[i.id]) if i.id in per_item else None for i in items]
                  + [yuan(out.share_fen), yuan(out.covered_fen), out.covered_by, yuan(out.offset_fen),
                     yuan(out.owed_fen)])
    sheet.row(["合计", c.estate_area_m2] + [yuan(i.resident_fen) for i in c.items]
              + [yuan(c.resident_total_fen), yuan(c.covered_total_fen), "", yuan(c.offset_total_fen),
                 yuan(c.owed_total_fen)])
    ws2 = wb.create_sheet("项目")
    s2 = _Sheet(ws2, ["项目", "类别", "范围", "费用(元)", "居民比例(%)", "居民承担(元)", "超出上限部分(元)",
                      "居民合计(元)", "政府补助(元)"], {4, 6, 7, 8, 9})
    for item, io_ in zip(items, c.items, strict=True):
        s2.row([item.name, item.category_label, item.scope_label, yuan(io_.cost_fen), io_.pct,
                yuan(io_.base_resident_fen), yuan(io_.excess_fen), yuan(io_.resident_fen), yuan(io_.subsidy_fen)])
    s2.row(["补助上限", "", f"{c.estate_area_m2} m²", yuan(c.cap_fen), None, None, yuan(c.excess_fen), None, None])
    return _save(wb), len(units)


def pledges_xlsx(plan: PlanVersion) -> tuple[bytes, int]:
    wb = Workbook()
    sheet = _Sheet(wb.active, ["房号", "承诺金额(元)", "签署业主", "签署时间", "撤回时间"], {2})
    wb.active.title = "出资承诺"
    pledges = services.pledges_of(plan, include_withdrawn=True)
    for p in pledges:
        sheet.row([p.unit.label, yuan(p.amount_fen), p.signed_by.name, format_local_dt(p.signed_at),
                   format_local_dt(p.withdrawn_at)])
    return _save(wb), len(pledges)


def ledger_xlsx(estate) -> tuple[bytes, int]:
    wb = Workbook()
    wb.active.title = "收款台账"
    sheet = _Sheet(wb.active, ["序号", "房号", "金额(元)", "方式", "凭证号", "付款日期", "录入人", "录入时间",
                               "冲正第几号", "备注"], {3})
    entries = services.ledger(estate.id)
    for p in entries:
        sheet.row([p.id, p.unit.label, yuan(p.amount_fen), PAYMENT_METHOD_LABELS.get(p.method, p.method),
                   p.reference, p.paid_on.isoformat(), p.entered_by.display_name or p.entered_by.username,
                   format_local_dt(p.entered_at), p.reverses_id, p.note])
    return _save(wb), len(entries)


def settlement_xlsx(settlement: Settlement) -> tuple[bytes, int]:
    wb = Workbook()
    wb.active.title = "多退少补"
    sheet = _Sheet(wb.active, ["房号", "原应缴(元)", "决算应缴(元)", "已缴(元)", "差额(元)", "处理"], {2, 3, 4, 5})
    if settlement.is_final:
        rows = [{"label": ln.unit.label, "planned": ln.planned_owed_fen, "final": ln.final_owed_fen,
                 "paid": ln.paid_fen, "diff": ln.difference_fen} for ln in settlement.unit_lines]
    else:
        preview = settlement_svc.settlement_preview(settlement)
        rows = [{"label": r["unit"].label, "planned": r["planned_owed_fen"], "final": r["final_owed_fen"],
                 "paid": r["paid_fen"], "diff": r["difference_fen"]} for r in preview["rows"]]
    for r in rows:
        action = "补缴" if r["diff"] > 0 else ("退还" if r["diff"] < 0 else "无")
        sheet.row([r["label"], yuan(r["planned"]), yuan(r["final"]), yuan(r["paid"]), yuan(r["diff"]), action])
    sheet.row(["合计", yuan(sum(r["planned"] for r in rows)), yuan(sum(r["final"] for r in rows)),
               yuan(sum(r["paid"] for r in rows)), yuan(sum(r["diff"] for r in rows)),
               "定稿" if settlement.is_final else "草稿（未定稿）"])
    return _save(wb), len(rows)



def open_dues_xlsx(settlement: Settlement) -> tuple[bytes, int]:
    """The refunds and top-ups still open after the settlement (多退少补 not yet carried out)."""
    wb = Workbook()
    wb.active.title = "待退补"
    sheet = _Sheet(wb.active, ["房号", "处理", "金额(元)", "业主", "联系电话", "状态"], {3})
    dues = settlement_svc.dues_of(settlement, open_only=True)
    for d in dues:
        owners = d.unit.owners
        sheet.row([d.unit.label, d.kind_label, yuan(d.amount_fen), "、".join(o.name for o in owners),
                   "、".join(mask_phone(o.phone) for o in owners), d.state_label])
    for kind, label in (("refund", "待退还合计"), ("top_up", "待补缴合计")):
        mine = [d for d in dues if d.kind == kind]
        sheet.row([label, f"{len(mine)} 户", yuan(sum(d.amount_fen for d in mine)), None, None, None])
    return _save(wb), len(dues)
