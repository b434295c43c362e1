"""One error shape for every 4xx and 5xx: a list of (field, reason) and the request id.

Scope refusals follow one rule: a thing the caller may not know exists is 404 (the same
answer as for a thing that does not exist, so ids cannot be probed); a thing they can see
but may not do this to, or an endpoint their role lacks, is 403. Both are logged.
"""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import (
    Conflict,
    FairdraftError,
    Invalid,
    Misconfigured,
    NotFound,
    Refused,
    Unavailable,
)

log = logging.getLogger("fairdraft.api")


# What SQLAlchemy raises when the server is gone or unreachable (connection refused, reset,
# admin shutdown) or the pool has no connection to give: 503, not 500.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


class ErrorItem(BaseModel):
    field: str | None = Field(description="The request field at fault; null for the whole request.")
    reason: str


class ErrorBody(BaseModel):
    errors: list[ErrorItem]
    request_id: str

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "errors": [{"field": "based_on", "reason": "version 3 is not current (4)"}],
                    "request_id": "5f0c2a1e9b7d4c3a",
                }
            ]
        }
    }


class ApiError(Exception):
    """An error a user caused, with the status and (field, reason) to tell them."""

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        field: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.extra = extra or {}
        self.headers = headers or {}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "A body that cannot be parsed (not UTF-8, JSON or multipart as declared)"),
        (401, "No valid bearer token"),
        (403, "Not allowed for this person"),
        (404, "Not found, or not visible to this person"),
        (413, "The body is over the size limit (refused before it is read)"),
        (422, "Invalid request"),
        (429, "Too many failed authentications from this address; see Retry-After"),
        (503, "The database is unreachable; see Retry-After"),
    )
}


CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {
        "model": ErrorBody,
        "description": "Refused by the state of the thing (a gate, a final rating)",
    }
}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def _body(request: Request, errors: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"errors": errors, "request_id": request_id(request), **extra}


def _log_refusal(request: Request, status: int, reason: str) -> None:
    if status in (403, 404):
        principal = getattr(request.state, "principal", None)
        log.warning(
            "refused",
            extra={
                "event": "refused",
                "status": status,
                "path": request.url.path,
                "method": request.method,
                "person_id": getattr(principal, "person_id", None),
                "request_id": request_id(request),
                "reason": reason,
            },
        )


def _page(request: Request, status: int, reason: str, *, refusal: bool = False) -> Response | None:
    """Pages answer errors as a page: the web module registers how (app.state.error_page).
    `refusal` marks a domain refusal the person can act on where they came from (a page
    form sends them back there with the reason) rather than a failure of the request."""
    page = getattr(request.app.state, "error_page", None)
    if page is None or request.url.path.startswith(
        ("/api/", "/openapi", "/docs", "/health", "/ready", "/metrics")
    ):
        return None
    response: Response = page(request, status, reason, refusal=refusal)
    return response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _answer(request, exc)


def _answer(request: Request, exc: ApiError, *, refusal: bool = False) -> Response:
    _log_refusal(request, exc.status, exc.reason)
    if (page := _page(request, exc.status, exc.reason, refusal=refusal)) is not None:
        page.headers.update(exc.headers)
        return page
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
    body = _body(request, [{"field": exc.field, "reason": exc.reason}], **exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=headers | exc.headers)


# The API's status for each kind of domain error; a subclass takes its base's.
STATUS: tuple[tuple[type[FairdraftError], int], ...] = (
    (Invalid, 422),
    (NotFound, 404),
    (Refused, 403),
    (Conflict, 409),
    (Unavailable, 503),
    (Misconfigured, 503),
)


def status_of(exc: FairdraftError) -> int:
    return next((status for cls, status in STATUS if isinstance(exc, cls)), 500)


def told_where_asked(exc: FairdraftError) -> bool:
    """Whether a page form should show the refusal on the page it came from: a value or
    state the person can change there, not a failure, nor a thing they may not see (a
    NotFound without a field comes from a scope check)."""
    return status_of(exc) < 500 and (not isinstance(exc, NotFound) or exc.field is not None)


async def _domain_error(request: Request, exc: Exception) -> Response:
    """Every error fairdraft raises on purpose, answered once, by its class."""
    assert isinstance(exc, FairdraftError)
    status = status_of(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else {}
    answer = ApiError(
        status, exc.reason, field=exc.field, extra=dict(exc.details()), headers=headers
    )
    return _answer(request, answer, refusal=told_where_asked(exc))


async def error_response(request: Request, exc: ApiError) -> Response:
    """The answer to an ApiError raised outside the routes (the middleware's refusals)."""
    return await _api_error(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if (
        page := _page(request, 422, "the form or address has a value that is not valid")
    ) is not None:
        return page
    errors = [_validation_item(e) for e in exc.errors()]
    return JSONResponse(_body(request, errors), status_code=422)


def _validation_item(error: dict[str, Any]) -> dict[str, Any]:
    """(field, reason) of one pydantic error; a body that is not JSON names the body and
    the character where parsing stopped, not that offset as if it were a field."""
    location = [str(p) for p in error.get("loc", ())]
    if error.get("type") == "json_invalid":
        where = location[1] if len(location) > 1 else "?"
        detail = (error.get("ctx") or {}).get("error", "invalid JSON")
        return {
            "field": "body",
            "reason": f"the body is not valid JSON: {detail} at character {where}",
        }
    return {
        "field": ".".join(p for p in location if p != "body") or None,
        "reason": str(error.get("msg", "invalid")),
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    _log_refusal(request, exc.status_code, str(exc.detail))
    if (page := _page(request, exc.status_code, str(exc.detail))) is not None:
        return page
    body = _body(request, [{"field": None, "reason": str(exc.detail)}])
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    """A value Postgres cannot store (a NUL character, a number out of range): the user's
    input, not our fault; the transaction is already rolled back."""
    reason = "a value is out of the range the database can store, or contains a NUL character"
    return JSONResponse(_body(request, [{"field": None, "reason": reason}]), status_code=422)


RETRY_AFTER_S = 5


async def database_unavailable(request: Request, exc: Exception) -> Response:
    """The database cannot be reached (down, restarting, pool exhausted): the caller may try
    again shortly, and nothing was changed. Logged once per request, without a traceback."""
    log.warning(
        "database unavailable",
        extra={
            "event": "database_unavailable",
            "request_id": request_id(request),
            "error": type(exc).__name__,
        },
    )
    return await _api_error(
        request,
        ApiError(
            503,
            "the database is unavailable; nothing was changed. Try again shortly.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        ),
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", extra={"request_id": request_id(request)})
    reason = "internal error; nothing was changed. Quote the request id to your administrator."
    return JSONResponse(_body(request, [{"field": None, "reason": reason}]), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(FairdraftError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
