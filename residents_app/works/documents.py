"""The generated materials of the start application as PDF: ① the application form (申请表) and ② the notice of
the plan vote's result publicity (公示书). reportlab with the CJK font embedded, found as the verification desk's
report finds it (RAPP_CJK_FONT, else fonts-wqy-zenhei): without it every character would print as a box.
"""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal

from residents_app.errors import Conflict
from residents_app.formatting import format_area, format_local_date, format_local_dt, format_yuan
from residents_app.pdf_font import FONT_NAME, ensure_cjk_font
from residents_app.plans.models import PlanVersion


def _ensure_font() -> None:
    ensure_cjk_font()


def _esc(text) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Doc:
    """The styles and helpers both documents share."""

    def __init__(self):
        _ensure_font()
        from reportlab.lib import colors
        from reportlab.lib.styles import ParagraphStyle

        self.colors = colors
        self.base = ParagraphStyle("base", fontName=FONT_NAME, fontSize=10.5, leading=15, wordWrap="CJK")
        self.small = ParagraphStyle("small", parent=self.base, fontSize=9, leading=12.5)
        self.title = ParagraphStyle("title", parent=self.base, fontSize=17, leading=24, alignment=1, spaceAfter=4)
        self.subtitle = ParagraphStyle("subtitle", parent=self.base, fontSize=10, alignment=1,
                                       textColor=colors.HexColor("#555555"))
        self.h2 = ParagraphStyle("h2", parent=self.base, fontSize=12.5, leading=18, spaceBefore=10, spaceAfter=4)

    def p(self, text, style=None):
        from reportlab.platypus import Paragraph

        return Paragraph(_esc(text).replace("\n", "<br/>"), style or self.base)

    def table(self, rows, widths, *, header=False, label_cols=()):
        from reportlab.platypus import Table, TableStyle

        t = Table([[self.p(c, self.small) for c in row] for row in rows], colWidths=widths,
                  repeatRows=1 if header else 0)
        style = [("GRID", (0, 0), (-1, -1), 0.5, self.colors.HexColor("#999999")),
                 ("VALIGN", (0, 0), (-1, -1), "MIDDLE")]
        if header:
            style.append(("BACKGROUND", (0, 0), (-1, 0), self.colors.HexColor("#f0ebe3")))
        for col in label_cols:
            style.append(("BACKGROUND", (col, 0), (col, -1), self.colors.HexColor("#f0ebe3")))
        t.setStyle(TableStyle(style))
        return t

    def build(self, story, *, title: str, footer: str) -> bytes:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.units import mm
        from reportlab.platypus import SimpleDocTemplate

        colors = self.colors

        def on_page(canvas, doc):
            canvas.saveState()
            canvas.setFont(FONT_NAME, 8.5)
            canvas.setFillColor(colors.HexColor("#666666"))
            canvas.drawString(20 * mm, 12 * mm, footer)
            canvas.drawRightString(190 * mm, 12 * mm, f"第 {doc.page} 页")
            canvas.restoreState()

        buf = io.BytesIO()
        doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm,
                                bottomMargin=20 * mm, title=title, author="小区改造共商平台", subject=title)
        doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
        return buf.getvalue()


def _round_line(rnd) -> list[str]:
    """[事项, 规则及范围, 结果] of a closed round, from the stored outcome."""
    from residents_app.core.thresholds import PRESETS
    from residents_app.rounds.services import round_outcome

    if rnd is None:
        return ["—", "—", "尚无已结束的表决"]
    out = round_outcome(rnd.id) or {}
    f = (out.get("tally") or {}).get("figures") or {}
    preset = PRESETS.get(rnd.rule_preset)
    rule = preset.label if preset else rnd.rule_preset
    scope = "全小区" if not rnd.scope_building_ids else "部分楼栋"
    verdict = "通过" if out.get("passed") else "未通过"
    figures = (f"同意 {f.get('agree_count')} / {f.get('total_count')} 户，同意面积 {f.get('agree_area')} / "
               f"{f.get('total_area')} m²" if f else "")
    return [f"「{rnd.title}」，{format_local_dt(rnd.closed_at)} 结束", f"{rule}；{scope}",
            f"{verdict}{'；' + figures if figures else ''}"]


