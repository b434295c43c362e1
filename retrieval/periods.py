"""Review periods by name: `2026-H1`, `2026-Q3`, `2026-05`, `2026`, or `2026-01-01..2026-03-31`.

Retrieval and review cycles speak of periods; parsing them in one place keeps the meaning
of "2026-H1" the same everywhere. Bounds are dates, the end inclusive.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

_HALF = re.compile(r"^(\d{4})-H([12])$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    name: str
    start: date
    end: date

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=UTC)

    @property
    def ends_before(self) -> datetime:
        """The first instant after the period, for half-open range queries."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC)


def _months(name: str, year: int, first: int, count: int) -> Period:
    last = first + count - 1
    return Period(name, date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1]))


def parse_period(name: str) -> Period:
    """A period by name; PeriodError for anything else, an impossible date included."""
    try:
        return _parse(name.strip())
    except ValueError as exc:  # year 0, 2026-02-30..: date() refuses them
        if isinstance(exc, PeriodError):
            raise
        raise PeriodError(f"{name.strip()!r} is not a period: {exc}") from None


def _parse(name: str) -> Period:
    if match := _HALF.match(name):
        return _months(name, int(match[1]), 1 + 6 * (int(match[2]) - 1), 6)
    if match := _QUARTER.match(name):
        return _months(name, int(match[1]), 1 + 3 * (int(match[2]) - 1), 3)
    if (match := _MONTH.match(name)) and 1 <= int(match[2]) <= 12:
        return _months(name, int(match[1]), int(match[2]), 1)
    if match := _YEAR.match(name):
        return _months(name, int(match[1]), 1, 12)
    if match := _RANGE.match(name):
        start, end = date.fromisoformat(match[1]), date.fromisoformat(match[2])
        if start <= end:
            return Period(name, start, end)
    raise PeriodError(
        f"{name!r} is not a period: use 2026-H1, 2026-Q3, 2026-05, 2026 or 2026-01-01..2026-03-31"
    )
