"""The working-day calendar on the 2026 State Council schedule (pure: no database)."""

from datetime import UTC, date, datetime

import pytest

from residents_app.core.calendar import (
    CalendarNotCovered,
    build_calendar,
    default_calendar,
    is_working_day,
    package_years,
    publicity_last_day,
    window_end,
    working_days_between,
)


def test_posted_before_national_day_ends_on_october_12():
    # Tue 2026-09-29: days 9/30, 10/8, 10/9, 10/10 (make-up Saturday), 10/12
    assert publicity_last_day(date(2026, 9, 29), 5) == date(2026, 10, 12)
    assert working_days_between(date(2026, 9, 30), date(2026, 10, 12)) == [
        date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9), date(2026, 10, 10), date(2026, 10, 12)]


def test_posted_on_national_day():
    # 10/1-10/7 are holidays; counting starts 10/8: 10/8, 10/9, 10/10, 10/12, 10/13
    assert publicity_last_day(date(2026, 10, 1), 5) == date(2026, 10, 13)


def test_the_2026_make_up_days_from_the_package():
    makeup = sorted(d for d in default_calendar().makeup_days if d.year == 2026)
    assert makeup == [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9),
                      date(2026, 9, 20), date(2026, 10, 10)]
    saturdays = [d for d in makeup if d.weekday() == 5]
    assert saturdays == [date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 10, 10)]
    assert all(is_working_day(d) for d in makeup)


def test_posted_on_a_make_up_saturday():
    # Sat 2026-10-10 is a working day, but the posting day never counts: 10/12 .. 10/16
    assert is_working_day(date(2026, 10, 10)) is True
    assert publicity_last_day(date(2026, 10, 10), 5) == date(2026, 10, 16)
    # Sat 2026-02-28 (after the Spring Festival): 3/2 .. 3/6
    assert publicity_last_day(date(2026, 2, 28), 5) == date(2026, 3, 6)


def test_spring_festival_2026():
    # Holidays 2/15 (Sun) .. 2/23 (Mon); make-up Saturdays 2/14 and 2/28.
    assert [is_working_day(date(2026, 2, d)) for d in range(13, 25)] == [
        True, True, False, False, False, False, False, False, False, False, False, True]
    # Thu 2/12: 2/13, 2/14 (make-up), 2/24, 2/25, 2/26
    assert publicity_last_day(date(2026, 2, 12), 5) == date(2026, 2, 26)
    # Posted in the middle of the holiday: 2/24, 2/25, 2/26, 2/27, 2/28 (make-up Saturday)
    assert publicity_last_day(date(2026, 2, 18), 5) == date(2026, 2, 28)


def test_plain_weeks_and_one_day():
    # Mon 2026-11-23 -> Tue .. Fri (4) + Mon 11/30
    assert publicity_last_day(date(2026, 11, 23), 5) == date(2026, 11, 30)
    assert publicity_last_day(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Fri -> Mon
    assert publicity_last_day(date(2026, 11, 23), 10) == date(2026, 12, 7)


def test_a_year_the_calendar_does_not_cover_is_refused_with_a_clear_message():
    assert 2026 in package_years() and 2027 not in package_years()
    with pytest.raises(CalendarNotCovered) as err:
        publicity_last_day(date(2027, 3, 1), 5)
    assert err.value.year == 2027
    msg = str(err.value)
    assert "2027 年" in msg and "/admin/calendar" in msg and "flask calendar import-year 2027" in msg
    # Crossing into 2027 is refused too (12/31 is a Thursday: 5 working days reach into January).
    with pytest.raises(CalendarNotCovered):
        publicity_last_day(date(2026, 12, 28), 5)
    with pytest.raises(CalendarNotCovered):
        is_working_day(date(2027, 1, 4))


def test_overrides_alone_do_not_cover_a_year():
    cal = build_calendar({date(2027, 1, 1): False})
    with pytest.raises(CalendarNotCovered):
        publicity_last_day(date(2027, 1, 4), 1, cal)


def test_overrides_entered_for_2027_then_it_works():
    # A plausible 2027 New Year: Fri 1/1 rest; and Spring Festival 2/6..2/12 with make-up Sat 2/20.
    overrides = {date(2027, 1, 1): False, **{date(2027, 2, d): False for d in range(8, 13)},
                 date(2027, 2, 20): True}
    cal = build_calendar(overrides, declared_years=[2027])
    # Posted Thu 2026-12-31: 1/1 is a holiday, weekend, then 1/4 .. 1/8
    assert publicity_last_day(date(2026, 12, 31), 5, cal) == date(2027, 1, 8)
    # Posted Fri 2027-02-05: 2/8..2/12 rest, 2/15..2/19, 2/20 make-up Saturday -> 5th day is 2/19
    assert publicity_last_day(date(2027, 2, 5), 5, cal) == date(2027, 2, 19)
    assert publicity_last_day(date(2027, 2, 5), 6, cal) == date(2027, 2, 20)
    assert is_working_day(date(2027, 2, 20), cal) is True


def test_overrides_win_over_the_package():
    # An administrator's correction: make 2026-10-12 a rest day.
    cal = build_calendar({date(2026, 10, 12): False})
    assert publicity_last_day(date(2026, 9, 29), 5, cal) == date(2026, 10, 13)
    cal = build_calendar({date(2026, 10, 11): True})  # a Sunday made a working day
    assert publicity_last_day(date(2026, 9, 29), 5, cal) == date(2026, 10, 11)


def test_bad_arguments():
    with pytest.raises(ValueError, match="1 至 60"):
        publicity_last_day(date(2026, 9, 29), 0)
    with pytest.raises(ValueError):
        publicity_last_day(date(2026, 9, 29), 61)
    with pytest.raises(TypeError):
        publicity_last_day(datetime(2026, 9, 29, tzinfo=UTC), 5)
    with pytest.raises(TypeError):
        publicity_last_day(date(2026, 9, 29), True)


def test_window_end_is_midnight_beijing_in_utc():
    end = window_end(date(2026, 10, 12))
    assert end == datetime(2026, 10, 12, 16, 0, tzinfo=UTC)
    assert end.utcoffset().total_seconds() == 0
