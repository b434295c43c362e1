"""Review periods by name: `2026-H1`, `2026-Q3`, `2026-05`, `2026`, or `2026-01-01..2026-03-31`.

Retrieval and review cycles speak of periods; parsing them in one place keeps the meaning
of "2026-H1" the same everywhere. Bounds are dates, the end inclusive.

This is the one validation every entry point uses (API parameters and bodies, pages,
CLI options, job payloads, ratings files), so it is strict: ASCII digits only, nothing
around or inside the name (a trailing newline or space is refused, not stripped, so that
"2026-H1\\n" never becomes a second cycle), years 2000 to 2100 (a year like 9999 overflows
date arithmetic further on), and a range of at most five years.
"""

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from domain.errors import Invalid

FIRST_YEAR = 2000
LAST_YEAR = 2100
MAX_RANGE_YEARS = 5
MAX_LENGTH = 22  # the longest form: 2026-01-01..2026-03-31
FORMS = "2026-H1, 2026-Q3, 2026-05, 2026 or 2026-01-01..2026-03-31"

_HALF = re.compile(r"([0-9]{4})-H([12])")
_QUARTER = re.compile(r"([0-9]{4})-Q([1-4])")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_YEAR = re.compile(r"([0-9]{4})")
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_RANGE = re.compile(rf"({_DATE})\.\.({_DATE})")


class PeriodError(Invalid):
    """A period that is not one: the message names the value and what is expected."""


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


def parse_period(name: str) -> Period:
    """A period by name; PeriodError for anything else (whitespace, a year outside 2000 to
    2100, an impossible date, a range backwards or longer than five years)."""
    if not isinstance(name, str):
        raise PeriodError(f"{_shown(name)} is not a period: use {FORMS}")
    if any(c.isspace() for c in name):
        raise PeriodError(f"{_shown(name)} is not a period: no spaces or line breaks allowed")
    if len(name) > MAX_LENGTH:
        raise PeriodError(f"{_shown(name)} is not a period: use {FORMS}")
    try:
        return _parse(name)
    except PeriodError:
        raise
    except ValueError as exc:  # 2026-02-30: date() refuses it
        raise PeriodError(f"{_shown(name)} is not a period: {exc}") from None


def _parse(name: str) -> Period:
    if match := _HALF.fullmatch(name):
        return _months(name, _year(match[1], name), 1 + 6 * (int(match[2]) - 1), 6)
    if match := _QUARTER.fullmatch(name):
        return _months(name, _year(match[1], name), 1 + 3 * (int(match[2]) - 1), 3)
    if (match := _MONTH.fullmatch(name)) and 1 <= int(match[2]) <= 12:
        return _months(name, _year(match[1], name), int(match[2]), 1)
    if match := _YEAR.fullmatch(name):
        return _months(name, _year(match[1], name), 1, 12)
    if match := _RANGE.fullmatch(name):
        return _range(name, match[1], match[2])
    raise PeriodError(f"{_shown(name)} is not a period: use {FORMS}")


def _year(text: str, name: str) -> int:
    year = int(text)
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise PeriodError(
            f"{_shown(name)} is not a period: years run from {FIRST_YEAR} to {LAST_YEAR}"
        )
    return year


def _months(name: str, year: int, first: int, count: int) -> Period:
    last = first + count - 1
    return Period(name, date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1]))


def _range(name: str, first: str, last: str) -> Period:
    _year(first[:4], name)
    _year(last[:4], name)
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    if start > end:
        raise PeriodError(f"{_shown(name)} is not a period: it ends before it starts")
    if end >= _years_later(start, MAX_RANGE_YEARS):
        raise PeriodError(
            f"{_shown(name)} is not a period: a range spans at most {MAX_RANGE_YEARS} years"
        )
    return Period(name, start, end)


def _years_later(day: date, years: int) -> date:
    """The same day `years` later (29 February becomes 1 March in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return date(day.year + years, 3, 1)


def _shown(value: object) -> str:
    """The value as an error message quotes it: repr (so whitespace shows), cut short."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
