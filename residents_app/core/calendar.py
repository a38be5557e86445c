"""Working days on China's official calendar (pure: no Flask, no database).

Rules (DOMAIN.md, "Working days and publicity"; Civil Code arts. 201 and 203):
- the day of posting does not count; the period ends at 24:00 of its last working day;
- weekends and statutory holidays are rest days; make-up working days (调休上班) on a weekend count;
- a day in a year the calendar does not cover is refused, never guessed.

The calendar is data passed in: the State Council schedule shipped by the chinesecalendar package,
plus the administrator's overrides (they win) and the years the administrator declared complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

BEIJING = ZoneInfo("Asia/Shanghai")
MAX_WORKING_DAYS = 60


class CalendarNotCovered(Exception):
    """A date falls in a year whose holiday schedule nobody has entered."""

    code = "calendar_not_covered"

    def __init__(self, year: int):
        self.year = year
        super().__init__(
            f"工作日历尚未包含 {year} 年的法定节假日安排，无法计算公示期。"
            f"请系统管理员在“工作日历”页面（/admin/calendar）录入 {year} 年的放假和调休日期并确认该年已完整，"
            f"或运行 flask calendar import-year {year} 文件.csv 导入。"
        )


@dataclass(frozen=True)
class WorkCalendar:
    """Rest days on weekdays and make-up working days on weekends, plus overrides that win.

    `rest_days` / `makeup_days` come from the official schedule; `overrides` maps a day to
    True (working) or False (rest); `covered_years` are the years one may compute in.
    """

    rest_days: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    overrides: Mapping[date, bool] = field(default_factory=dict)
    covered_years: frozenset[int] = frozenset()

    def covers(self, year: int) -> bool:
        return year in self.covered_years

    def check_covered(self, day: date) -> None:
        if not self.covers(day.year):
            raise CalendarNotCovered(day.year)

    def is_working_day(self, day: date) -> bool:
        self.check_covered(day)
        if day in self.overrides:
            return bool(self.overrides[day])
        if day in self.makeup_days:
            return True
        if day in self.rest_days:
            return False
        return day.weekday() < 5


def package_years() -> frozenset[int]:
    """Years whose schedule the installed chinesecalendar package ships."""
    from chinese_calendar import constants

    return frozenset(d.year for d in constants.holidays) | frozenset(d.year for d in constants.workdays)


def build_calendar(overrides: Mapping[date, bool] | None = None,
                   declared_years: Iterable[int] = ()) -> WorkCalendar:
    """The package's schedule + overrides; covered = package years + years declared complete."""
    from chinese_calendar import constants

    return WorkCalendar(
        rest_days=frozenset(constants.holidays),
        makeup_days=frozenset(constants.workdays),
        overrides=dict(overrides or {}),
        covered_years=package_years() | frozenset(int(y) for y in declared_years),
    )


_default: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """The package's schedule alone (no overrides): built once, on first use."""
    global _default
    if _default is None:
        _default = build_calendar()
    return _default


def is_working_day(d: date, calendar: WorkCalendar | None = None) -> bool:
    return (calendar or default_calendar()).is_working_day(d)


def publicity_last_day(posted_on: date, working_days: int, calendar: WorkCalendar | None = None) -> date:
    """The last day of a publicity posted on `posted_on` lasting `working_days` working days.

    The posting day never counts (even when it is a working day).
    """
    if isinstance(posted_on, datetime) or not isinstance(posted_on, date):
        raise TypeError("posted_on must be a date")
    if isinstance(working_days, bool) or not isinstance(working_days, int):
        raise TypeError("working_days must be an int")
    if not 1 <= working_days <= MAX_WORKING_DAYS:
        raise ValueError(f"公示期须为 1 至 {MAX_WORKING_DAYS} 个工作日")
    cal = calendar or default_calendar()
    day = posted_on
    counted = 0
    while counted < working_days:
        day += timedelta(days=1)
        if cal.is_working_day(day):
            counted += 1
    return day


def working_days_between(first: date, last: date, calendar: WorkCalendar | None = None) -> list[date]:
    """The working days from `first` to `last`, both included."""
    cal = calendar or default_calendar()
    out = []
    day = first
    while day <= last:
        if cal.is_working_day(day):
            out.append(day)
        day += timedelta(days=1)
    return out


def window_end(last_day: date) -> datetime:
    """24:00 Beijing time of `last_day` (= 00:00 of the next day) as an aware UTC datetime."""
    return datetime.combine(last_day + timedelta(days=1), time(0, 0), tzinfo=BEIJING).astimezone(UTC)


def beijing_date(moment: datetime) -> date:
    """The calendar day in Beijing of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment.astimezone(BEIJING).date()
