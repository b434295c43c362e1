"""Parameters several routers parse the same way, with the same 422 when they are wrong.

This is the HTTP edge of a period: the API's and the pages' period and cycle values are
parsed here, once, into a `Period` that everything behind the routers takes typed.
"""

from datetime import UTC, date, datetime

from sqlalchemy import Connection

from domain.periods import Period, PeriodError, parse_period
from service.cycles.store import latest_cycle
from service.http.errors import ApiError


def required_period(value: str, *, field: str = "period") -> Period:
    """A period parameter (a cycle is named by its period), or a 422 that names the field
    and says which forms are understood; anything else is refused before it could reach a
    query or create a cycle by mistake."""
    try:
        return parse_period(value)
    except PeriodError as exc:
        raise ApiError(422, str(exc), field=field) from None


def period_param(value: str | None) -> Period | None:
    """An optional period parameter: None means the whole history."""
    return None if value is None else required_period(value)


def page_period(
    connection: Connection, value: str | None, *, field: str = "period", today: date | None = None
) -> Period:
    """A page's period: the one asked for, else the default period (`default_period`)."""
    if value is not None:
        return required_period(value, field=field)
    return default_period(connection, today or datetime.now(UTC).date())


def default_period(connection: Connection, today: date) -> Period:
    """What a page shows when no period is asked for: the latest review cycle that has
    begun, else the half-year `today` falls in (a fresh install has no cycle yet)."""
    return latest_cycle(connection, today) or half_year_of(today)


def half_year_of(day: date) -> Period:
    """The half-year a day falls in, e.g. 2026-H2 for 3 December 2026."""
    return parse_period(f"{day.year:04d}-H{1 if day.month <= 6 else 2}")
