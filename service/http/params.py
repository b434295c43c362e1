"""Parameters several routers parse the same way, with the same 422 when they are wrong."""

from retrieval.periods import Period, PeriodError, parse_period
from service.http.errors import ApiError


def required_period(value: str) -> Period:
    """A period parameter, or a 422 that says which forms are understood."""
    try:
        return parse_period(value)
    except PeriodError as exc:
        raise ApiError(422, str(exc), field="period") from None


def period_param(value: str | None) -> Period | None:
    """An optional period parameter: None means the whole history."""
    return None if value is None else required_period(value)


def cycle_name(value: str) -> str:
    """A cycle is named by its period (2026-H1); anything else is refused before it could
    create a cycle by mistake."""
    return required_period(value).name
