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
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fairdraft.api")


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
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.field = field
        self.extra = extra or {}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def forbidden(reason: str) -> ApiError:
    return ApiError(403, reason)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "A body that cannot be parsed (not UTF-8, JSON or multipart as declared)"),
        (401, "No valid bearer token"),
        (403, "Not allowed for this person"),
        (404, "Not found, or not visible to this person"),
        (422, "Invalid request"),
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


def _page(request: Request, status: int, reason: str) -> Response | None:
    """Pages answer errors as a page: the web module registers how (app.state.error_page)."""
    page = getattr(request.app.state, "error_page", None)
    if page is None or request.url.path.startswith(("/api/", "/openapi", "/docs", "/health")):
        return None
    response: Response = page(request, status, reason)
    return response


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    _log_refusal(request, exc.status, exc.reason)
    if (page := _page(request, exc.status, exc.reason)) is not None:
        return page
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = _body(request, [{"field": exc.field, "reason": exc.reason}], **exc.extra)
    return JSONResponse(body, status_code=exc.status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if (
        page := _page(request, 422, "the form or address has a value that is not valid")
    ) is not None:
        return page
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body") or None,
            "reason": str(e.get("msg", "invalid")),
        }
        for e in exc.errors()
    ]
    return JSONResponse(_body(request, errors), status_code=422)


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


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error", extra={"request_id": request_id(request)})
    reason = "internal error; nothing was changed. Quote the request id to your administrator."
    return JSONResponse(_body(request, [{"field": None, "reason": reason}]), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(Exception, _unexpected)
