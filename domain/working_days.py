"""Working days in Bangkok: weekends and the given public holidays do not count.

"Waits two working days" is measured as working time: the deadline is the instant at which two whole
working days of time have passed since the event, time on Saturdays, Sundays and holidays not
counting. A request made on Friday 10.00 is due on Tuesday 10.00; one made on Saturday counts from
Monday 00.00 and is due on Wednesday 00.00 (after two full working days).

Pure and zoneinfo-free (fixed UTC+7): the consultation workflow calls it with the holiday list its
activity looked up, so replay needs nothing from outside.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, time, timedelta

from domain.thai_time import BANGKOK, require_aware

# A deadline further than this many calendar days away means the holiday list is absurd (every day off).
_MAX_SPAN_DAYS = 3660


def is_working_day(day: date, holidays: Collection[date]) -> bool:
    return day.weekday() < 5 and day not in holidays


def working_deadline(start: datetime, days: int, holidays: Collection[date]) -> datetime:
    """The instant at which `days` working days of time have passed since `start` (aware, Bangkok days)."""
    if days < 0:
        raise ValueError("days must be >= 0")
    cursor = require_aware(start).astimezone(BANGKOK)
    remaining = timedelta(days=days)
    for _ in range(_MAX_SPAN_DAYS):
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), BANGKOK)
        if is_working_day(cursor.date(), holidays):
            if next_midnight - cursor >= remaining:
                return cursor + remaining
            remaining -= next_midnight - cursor
        cursor = next_midnight
    raise ValueError("no working days in the calendar")


def working_days_between(start: datetime, end: datetime, holidays: Collection[date]) -> float:
    """Working time from `start` to `end`, in days (0 when `end` is not after `start`)."""
    cursor, end = require_aware(start).astimezone(BANGKOK), require_aware(end).astimezone(BANGKOK)
    total = timedelta(0)
    while cursor < end:
        next_midnight = datetime.combine(cursor.date() + timedelta(days=1), time(0), BANGKOK)
        if is_working_day(cursor.date(), holidays):
            total += min(next_midnight, end) - cursor
        cursor = next_midnight
    return total / timedelta(days=1)
