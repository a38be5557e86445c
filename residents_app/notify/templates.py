"""The messages the platform sends on its own, one Chinese template each. Features fill them in and queue them
(rounds/reminders.py, publicity/notices.py, publicity/answer_notices.py, funding/reminders.py); the scheduler runs
those every tick, and the dedupe keys make every reminder go once.

Each template has a short title (a WeChat subscribe message shows 20 characters of it) and a text. `link` is the
resident's entry (PUBLIC_BASE_URL + /r/home, or the mini-program): the unit's own QR token is never stored, so a
message cannot carry it; an empty link leaves the sentence out.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, has_app_context

TEMPLATES: dict[str, tuple[str, str]] = {
    "round_opened": (
        "表决开始",
        "【{estate}】“{round}”已开始表决，截止时间 {closes}。您家（{unit}）可扫描本户二维码或在小程序中参与。"),
    "round_closing_48h": (
        "表决还剩两天",
        "【{estate}】“{round}”将于 {closes} 截止，您家（{unit}）尚未表决。还有两天，请扫描本户二维码参与。"),
    "round_closing_24h": (
        "表决即将截止",
        "【{estate}】“{round}”将于 {closes} 截止，您家（{unit}）尚未表决。请扫描本户二维码参与，逾期不能再投。"),
    "publicity_posted": (
        "公示开始",
        "【{estate}】{title} 正在公示。{period}。请到小区公示栏或扫码查看；如有异议，请在 {last_day} 24:00 前提出。"),
    "objection_answered": (
        "异议已答复",
        "【{estate}】您家（{unit}）对“{title}”提出的异议已有答复：{answer}"),
    "pledge_window_closing": (
        "承诺书即将截止",
        "【{estate}】“{plan}”的出资承诺将于 {closes} 截止，您家（{unit}）尚未签署承诺书，请及时签署。"),
    "settlement_due": (
        "决算补缴通知",
        "【{estate}】“{plan}”已完成决算，您家（{unit}）应补缴 {amount} 元，请按通知缴入专用账户。"),
    "complaint_answered": (
        "投诉已答复",
        "【{estate}】您家（{unit}）关于“{subject}”的投诉已有答复：{answer}"),
}
ANSWER_MAX = 60


@dataclass(frozen=True)
class Rendered:
    key: str
    title: str
    text: str


def entry_link() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL", "") if has_app_context() else ""
    return f"{base.rstrip('/')}/r/home" if base else ""


def render(key: str, *, link: str | None = None, **fields) -> Rendered:
    """The template `key` filled in (KeyError for an unknown key or a missing field); long answers are cut."""
    title, body = TEMPLATES[key]
    if "answer" in fields and len(str(fields["answer"])) > ANSWER_MAX:
        fields["answer"] = str(fields["answer"])[:ANSWER_MAX - 1] + "…"
    text = body.format(**fields)
    link = entry_link() if link is None else link
    if link:
        text += f" 详情：{link}"
    return Rendered(key=key, title=title, text=text)
