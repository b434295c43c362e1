"""`GET /metrics`: the Prometheus text format for an operator's scraper.

Who may read it: whoever sends FAIRDRAFT_METRICS_TOKEN as a bearer token, nobody else. The
answer holds no personal data (labels are route templates, kinds and outcomes), but it
tells how busy the service is and how it is built, and it costs a database query: so it is
off (404) until an operator sets the token, and a person's API token or page session does
not open it (a scraper should not hold a credential that reads reviews). A wrong token is
answered 401, counted and logged like any failed authentication; past the failure limit,
429. A scrape is not throttled otherwise: it is one cheap query.
"""

import hmac
from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from service.access.throttle import FailureThrottle
from service.http.deps import get_engine
from service.http.errors import ApiError
from service.http.middleware import METRICS_PATH, bearer_token, note_failure, throttled
from service.metrics import CONTENT_TYPE, Metrics, exposition, multiprocess_dir
from service.settings import Settings

OFF = "metrics are off: set FAIRDRAFT_METRICS_TOKEN and scrape with it as a bearer token"


def install_metrics(
    app: FastAPI, settings: Settings, metrics: Metrics, kinds: Iterable[str]
) -> None:
    """Serve `metrics` (and the queue of `kinds`, read at each scrape) at /metrics."""
    token = settings.metrics_token
    throttle = FailureThrottle(
        limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
    )
    directory = multiprocess_dir()

    def authorise(request: Request) -> None:
        if token is None:
            raise ApiError(404, OFF)
        sent = bearer_token(request.scope)
        if sent is not None and hmac.compare_digest(
            sent.encode(), token.get_secret_value().encode()
        ):
            return
        if sent is not None and (wait := note_failure(request.scope, throttle, "wrong token")):
            raise throttled(wait)
        raise ApiError(401, "the metrics token is required", field="Authorization")

    @app.get(METRICS_PATH, include_in_schema=False, dependencies=[Depends(authorise)])
    async def read_metrics(engine: Annotated[Engine, Depends(get_engine)]) -> Response:
        body = await run_in_threadpool(exposition, metrics, engine, kinds, directory=directory)
        return Response(body, media_type=CONTENT_TYPE)
