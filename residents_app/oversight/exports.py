"""XLSX of a round's frozen roll and every ballot (cells that look like formulas stay text)."""

from __future__ import annotations

import io

from residents_app.exports import append_safe_row

ROLL_HEADERS = ("楼栋", "房号", "产权面积(m²)", "业主", "计入的票", "渠道", "投票时间", "改票次数", "待处理纸质票")
BALLOT_HEADERS = ("房号", "选择", "渠道", "状态", "投票时间", "受托人", "确认时间", "处理理由")


def roll_and_ballots_xlsx(rnd, rows: list[dict]) -> tuple[bytes, int]:
    """Returns the workbook and the number of data rows written (roll rows + ballot rows)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    labels = rnd.option_labels
    wb = Workbook()
    roll = wb.active
    roll.title = "表决名册"
    append_safe_row(roll, ROLL_HEADERS)
    history = wb.create_sheet("投票记录")
    append_safe_row(history, BALLOT_HEADERS)
    count = 0
    for row in rows:
        e, counted = row["entry"], row["counted"]
        append_safe_row(roll, [
            e.building_name, e.unit_number, e.area_m2, "、".join(e.owner_names or []),
            labels.get(counted.choice, counted.choice) if counted else "未投票",
            counted.channel_label if counted else "", counted.cast_at if counted else None,
            row["changes"], len(row["pending"]),
        ])
        roll.cell(row=roll.max_row, column=3).number_format = "0.00"
        roll.cell(row=roll.max_row, column=7).number_format = "yyyy-mm-dd hh:mm:ss"
        count += 1
        for b in row["history"]:
            append_safe_row(history, [e.label, labels.get(b.choice, b.choice), b.channel_label, b.status_label,
                                      b.cast_at, b.proxy_name, b.confirmed_at, b.resolution_reason])
            history.cell(row=history.max_row, column=5).number_format = "yyyy-mm-dd hh:mm:ss"
            history.cell(row=history.max_row, column=7).number_format = "yyyy-mm-dd hh:mm:ss"
            count += 1
    for ws in (roll, history):
        for cell in ws[1]:
            cell.font = Font(bold=True)
    for col, width in zip("ABCDEFGHI", (10, 10, 14, 24, 14, 10, 20, 10, 12), strict=True):
        roll.column_dimensions[col].width = width
    for col, width in zip("ABCDEFGH", (14, 16, 10, 20, 20, 12, 20, 30), strict=True):
        history.column_dimensions[col].width = width
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue(), count
