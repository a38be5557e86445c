"""XLSX of a round's frozen roll and every ballot (cells that look like formulas stay text).

With results hidden until the close, the choices (and the items chosen) are not written before the close:
a counted ballot shows as "已投票" (turnout only).
"""

from __future__ import annotations

import io

from residents_app.exports import append_safe_row

ROLL_HEADERS = ("楼栋", "房号", "产权面积(m²)", "业主", "计入的票", "渠道", "投票时间", "改票次数", "待处理纸质票",
                "希望改造的项目")
BALLOT_HEADERS = ("房号", "选择", "渠道", "状态", "投票时间", "受托人", "确认时间", "处理理由", "希望改造的项目")
HIDDEN = "（截止前隐藏）"


def roll_and_ballots_xlsx(rnd, rows: list[dict], item_tally: dict | None = None) -> tuple[bytes, int]:
    """Returns the workbook and the number of data rows written (roll rows + ballot rows).

    `item_tally` (rounds.tally.item_tally) adds the sheet "改造项目意向": each menu item with the agreeing
    units that chose it, overall and per building.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    hidden = rnd.results_hidden
    labels = rnd.option_labels
    item_labels = {i["key"]: i["label"] for i in rnd.item_menu or []}

    def chosen_items(ballot) -> str:
        return HIDDEN if hidden else "、".join(item_labels.get(k, k) for k in ballot.items or [])
    wb = Workbook()
    roll = wb.active
    roll.title = "表决名册"
    append_safe_row(roll, ROLL_HEADERS)
    history = wb.create_sheet("投票记录")
    append_safe_row(history, BALLOT_HEADERS)
    count = 0
    for row in rows:
        e, counted = row["entry"], row["counted"]
        n = append_safe_row(roll, [
            e.building_name, e.unit_number, e.area_m2, "、".join(e.owner_names or []),
            ("已投票" if hidden else labels.get(counted.choice, counted.choice)) if counted else "未投票",
            counted.channel_label if counted else "", counted.cast_at if counted else None,
            row["changes"], len(row["pending"]), chosen_items(counted) if counted else "",
        ])
        roll.cell(row=n, column=3).number_format = "0.00"
        roll.cell(row=n, column=7).number_format = "yyyy-mm-dd hh:mm:ss"
        count += 1
        for b in row["history"]:
            n = append_safe_row(history, [
                e.label, HIDDEN if hidden else labels.get(b.choice, b.choice), b.channel_label, b.status_label,
                b.cast_at, b.proxy_name, b.confirmed_at, b.resolution_reason, chosen_items(b)])
            history.cell(row=n, column=5).number_format = "yyyy-mm-dd hh:mm:ss"
            history.cell(row=n, column=7).number_format = "yyyy-mm-dd hh:mm:ss"
            count += 1
    for ws in (roll, history):
        for cell in ws[1]:
            cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGHIJ", (10, 10, 14, 24, 14, 10, 20, 10, 12, 30), strict=True):
        roll.column_dimensions[col].width = width
    for col, width in zip("ABCDEFGHI", (14, 16, 10, 20, 20, 12, 20, 30, 30), strict=True):
        history.column_dimensions[col].width = width
    if item_tally is not None and not hidden:
        _item_sheet(wb.create_sheet("改造项目意向"), item_tally)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), count


def _item_sheet(ws, items: dict) -> None:
    """改什么: one row per menu item; households and m² of the agreeing units that chose it, then per building."""
    from decimal import Decimal

    from openpyxl.styles import Font

    buildings = items["buildings"]
    header = ["项目", "类别", "全部：户数", "全部：面积(m²)"]
    for b in buildings:
        header += [f"{b['building_name']}：户数", f"{b['building_name']}：面积(m²)"]
    append_safe_row(ws, header)
    append_safe_row(ws, ["同意改造（合计）", "", items["agree_count"], Decimal(items["agree_area"]),
                         *[v for b in buildings for v in (b["agree_count"], Decimal(b["agree_area"]))]])
    for n, item in enumerate(items["items"]):
        append_safe_row(ws, [item["label"], item.get("category", ""), item["count"], Decimal(item["area"]),
                             *[v for b in buildings for v in (b["items"][n]["count"], Decimal(b["items"][n]["area"]))]])
    for row in ws.iter_rows(min_row=2):
        for cell in row[3::2]:
            cell.number_format = "0.00"
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.column_dimensions["A"].width = 24
