"""The official result report of a round as a PDF (reportlab, WenQuanYi Zen Hei embedded).

`render_round_report(data) -> bytes` draws a `RoundReportData`; `round_report_data(round_id, now)`
(in audit/round_facts.py) collects it from the rounds, publicity and audit packages.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

from residents_app.core import matters
from residents_app.formatting import format_local_dt
from residents_app.pdf_font import FONT_NAME, ensure_cjk_font

RULES = {
    "lucheng": {
        "name": "鹿城双三分之二规则",
        "source": ("温鹿政办〔2020〕21号《鹿城区老旧小区改造实施方案》二（三）改造程序：改造意愿及方案表决"
                   "应经专有部分占建筑物总面积 2/3 以上的业主且占总户数 2/3 以上的业主同意。"
                   "未参与表决的业主按不同意计。"),
    },
    "civil_code_278": {
        "name": "《民法典》第二百七十八条",
        "source": ("《中华人民共和国民法典》第二百七十八条第二款：业主共同决定事项，应当由专有部分面积占比"
                   "三分之二以上的业主且人数占比三分之二以上的业主参与表决。决定前款第六项至第八项规定的事项，"
                   "应当经参与表决专有部分面积四分之三以上的业主且参与表决人数四分之三以上的业主同意。"
                   "决定前款其他事项，应当经参与表决专有部分面积过半数的业主且参与表决人数过半数的业主同意。"),
    },
}

CIVIL_CODE_278_ITEMS = {n: f"（{matters.ITEM_NUMERALS[n]}）{text}" for n, text in matters.ITEM_TEXT.items()}
SURVEY_RULE = ("问卷调查（满意度评价）", "满意度评价是问卷调查，不是业主共同决定事项，不适用表决规则，"
               "只报告应答率、各题的分布和平均分。")


@dataclass(frozen=True)
class ConditionRow:
    """One of the four conditions, already formatted exactly (figures are never rounded up)."""

    name: str  # "同意业主专有部分面积"
    actual: str  # "1,254.30 m²（67.80%）"
    bound: str  # "≥ 2/3 × 1,850.00 m² = 1,233.34 m²"
    margin: str  # "超出 21.00 m²" or "还差 12 户"
    met: bool


@dataclass(frozen=True)
class RoundReportData:
    estate_name: str
    estate_code: str
    street_office_name: str
    round_title: str
    round_kind: str  # "改造意愿征求" / "方案表决" ...
    scope: str  # "全小区" or "1幢、2幢"
    opens_at: datetime | None
    closes_at: datetime | None
    roll_frozen_at: datetime | None
    roll_households: int
    roll_area: str  # "1,850.00"
    rule_code: str  # key of RULES
    rule_item: int | None  # Civil Code art. 278 item (1-9) when rule_code is civil_code_278
    conditions: list[ConditionRow]
    passed: bool
    status_label: str  # "已截止" ...
    agreeing_units: list[str]  # unit numbers only ("1幢-101"), never names
    publicity: str  # "2026-09-29 发布，公示至 2026-10-12 24:00（5 个工作日）" or "尚未公示"
    generated_at: datetime
    audit_head: str  # "链 3 第 57 条 sha256 …"
    ballot_counts: dict[str, int] = field(default_factory=dict)  # {"线上": 10, "纸质": 3, "委托代理": 1}
    signoff: str = ""  # the street office's latest verdict from the log, "" when none yet
    survey: dict | None = None  # a survey's figures (core.survey.summarize): no rule, no verdict
    # Results hidden until the close: no conditions, verdict, agreeing units or items; turnout only.
    results_hidden: bool = False
    turnout: str = ""  # "已投 3 户 / 共 6 户（50.00%）；已投面积 …"
    # 改什么 (willingness rounds with a menu): rounds.tally.item_tally(...), None otherwise.
    item_tally: dict | None = None
    final: bool = True  # False while voting is open: an interim tally, never printed as a verdict
    choice: dict | None = None  # a choice's options and the decided one (core.choices.ChoiceTally.to_dict)


def _ensure_font() -> None:
    ensure_cjk_font()


def rule_lines(data: RoundReportData) -> tuple[str, str]:
    if data.survey is not None:
        return SURVEY_RULE
    rule = RULES[data.rule_code]
    name = rule["name"]
    source = rule["source"]
    if data.rule_code == "civil_code_278" and data.rule_item:
        item = CIVIL_CODE_278_ITEMS[data.rule_item]
        major = "第六项至第八项（参与表决者四分之三以上同意）" if 6 <= data.rule_item <= 8 \
            else "第六项至第八项以外的事项（参与表决者过半数同意）"
        name = f"{name}第一款{item}，属于{major}"
    elif data.rule_item:
        name = f"{name}（表决事项属于{matters.ARTICLE}{CIVIL_CODE_278_ITEMS[data.rule_item]}）"
    return name, source


def verdict_text(data: RoundReportData) -> str:
    """The result line: passed or not; for a choice the decided option or 未决定; a survey has none. While voting is
    open only where the count stands now, never a final-looking verdict."""
    if not data.final:
        if data.choice is not None:
            decided = data.choice.get("decided")
            now = f"目前「{data.choice['decided_label']}」达到表决规则" if decided else "目前没有选项达到表决规则"
        else:
            now = f"目前{'已达到' if data.passed else '尚未达到'}通过条件"
        return f"中间结果（投票仍在进行，不是最终结果）：{now}，以截止后的最终计票为准"
    if data.choice is not None:
        if data.choice.get("decided"):
            return f"表决结果：决定采用「{data.choice['decided_label']}」"
        return "表决结果：未决定（没有任何选项达到表决规则，需重新表决）"
    return f"表决结果：{'通过' if data.passed else '未通过'}"


def verdict_line(data: RoundReportData) -> str:
    return verdict_text(data)


def render_round_report(data: RoundReportData) -> bytes:
    _ensure_font()
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    base = ParagraphStyle("base", fontName=FONT_NAME, fontSize=10.5, leading=15, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=9, leading=12.5)
    title = ParagraphStyle("title", parent=base, fontSize=17, leading=24, alignment=1, spaceAfter=4)
    subtitle = ParagraphStyle("subtitle", parent=base, fontSize=10, alignment=1, textColor=colors.HexColor("#555555"))
    h2 = ParagraphStyle("h2", parent=base, fontSize=12.5, leading=18, spaceBefore=10, spaceAfter=4)
    verdict_style = ParagraphStyle("verdict", parent=base, fontSize=14, leading=20, spaceBefore=6,
                                   textColor=colors.HexColor("#1e8449" if data.passed else "#b03a2e"))

    def p(text, style=base):
        return Paragraph(_escape(text), style)

    grid = TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), FONT_NAME),
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0ebe3")),
    ])
    doc_name = "调查结果报告" if data.survey is not None else "表决结果报告"
    numerals = iter("一二三四五六七八")

    def section(text):
        return p(f"{next(numerals)}、{text}", h2)

    story = [
        p(f"{data.estate_name}", title),
        p(f"{data.round_title}　{doc_name}", title),
        p(f"小区编码 {data.estate_code}　·　{data.street_office_name}　·　"
          f"生成于 {format_local_dt(data.generated_at)}（北京时间）", subtitle),
        Spacer(1, 4 * mm),
        section("基本情况"),
    ]
    info = [
        ["小区", data.estate_name, "所属街道", data.street_office_name],
        ["调查事项" if data.survey is not None else "表决事项", data.round_title, "类型", data.round_kind],
        ["表决范围", data.scope, "状态", data.status_label],
        ["开始时间", format_local_dt(data.opens_at), "截止时间", format_local_dt(data.closes_at)],
        ["名册冻结", format_local_dt(data.roll_frozen_at),
         "名册合计", f"{data.roll_households} 户 / {data.roll_area} m²"],
    ]
    if data.ballot_counts:
        counts = "，".join(f"{k} {v} 张" for k, v in data.ballot_counts.items())
        info.append(["有效答卷" if data.survey is not None else "有效表决票", counts, "", ""])
    info_table = Table([[p(c, small) for c in row] for row in info], colWidths=[22 * mm, 63 * mm, 22 * mm, 63 * mm])
    info_table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#999999")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#f0ebe3")),
        ("BACKGROUND", (2, 0), (2, -1), colors.HexColor("#f0ebe3")),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
    ]))
    story.append(info_table)

    rule_name, rule_source = rule_lines(data)
    if data.survey is not None:
        story += [section("调查性质"), p(rule_name), p(rule_source, small)]
        if data.results_hidden:
            story += [section("参与情况（本表决设置为截止前隐藏结果）"), p(data.turnout),
                      p("表决结束前不显示各户选择、同意票数和同意面积，结束后可出具完整报告。", small)]
        else:
            story += [section("调查结果")] + survey_story(data.survey, p, small, grid, Table, mm)
    else:
        story += [section("表决规则及依据"), p(f"适用规则：{rule_name}"), p(f"依据：{rule_source}", small)]
    if data.survey is None and data.results_hidden:
        story += [section("参与情况（本表决设置为截止前隐藏结果）"), p(data.turnout),
                  p("表决结束前不显示各户选择、同意票数和同意面积，结束后可出具完整报告。", small)]
    elif data.survey is None:
        story.append(section("表决条件核算（精确值，不四舍五入）"))
        rows = [[p(h, small) for h in ("条件", "实际", "要求", "差额", "结果")]]
        for c in data.conditions:
            rows.append([p(c.name, small), p(c.actual, small), p(c.bound, small), p(c.margin, small),
                         p("达到" if c.met else "未达到", small)])
        cond_table = Table(rows, colWidths=[36 * mm, 36 * mm, 48 * mm, 32 * mm, 18 * mm], repeatRows=1)
        cond_table.setStyle(grid)
        story.append(cond_table)
        story.append(p(verdict_text(data), verdict_style))

        if data.choice is not None:
            unit = "户" if data.choice.get("counting_mode", "household") == "household" else "人"
            story.append(section("各选项的选择情况"))
            rows = [[p(h, small) for h in ("选项", f"选择{unit}数", "面积 m²", "是否达到表决规则")]]
            rows += [[p(o["label"], small), p(str(o["count"]), small), p(o["area"], small),
                      p("达到" if o["meets_rule"] else "未达到", small)] for o in data.choice["options"]]
            options_table = Table(rows, colWidths=[50 * mm, 35 * mm, 40 * mm, 45 * mm], repeatRows=1)
            options_table.setStyle(grid)
            story.append(options_table)
        else:
            story.append(section(f"同意改造居民房号汇总表（共 {len(data.agreeing_units)} 户，仅列房号）"))
            units = data.agreeing_units
            story.append(_units_table(units, p, small, Table, TableStyle, colors, mm) if units else p("无"))
        if data.item_tally:
            story += _item_tally_story(data.item_tally, p, h2, small, grid)

    story += [
        section("公示"),
        p(f"公示期：{data.publicity}"),
        p("公示期内业主如有异议，由小区业委会或自治小组牵头协商调解。", small),
        section("审计"),
        p(f"街道核验：{data.signoff or '尚未核验'}"),
        p(f"本报告依据平台审计日志生成，生成时日志末条：{data.audit_head}。", small),
        p("如何核验：每位投票的业主都有一个 20 位回执码，在平台“查询投票回执”页输入即可看到这一票是否按所投计入；"
          "审计日志中每条记录都包含前一条记录的哈希值，任何一条被改动，整条日志的校验都会失败，"
          "街道办事处在核验台查看整条日志的校验结果。", small),
    ]
    sign = Table(
        [[p("业主委员会（自治小组）盖章："), p("街道审核意见：")],
         [p(""), p("")],
         [p("经办人签字："), p("审核人签字：")],
         [p("日期：______年____月____日"), p("街道办事处（盖章）　日期：______年____月____日")]],
        colWidths=[85 * mm, 85 * mm], rowHeights=[9 * mm, 22 * mm, 9 * mm, 9 * mm],
    )
    sign.setStyle(TableStyle([("BOX", (0, 0), (0, -1), 0.5, colors.HexColor("#999999")),
                              ("BOX", (1, 0), (1, -1), 0.5, colors.HexColor("#999999")),
                              ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [Spacer(1, 6 * mm), KeepTogether([section("签章"), sign])]

    buf = io.BytesIO()
    footer_text = f"{data.estate_name} {data.round_title} {doc_name}"

    def on_page(canvas, doc):
        canvas.saveState()
        canvas.setFont(FONT_NAME, 8.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(20 * mm, 12 * mm, footer_text)
        canvas.drawRightString(190 * mm, 12 * mm, f"第 {doc.page} 页")
        canvas.restoreState()

    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                            bottomMargin=20 * mm, title=f"{data.estate_name} {data.round_title} {doc_name}",
                            author="小区改造共商平台", subject=doc_name)
    doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return buf.getvalue()


def _item_tally_story(items: dict, p, h2, small, grid) -> list:
    """改什么: per menu item, the agreeing units that chose it (households / m²), overall and per building."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Table

    out = [p(f"附：改造项目意向统计（同意改造的 {items['agree_count']} 户、{items['agree_area']} m² 所选，"
             "可多选）", h2)]
    buildings = items["buildings"]
    header = ["项目", "全部（户 / m²）", *(b["building_name"] for b in buildings)]
    rows = [[p(h, small) for h in header]]
    for n, item in enumerate(items["items"]):
        label = f"{item['label']}（{item['category']}）" if item.get("category") else item["label"]
        rows.append([p(label, small), p(f"{item['count']} / {item['area']}", small),
                     *(p(f"{b['items'][n]['count']} / {b['items'][n]['area']}", small) for b in buildings)])
    first, second = 44 * mm, 30 * mm
    rest = (170 * mm - first - second) / max(len(buildings), 1)
    table = Table(rows, colWidths=[first, second, *([rest] * len(buildings))], repeatRows=1)
    table.setStyle(grid)
    out.append(table)
    return out


