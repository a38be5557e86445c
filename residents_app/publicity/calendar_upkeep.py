"""Upkeep of the working-day calendar: the administrator's overrides, declared years, year imports.

Split out of publicity/services.py (which re-exports these names, so callers keep using `services.*`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.core.calendar import (
    CalendarNotCovered,
    WorkCalendar,
    beijing_date,
    build_calendar,
    package_years,
)
from residents_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.publicity.models import CalendarOverride, CalendarYear


def calendar_error(exc: CalendarNotCovered) -> DomainError:
    return DomainError(str(exc), code="calendar_not_covered", status=409, errors={"year": str(exc.year)})


# ---- calendar -------------------------------------------------------------------------------------

def load_calendar() -> WorkCalendar:
    """The working-day calendar: package schedule + the administrator's overrides and declared years."""
    overrides = dict(db.session.execute(sa.select(CalendarOverride.day, CalendarOverride.is_working)).all())
    years = db.session.execute(sa.select(CalendarYear.year)).scalars().all()
    return build_calendar(overrides, years)


@dataclass
class YearCoverage:
    year: int
    source: str  # "package", "admin", "package+admin"
    override_count: int


def calendar_overview(now: datetime) -> dict:
    """Covered years, the overrides, and whether next year (relative to `now` in Beijing) is missing."""
    pkg = package_years()
    declared = {y.year: y for y in db.session.execute(sa.select(CalendarYear)).scalars()}
    overrides = db.session.execute(sa.select(CalendarOverride).order_by(CalendarOverride.day)).scalars().all()
    counts: dict[int, int] = {}
    for o in overrides:
        counts[o.day.year] = counts.get(o.day.year, 0) + 1
    years = []
    for y in sorted(pkg | set(declared)):
        source = "package+admin" if (y in pkg and y in declared) else ("package" if y in pkg else "admin")
        years.append(YearCoverage(y, source, counts.get(y, 0)))
    this_year = beijing_date(now).year
    next_year = this_year + 1
    covered = pkg | set(declared)
    older = [y for y in years if y.year < this_year - 2 and y.source == "package" and not y.override_count]
    return {
        "years": years,
        "recent_years": [y for y in years if y not in older],
        "older_range": (older[0].year, older[-1].year) if older else None,
        "declared": declared,
        "overrides": overrides,
        "this_year": this_year,
        "next_year": next_year,
        "this_year_missing": this_year not in covered,
        "next_year_missing": next_year not in covered,
        "pending_years": sorted({y for y in counts if y not in covered}),
    }


def set_override(day: date, is_working: bool, note: str, *, actor: str, now: datetime) -> CalendarOverride:
    note = (note or "").strip()
    if len(note) > 100:
        raise ValidationFailed("说明不能超过 100 个字", errors={"note": "过长"})
    row = db.session.execute(sa.select(CalendarOverride).where(CalendarOverride.day == day)).scalar_one_or_none()
    if row is None:
        row = CalendarOverride(day=day, is_working=is_working, note=note, created_by=actor, created_at=now)
        db.session.add(row)
    else:
        row.is_working, row.note, row.created_by, row.created_at = is_working, note, actor, now
    db.session.flush()
    record("calendar.override_set", chain=0, actor=actor, now=now, subject_type="calendar_day",
           subject_id=day.isoformat(), data={"day": day.isoformat(), "is_working": is_working, "note": note})
    return row


def delete_override(day: date, *, actor: str, now: datetime) -> None:
    row = db.session.execute(sa.select(CalendarOverride).where(CalendarOverride.day == day)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"{day.isoformat()} 没有调整记录")
    db.session.delete(row)
    db.session.flush()
    record("calendar.override_deleted", chain=0, actor=actor, now=now, subject_type="calendar_day",
           subject_id=day.isoformat(), data={"day": day.isoformat()})


def declare_year(year: int, *, actor: str, now: datetime) -> CalendarYear:
    """The administrator confirms that every holiday and make-up day of `year` has been entered."""
    if not 2000 <= year <= 2100:
        raise ValidationFailed("年份须在 2000 至 2100 之间", errors={"year": str(year)})
    if db.session.get(CalendarYear, year) is not None:
        raise Conflict(f"{year} 年已确认完整", code="year_declared")
    n = db.session.execute(sa.select(sa.func.count()).select_from(CalendarOverride).where(
        CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))).scalar_one()
    if year not in package_years() and n == 0:
        raise Conflict(f"{year} 年还没有录入任何放假或调休日期：请先按国务院办公厅通知逐日录入，再确认完整",
                       code="year_empty")
    row = CalendarYear(year=year, declared_by=actor, declared_at=now)
    db.session.add(row)
    db.session.flush()
    record("calendar.year_declared", chain=0, actor=actor, now=now, subject_type="calendar_year",
           subject_id=year, data={"year": year, "override_days": n})
    return row


def parse_year_file(year: int, text: str) -> list[tuple[date, bool, str]]:
    """Lines `YYYY-MM-DD,休|班[,说明]` (also rest/work, 0/1); '#' starts a comment."""
    rows = []
    errors = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2:
            errors[f"第{lineno}行"] = "格式应为 日期,休/班[,说明]"
            continue
        try:
            day = date.fromisoformat(parts[0])
        except ValueError:
            errors[f"第{lineno}行"] = f"日期“{parts[0]}”无效，应为 YYYY-MM-DD"
            continue
        if day.year != year:
            errors[f"第{lineno}行"] = f"日期 {day.isoformat()} 不在 {year} 年"
            continue
        kind = parts[1].lower()
        if kind in ("休", "rest", "0", "holiday"):
            working = False
        elif kind in ("班", "work", "1", "workday"):
            working = True
        else:
            errors[f"第{lineno}行"] = f"“{parts[1]}”无效，应为 休 或 班"
            continue
        rows.append((day, working, parts[2] if len(parts) > 2 else ""))
    if errors:
        raise ValidationFailed("导入文件有误", errors=errors)
    if not rows:
        raise ValidationFailed("导入文件没有任何日期")
    return rows


def import_year(year: int, text: str, *, actor: str, now: datetime, declare: bool = True) -> int:
    rows = parse_year_file(year, text)
    for day, working, note in rows:
        set_override(day, working, note, actor=actor, now=now)
    if declare and db.session.get(CalendarYear, year) is None:
        declare_year(year, actor=actor, now=now)
    return len(rows)