def _result_publicity(round_id: int | None):
    import sqlalchemy as sa

    from residents_app.extensions import db
    from residents_app.publicity.models import Publicity

    if round_id is None:
        return None
    return db.session.execute(
        sa.select(Publicity).where(Publicity.subject_type == "round_result", Publicity.subject_id == round_id)
        .order_by(Publicity.id.desc()).limit(1)).scalar_one_or_none()


def plan_result_publicity(plan: PlanVersion):
    """The latest publicity of the result of the estate-wide plan vote on this version (None: not posted)."""
    from residents_app.works import services

    plan_round = next((r for r in services._closed_rounds(plan.estate_id, "plan_vote", plan.id)
                       if not r.scope_building_ids), None)
    return _result_publicity(plan_round.id if plan_round else None)


def application_form_pdf(plan: PlanVersion, now: datetime) -> bytes:
    """① 项目启动申请表: the project, how it was decided, the checklist as of `now`, the materials, signatures."""
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    from residents_app.funding.services import contributions_of, estate_units, owed_by_unit, pledges_of
    from residents_app.publicity.services import period_text
    from residents_app.works import services
    from residents_app.works.materials import materials_of

    d = _Doc()
    estate = plan.estate
    office = estate.street_office
    units = estate_units(estate.id)
    area = sum((Decimal(u.title_area_m2) for u in units), Decimal("0.00"))
    money = contributions_of(plan, ())  # the version's figures only, no unit's detail
    checks = services.start_checklist(plan, now)
    willingness = next((r for r in services._closed_rounds(estate.id, "willingness") if not r.scope_building_ids),
                       None)
    plan_round = next((r for r in services._closed_rounds(estate.id, "plan_vote", plan.id)
                       if not r.scope_building_ids), None)
    pub = _result_publicity(plan_round.id if plan_round else None)
    pledged = len(pledges_of(plan))
    owed = owed_by_unit(plan)
    owing = sum(1 for u in units if owed[u.id] > 0)
    extra = materials_of(plan)

    story = [
        d.p(estate.name, d.title),
        d.p("老旧小区改造项目启动申请表", d.title),
        d.p(f"小区编码 {estate.code}　·　{office.name}　·　生成于 {format_local_dt(now)}（北京时间）", d.subtitle),
        Spacer(1, 4 * mm),
        d.p("一、项目基本情况", d.h2),
        d.table([
            ["小区", estate.name, "所属街道", office.name],
            ["房屋", f"{len(units)} 户", "产权面积合计", f"{format_area(area)} m²"],
            ["改造方案", f"第 {plan.number} 版《{plan.title}》", "发布时间", format_local_dt(plan.published_at)],
            ["工程总投资", f"{format_yuan(money.total_cost_fen)} 元",
             "政府补助", f"{format_yuan(money.subsidy_total_fen)} 元"],
            ["居民出资", f"{format_yuan(money.owed_total_fen)} 元", "改造项目", f"{len(plan.items)} 项"],
        ], [24 * mm, 61 * mm, 24 * mm, 61 * mm], label_cols=(0, 2)),
        d.p("二、决策过程", d.h2),
        d.table([
            ["程序", "事项", "规则及范围", "结果"],
            ["改造意愿征求", *_round_line(willingness)],
            ["方案表决", *_round_line(plan_round)],
            ["结果公示", f"「{pub.title}」" if pub else "方案表决结果公示",
             f"{pub.posted_on.isoformat()} 张贴" if pub else "—",
             (f"{period_text(pub)}；{pub.status_label}" if pub else "尚未公示")],
        ], [24 * mm, 50 * mm, 40 * mm, 56 * mm], header=True),
        d.p("三、启动条件核对（系统根据数据自动核对）", d.h2),
        d.table([["条件", "核对结果", "说明"]] + [[c.label, "已满足" if c.met else "未满足", c.reason] for c in checks],
                [52 * mm, 20 * mm, 98 * mm], header=True),
        KeepTogether([d.p("四、申请材料", d.h2), d.table([
            ["编号", "材料", "情况"],
            ["①", "项目启动申请表", "本表（系统生成）"],
            ["②", "方案表决结果公示书", f"系统生成：{pub.title}" if pub else "方案表决结果尚未公示"],
            ["③", "居民出资承诺书", f"应签 {owing} 户，已签 {pledged} 户（系统内签署）"],
            ["④", "长效管理方案", "方案中已有" if plan.has_management_plan() else "缺"],
            ["⑤", "其他材料", "；".join(f"{m.title}（{m.filename}）" for m in extra) or "无"],
        ], [14 * mm, 46 * mm, 110 * mm], header=True)]),
    ]
    sign = Table(
        [[d.p("业主委员会（自治小组）盖章："), d.p("街道审核意见（街道办事处盖章）：")],
         [d.p(""), d.p("")],
         [d.p("经办人签字："), d.p("审核人签字：")],
         [d.p("日期：______年____月____日"), d.p("日期：______年____月____日")]],
        colWidths=[85 * mm, 85 * mm], rowHeights=[9 * mm, 22 * mm, 9 * mm, 9 * mm])
    sign.setStyle(TableStyle([("BOX", (0, 0), (0, -1), 0.5, d.colors.HexColor("#999999")),
                              ("BOX", (1, 0), (1, -1), 0.5, d.colors.HexColor("#999999")),
                              ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [Spacer(1, 6 * mm), KeepTogether([d.p("五、签章", d.h2), sign])]
    return d.build(story, title=f"{estate.name} 老旧小区改造项目启动申请表",
                   footer=f"{estate.name} 项目启动申请表（第 {plan.number} 版方案）")


def publicity_notice_pdf(plan: PlanVersion, now: datetime) -> bytes:
    """② the notice of the plan vote's result publicity, as posted (unit numbers only, never names)."""
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    from residents_app.publicity.services import period_text

    pub = plan_result_publicity(plan)
    if pub is None:
        raise Conflict(f"第 {plan.number} 版方案的表决结果尚未公示，无法生成公示书", code="no_result_publicity")
    d = _Doc()
    estate = plan.estate
    story = [d.p(estate.name, d.title), d.p(pub.title, d.title),
             d.p(f"{period_text(pub)}　·　张贴日期 {pub.posted_on.isoformat()}", d.subtitle), Spacer(1, 4 * mm)]
    story += [d.p(line) for line in pub.notice_text.splitlines() if line.strip()]
    if pub.outcome_lines:
        story.append(d.p("表决结果", d.h2))
        story += [d.p(line) for line in pub.outcome_lines]
    story.append(d.p(f"{pub.unit_list_title or '房号汇总表'}（共 {len(pub.unit_labels)} 户，仅列房号）", d.h2))
    per_row = 6
    cells = list(pub.unit_labels) or ["无"]
    cells += [""] * (-len(cells) % per_row)
    story.append(d.table([cells[i:i + per_row] for i in range(0, len(cells), per_row)], [170 * mm / per_row] * per_row))
    story += [Spacer(1, 6 * mm),
              d.p("公示期内业主如有异议，请向小区业委会（自治小组）书面提出，由业委会牵头协商调解。", d.small),
              Spacer(1, 10 * mm),
              d.p(f"{estate.name}业主委员会（自治小组）　　{format_local_date(pub.posted_on)}")]
    return d.build(story, title=pub.title, footer=f"{estate.name} {pub.title}")
