"""The calendar of the synthetic year: working days, review periods and the date phrases
templates use ("March", "Q2", "March 14")."""

import bisect
import functools
import random
from datetime import UTC, date, datetime, time, timedelta

from domain.calendar import MONTHS, WEEKDAYS

YEAR_START = date(2026, 1, 5)
YEAR_END = date(2026, 11, 20)
PERIODS: dict[str, tuple[date, date]] = {
    "2026-H1": (date(2026, 1, 1), date(2026, 6, 30)),
    "2026-H2": (date(2026, 7, 1), date(2026, 12, 31)),
}
RATING_CYCLE = "2026-H1"


def _working_days(start: date, end: date) -> tuple[date, ...]:
    days = (start + timedelta(days=offset) for offset in range((end - start).days + 1))
    return tuple(day for day in days if day.weekday() < 5)


WORKDAYS = _working_days(YEAR_START, YEAR_END)
_ORDINALS = tuple(day.toordinal() for day in WORKDAYS)


def clamp_day(day: date) -> date:
    """The working day on or before `day`, kept inside the year."""
    ordinal = min(max(day, YEAR_START), YEAR_END).toordinal()
    return WORKDAYS[max(0, bisect.bisect_right(_ORDINALS, ordinal) - 1)]


def random_workday(rng: random.Random, start: date, end: date) -> date:
    """A working day drawn uniformly between two dates (clamped to the year)."""
    low = bisect.bisect_left(_ORDINALS, max(start, YEAR_START).toordinal())
    high = bisect.bisect_right(_ORDINALS, min(end, YEAR_END).toordinal()) - 1
    if high < low:
        return clamp_day(start)
    return WORKDAYS[rng.randint(low, high)]


def stamp(rng: random.Random, day: date) -> datetime:
    """A time in office hours on that day, UTC, to five minutes."""
    minutes = rng.randrange(8 * 12, 18 * 12) * 5
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=UTC)


def period_of(day: date) -> str:
    for name, (start, end) in PERIODS.items():
        if start <= day <= end:
            return name
    raise ValueError(f"{day} is outside the review periods")


@functools.cache
def date_slots(day: date) -> dict[str, str]:
    """Template values for a record's date; cached because many records share a day."""
    month = day.month - 1
    quarter = month // 3
    return {
        "month": MONTHS[month],
        "prev_month": MONTHS[(month - 1) % 12],
        "next_month": MONTHS[(month + 1) % 12],
        "date": f"{MONTHS[month]} {day.day}",
        "weekday": WEEKDAYS[day.weekday()],
        "quarter": f"Q{quarter + 1}",
        "next_quarter": f"Q{(quarter + 1) % 4 + 1}",
        "half": "H1" if month < 6 else "H2",
    }
