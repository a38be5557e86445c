"""PDFs of this package: the acceptance record (竣工验收记录, every signature with its time and way), the
archive's index (档案目录, every file with its SHA-256) and the evaluation's result table. reportlab with the
embedded CJK font (works/documents.py finds it as the verification desk's report does).
"""

from __future__ import annotations

from residents_app.formatting import format_local_dt
from residents_app.works.acceptance.models import Acceptance
from residents_app.works.documents import _Doc


def acceptance_pdf(acc: Acceptance, estate, *, now) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    d = _Doc()
    story = [d.p(f"{estate.name} · 竣工共同验收记录", d.title),
             d.p(f"验收编号 #{acc.id} · 生成于 {format_local_dt(now)}", d.subtitle), Spacer(1, 4 * mm)]
    story.append(d.table([["验收名称", acc.title], ["验收日期", acc.held_on.isoformat()],
                          ["验收地点", acc.place or "—"], ["验收结论", acc.status_label + (
                              f"（{format_local_dt(acc.passed_at)}）" if acc.passed_at else "")]],
                         [30 * mm, 140 * mm], label_cols=(0,)))
    story.append(Spacer(1, 2 * mm))
    if acc.status != "passed":
        story.append(d.p("尚未通过：" + "；".join(acc.reasons_not_passed()), d.small))
    story.append(d.p("参加验收各方签字", d.h2))
    rows = [["单位类别", "单位", "签字人", "签字方式", "签字时间", "意见"]]
    for p in acc.participants:
        how = p.method_label if p.is_signed else ("扫描件待核对" if p.awaits_confirmation else "未签字")
        if p.signature_method == "paper" and p.is_signed:
            how += (f"\n录入 {p.scan_entered_by.display_name}，核对 {p.confirmed_by.display_name}"
                    f"\nSHA-256 {p.scan_sha256[:16]}…")
        elif p.signature_method == "online" and p.is_signed and p.user is not None:
            how += f"\n账号 {p.user.username}"
        rows.append([p.role_label, p.organisation, p.name, how,
                     format_local_dt(p.signed_at) if p.signed_at else "—", p.opinion or "—"])
    story.append(d.table(rows, [24 * mm, 34 * mm, 18 * mm, 40 * mm, 28 * mm, 26 * mm], header=True))
    story.append(d.p("验收发现的问题及整改", d.h2))
    if acc.issues:
        rows = [["编号", "问题", "整改责任单位", "整改期限", "整改结果"]]
        for i in acc.issues:
            done = f"已整改（{format_local_dt(i.closed_at)}）：{i.closing_note}" if i.closed_at else "整改中"
            rows.append([f"#{i.number}", i.description, i.owner, i.due_on.isoformat(), done])
        story.append(d.table(rows, [12 * mm, 54 * mm, 30 * mm, 22 * mm, 52 * mm], header=True))
    else:
        story.append(d.p("无"))
    story.append(Spacer(1, 6 * mm))
    story.append(d.p("本记录由平台根据各方签字生成；签字与整改的每一步均已记入本小区的防篡改日志。", d.small))
    return d.build(story, title=f"{estate.name} 竣工共同验收记录", footer=f"{estate.name} · 验收 #{acc.id}")


def archive_index_pdf(estate, entries: list[dict], *, chain_head: dict, now) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    d = _Doc()
    story = [d.p(f"{estate.name} · 改造项目档案目录", d.title),
             d.p(f"生成于 {format_local_dt(now)} · 共 {len(entries)} 个文件（另有本目录和清单 manifest.json）",
                 d.subtitle), Spacer(1, 4 * mm)]
    rows = [["序号", "文件", "内容", "字节", "SHA-256"]]
    for n, e in enumerate(entries, start=1):
        rows.append([str(n), e["path"], e["title"], str(e["bytes"]), e["sha256"]])
    story.append(d.table(rows, [10 * mm, 48 * mm, 34 * mm, 16 * mm, 62 * mm], header=True))
    story.append(d.p("防篡改日志", d.h2))
    story.append(d.p(f"归档时日志共 {chain_head['seq']} 条，最后一条的哈希：{chain_head['hash']}", d.small))
    story.append(d.p("核对方法：逐个计算文件的 SHA-256 与 manifest.json 比对；manifest.json 的 SHA-256 记在"
                     "日志的「archive.created」条目中（flask acceptance verify-archive 文件名）。", d.small))
    return d.build(story, title=f"{estate.name} 档案目录", footer=f"{estate.name} · 档案目录")


def evaluation_pdf(estate, evaluation, result, template, *, now) -> bytes:
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer

    from residents_app.core.evaluation import two_places

    d = _Doc()
    story = [d.p(f"{estate.name} · {evaluation.title}", d.title),
             d.p(f"总分 {result.total_text} / {result.total_points} · 等级 {result.grade} · {format_local_dt(now)}",
                 d.subtitle), Spacer(1, 4 * mm)]
    rows = [["方面", "得分", "分值"]] + [[a, two_places(s), str(p)] for a, s, p in result.aspects]
    story.append(d.table(rows, [90 * mm, 40 * mm, 40 * mm], header=True))
    return d.build(story, title=evaluation.title, footer=f"{estate.name} · 问效评价")
