"""When a message may go out: quiet hours (no messages 21:00-08:00 Beijing), the backoff after a failure and the
Beijing day a daily cap counts in. Pure functions of the time given."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from residents_app.core.calendar import BEIJING

QUIET_STARTS = time(21, 0)
QUIET_ENDS = time(8, 0)
BACKOFF_FIRST = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=1)


def in_quiet_hours(at: datetime) -> bool:
    local = at.astimezone(BEIJING).time()
    return local >= QUIET_STARTS or local < QUIET_ENDS


def release_time(at: datetime) -> datetime:
    """`at` itself outside quiet hours, else the 08:00 Beijing that ends them (UTC)."""
    if not in_quiet_hours(at):
        return at
    local = at.astimezone(BEIJING)
    day = local.date() if local.time() < QUIET_ENDS else local.date() + timedelta(days=1)
    return datetime.combine(day, QUIET_ENDS, tzinfo=BEIJING).astimezone(UTC)


def next_morning(at: datetime) -> datetime:
    """08:00 Beijing of the day after `at`'s Beijing day (a capped unit's next chance)."""
    day = at.astimezone(BEIJING).date() + timedelta(days=1)
    return datetime.combine(day, QUIET_ENDS, tzinfo=BEIJING).astimezone(UTC)


def beijing_day_start(at: datetime) -> datetime:
    local = at.astimezone(BEIJING)
    return datetime.combine(local.date(), time(0, 0), tzinfo=BEIJING).astimezone(UTC)


def backoff(attempts: int) -> timedelta:
    """Wait after the `attempts`-th failed attempt: 1, 2, 4, ... minutes, at most an hour."""
    return min(BACKOFF_FIRST * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
