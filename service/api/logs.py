"""Request ids and one structured log line per request.

The line carries method, route, status, duration, the person's id and the request id,
never a query string, a body, evidence text or anything demographic: paths hold ids only,
and the route template (`/api/v1/people/{person_id}`) is logged rather than the raw path.
"""

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger("fairdraft.api")
_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: the message and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        line = {"level": record.levelname, "logger": record.name, "msg": record.getMessage()}
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line | fields, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("fairdraft")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


async def request_context(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Middleware: take or make a request id, time the request, log it, echo the id."""
    incoming = request.headers.get("x-request-id", "")
    request.state.request_id = incoming if _safe_id(incoming) else secrets.token_hex(8)
    started = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    principal = getattr(request.state, "principal", None)
    log.info(
        "request",
        extra={
            "event": "request",
            "method": request.method,
            "route": getattr(route, "path", "unmatched"),
            "status": response.status_code,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "person_id": getattr(principal, "person_id", None),
            "request_id": request.state.request_id,
        },
    )
    response.headers["X-Request-ID"] = request.state.request_id
    return response


def _safe_id(value: str) -> bool:
    return 0 < len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value)
