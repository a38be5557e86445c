"""Charts drawn on the server as SVG markup (no JavaScript, nothing from a CDN).

Pure functions of plain data; coordinates are computed with integers and Fractions, and only the
final pixel positions are written with one decimal.
"""

from __future__ import annotations

import calendar as _calendar
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from html import escape

from residents_app.formatting import to_local


def _px(value: Fraction | int) -> str:
    return f"{float(Fraction(value)):.1f}"


LEFT, RIGHT = 48, 16  # the turnout chart's margins (px)


def plot_columns(width: int = 640) -> int:
    """The turnout chart's plot width in pixels (a curve needs at most one step per column)."""
    return width - LEFT - RIGHT


def turnout_svg(points: list[tuple[datetime, int]], *, start: datetime, end: datetime, total: int,
                bound: Fraction = Fraction(2, 3), label: str = "已投票户数", width: int = 640,
                height: int = 220) -> str:
    """A step chart of the cumulative count over time, with the bound line (e.g. 2/3 of the households).

    points: (time, cumulative count) in time order; the curve holds each value until the next point.
    """
    left, right, top, bottom = LEFT, RIGHT, 16, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max(int((end - start).total_seconds()), 1)
    y_max = max(total, 1)

    def x(t: datetime) -> Fraction:
        seconds = min(max(int((t - start).total_seconds()), 0), span)
        return left + Fraction(plot_w * seconds, span)

    def y(v: int | Fraction) -> Fraction:
        return top + plot_h - Fraction(plot_h) * Fraction(v) / y_max

    path = [f"M{_px(x(start))},{_px(y(0))}"]
    last = 0
    # The points in integers: x(t) and y(v) as one exact division each (float(Fraction(n, d)) is n / d, rounded
    # once), so the path is the same as through Fractions at a fraction of the cost (a point per household).
    x_num, y_num = left * span, (top + plot_h) * y_max
    for t, v in points:
        d = t - start  # whole seconds as int(total_seconds()) gives them once clamped at 0 (days * 86400 + seconds
        seconds = min(max(d.days * 86400 + d.seconds, 0), span)  # is their floor, the same for d >= 0)
        path.append(f"H{(x_num + plot_w * seconds) / span:.1f} V{(y_num - plot_h * v) / y_max:.1f}")
        last = v
    path.append(f"H{_px(x(end))}")
    bound_value = bound * total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="{escape(label)}随时间变化" class="chart">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fbfaf7" stroke="#ddd6cc"/>',
    ]
    for frac in (Fraction(0), Fraction(1, 2), Fraction(1)):
        v = frac * y_max
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_px(y(v))}" y2="{_px(y(v))}" '
                     f'stroke="#eee" />')
        parts.append(f'<text x="{left - 6}" y="{_px(y(v) + 4)}" text-anchor="end" font-size="11" '
                     f'fill="#5f6b7a">{_fmt_int(v)}</text>')
    parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{_px(y(bound_value))}" y2="{_px(y(bound_value))}" '
                 f'stroke="#c0392b" stroke-dasharray="6 4" class="bound"/>')
    parts.append(f'<text x="{left + plot_w - 4}" y="{_px(y(bound_value) - 4)}" text-anchor="end" font-size="11" '
                 f'fill="#c0392b">{bound.numerator}/{bound.denominator} = {_fmt_int(bound_value)} 户</text>')
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="#2e86c1" stroke-width="2.5" class="turnout"/>')
    parts.append(f'<text x="{left}" y="{height - 12}" font-size="11" fill="#5f6b7a">'
                 f'{to_local(start):%m-%d %H:%M}</text>')
    parts.append(f'<text x="{left + plot_w}" y="{height - 12}" text-anchor="end" font-size="11" fill="#5f6b7a">'
                 f'{to_local(end):%m-%d %H:%M}</text>')
    parts.append(f'<text x="{left + plot_w // 2}" y="{height - 12}" text-anchor="middle" font-size="12" '
                 f'fill="#1d2733">{escape(label)}：{last} / {total}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _fmt_int(v: Fraction | int) -> str:
    v = Fraction(v)
    if v.denominator == 1:
        return str(v.numerator)
    whole = v.numerator // v.denominator
    tenths = (v - whole) * 10 // 1
    return f"{whole}.{tenths}"


@dataclass(frozen=True)
class Deadline:
    day: date
    label: str
    url: str = ""


def month_grid(year: int, month: int) -> list[list[date | None]]:
    """Weeks of the month, Monday first; days outside the month are None."""
    weeks = []
    for week in _calendar.Calendar(firstweekday=0).monthdatescalendar(year, month):
        weeks.append([d if d.month == month else None for d in week])
    return weeks


def months_to_show(today: date, deadlines: list[Deadline]) -> list[tuple[int, int]]:
    """This month, plus the next month when a deadline falls in it (at most two months)."""
    months = [(today.year, today.month)]
    nxt = (today.year + (today.month == 12), today.month % 12 + 1)
    if any((d.day.year, d.day.month) == nxt for d in deadlines):
        months.append(nxt)
    return months