def _units_table(labels, p, small, Table, TableStyle, colors, mm):  # noqa: N803 - reportlab's class names
    per_row = 6
    cells = list(labels)
    cells += [""] * (-len(cells) % per_row)
    unit_rows = [[p(u, small) for u in cells[i:i + per_row]] for i in range(0, len(cells), per_row)]
    unit_table = Table(unit_rows, colWidths=[170 * mm / per_row] * per_row)
    unit_table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#bbbbbb"))]))
    return unit_table


def survey_story(survey: dict, p, small, grid, Table, mm) -> list:  # noqa: N803 - reportlab's class names
    """A survey's figures: response rate, then per question the distribution (and the average score)."""
    out = [p(f"应答 {survey['response_count']} / {survey['total_count']} 户，应答率 {survey['response_rate'] or '—'}")]
    for q in survey["questions"]:
        rating = q["key"] == "rating"
        line = f"{q['title']}：{q['responses']} 份"
        if rating:
            line += f"，平均分 {q['average'] or '—'}"
        out.append(p(line))
        rows = [[p(h, small) for h in ("分数" if rating else "选项", "份数", "占比")]]
        rows += [[p(f"{d['score']} 分" if rating else d["label"], small), p(str(d["count"]), small),
                  p(d["share"] or "—", small)] for d in q["distribution"]]
        table = Table(rows, colWidths=[70 * mm, 50 * mm, 50 * mm], repeatRows=1)
        table.setStyle(grid)
        out.append(table)
    return out


def _escape(text: str) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
