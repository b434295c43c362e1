"""Parameters several routers parse the same way, with the same 422 when they are wrong."""

from retrieval.periods import Period, PeriodError, parse_period
from service.api.errors import ApiError


def period_param(value: str | None) -> Period | None:
    """A period query parameter, or a 422 that says which forms are understood."""
    if value is None:
        return None
    try:
        return parse_period(value)
    except PeriodError as exc:
        raise ApiError(422, str(exc), field="period") from None


def cycle_name(value: str) -> str:
    """A cycle is named by its period (2026-H1); anything else is refused before it could
    create a cycle by mistake."""
    period = period_param(value)
    if period is None:
        raise ApiError(422, "a cycle name is required", field="cycle")
    return period.name
