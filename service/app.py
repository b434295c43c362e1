"""The FastAPI application factory and `fairdraft serve`'s entry point: it assembles the
API routers, the web pages and the shared HTTP layer (service/http), which do not import
each other.

`create_app(settings)` opens the configured (or embedded) database on start-up and, unless
`serve_worker` is off, runs one job worker in a thread of the same process, so a single
machine needs nothing else. Tests pass their own engine and choose whether a worker runs.
"""

import gc
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import Engine, text
from starlette.types import ASGIApp

from retrieval.pack_cache import PackCache
from service.api.routers import (
    audit,
    calibration,
    connectors,
    cycles,
    dashboard,
    drafts,
    ingest,
    jobs,
    peer_feedback,
    people,
    promotions,
    ratings,
    release,
    reminders,
    scim,
    tasks,
)
from service.http.deps import get_engine
from service.http.docs import install_docs
from service.http.errors import ErrorBody, install_error_handlers
from service.http.logs import RequestContext, configure_logging
from service.http.metrics import install_metrics
from service.http.middleware import Authenticate, BodyLimit, RequestMetrics, SecurityHeaders
from service.http.scim_gate import ScimGate
from service.jobs.handlers import HANDLERS
from service.jobs.worker import start_in_thread
from service.metrics import Metrics, metered, multiprocess_dir, process_metrics
from service.settings import Settings, get_settings
from service.store import (
    EmbedderSource,
    ParserSource,
    open_store,
)
from service.web.setup import install_pages

DESCRIPTION = """Drafts performance reviews from evidence and checks them for bias before a
person approves them.

Authenticate with `Authorization: Bearer <token>`: a token from `fairdraft token create`, or
a JWT of the configured OIDC issuer. Every 4xx has the same body: `errors` (field, reason)
and the `request_id`. A thing outside your scope answers 404 when you may not know it
exists and 403 when you may see it but not do this."""


class FairdraftApp(FastAPI):
    """Request metrics, request ids, the log line and the security headers wrap Starlette's
    whole stack, its 500 handler included (added middleware sits inside it), so every
    answer carries them and is counted."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = RequestContext(SecurityHeaders(super().build_middleware_stack()))
        metrics: Metrics = self.state.metrics
        return RequestMetrics(inner, metrics, pool_each_request=multiprocess_dir() is not None)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    worker: bool | None = None,
    freeze_heap: bool = False,
) -> FastAPI:
    """The app. `freeze_heap` (a served process, never a test that builds many apps): once
    started, the objects alive then (modules, the app, its routes) leave the garbage
    collector's view (gc.freeze), so its full collections stop walking ~400,000 objects
    that never die; on a busy dashboard they were 230-480 ms pauses every few requests."""
    run_worker = settings.serve_worker if worker is None else worker

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            app.state.engine = engine or stack.enter_context(open_store(settings))
            if run_worker:
                thread, stop = start_in_thread(
                    app.state.engine,
                    settings,
                    embedder=app.state.embedder,
                    parser=app.state.parser,
                )
                stack.callback(thread.join, 30)
                stack.callback(stop.set)
            if freeze_heap:
                gc.collect()
                gc.freeze()
            yield

    app = FairdraftApp(
        title="fairdraft",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by install_docs from the installed package, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = process_metrics()
    app.state.pack_cache = PackCache()
    # wrapped once, when loaded: the API's query embeddings and the in-process worker's
    # jobs count their texts and seconds in one embedder
    app.state.embedder = EmbedderSource(settings, lambda loaded: metered(loaded, app.state.metrics))
    app.state.parser = ParserSource(settings)
    if engine is not None:
        app.state.engine = engine
    # Limits, then authentication, before any body is read (the last added runs first).
    app.add_middleware(Authenticate, settings=settings)
    app.add_middleware(BodyLimit, settings=settings)
    # /scim/v2 is opened by the identity provider's token alone, checked first.
    app.add_middleware(ScimGate, settings=settings)
    install_error_handlers(app)
    for module in (
        people,
        drafts,
        jobs,
        ratings,
        calibration,
        cycles,
        dashboard,
        tasks,
        peer_feedback,
        promotions,
        release,
        reminders,
        audit,
        ingest,
        connectors,
        scim,
    ):
        app.include_router(module.router)
    install_pages(app)
    install_docs(app)
    install_metrics(app, settings, app.state.metrics, HANDLERS)

    @app.get("/health", tags=["service"], summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["service"],
        summary="Readiness: the database answers (503 with Retry-After while it does not)",
        responses={503: {"model": ErrorBody, "description": "The database is unreachable"}},
    )
    def ready(engine: Annotated[Engine, Depends(get_engine)]) -> dict[str, str]:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ready"}

    return app


def app_from_environment() -> FastAPI:
    """The app on the environment's settings: what each `fairdraft serve` process runs
    (each configures its own JSON logging, since workers are separate processes)."""
    configure_logging()
    return create_app(get_settings(), freeze_heap=True)
