"""What every request goes through before a route sees it, as plain ASGI middleware:

0. `RequestMetrics`: every answer timed by method, route template and status class
   (service.metrics), the refusals below included.
1. `SecurityHeaders`: a strict CSP and the other browser protections on every response.
2. `BodyLimit`: a body over its limit is refused with 413 before it is read (a declared
   Content-Length at once; a chunked body as soon as the running count passes the limit).
3. `Authenticate`: the caller is resolved from the bearer token or the page session before
   the body is read or parsed; an API call without a valid credential is answered 401 here,
   a page form post without a session is sent to sign-in, and an address with too many
   failures is answered 429. Routes read the result from `request.state.principal`. The
   caller is one query (service.access.authn); a GET or HEAD keeps that connection for its
   route (service.http.deps.get_connection), so a read checks out one, not two.
   Paths under /scim/ are not looked at here: the identity provider's own token opens them,
   checked before the body by service.http.scim_gate.ScimGate.

Plain ASGI rather than Starlette's BaseHTTPMiddleware, which wraps every response in extra
tasks and streams.
"""

import logging
import re
import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.access.authn import Authenticator
from service.access.principal import Principal
from service.access.throttle import FailureThrottle
from service.http.deps import HELD_CONNECTION
from service.http.errors import DATABASE_UNAVAILABLE, ApiError, database_unavailable, error_response
from service.metrics import UNMATCHED, Metrics
from service.settings import Settings

log = logging.getLogger("fairdraft.api")

SESSION_COOKIE = "fairdraft_session"
SIGN_IN_PATH = "/sign-in"
UPLOAD_PATH = "/api/v1/ingest"
# Read by a Prometheus server with its own token (service/http/metrics.py), never a person's.
METRICS_PATH = "/metrics"
# Opened by the identity provider's own token (service/http/scim_gate.py), never a person's.
SCIM_PREFIX = "/scim/"
# Multipart framing around an upload: boundaries, part headers, the small form fields.
_MULTIPART_OVERHEAD = 64 * 1024
# Paths that never need to know the caller: no lookup, so they answer while the database
# is down (/health is the liveness check) and static files cost no query.
_ANONYMOUS_PREFIXES = ("/static/", "/health", "/ready", "/openapi.json", "/docs")
# Page forms anyone may post: signing in (with a token or a one-time link,
# service/access/links.py) needs no session, signing out tolerates none.
_OPEN_POSTS = frozenset({SIGN_IN_PATH, SIGN_IN_PATH + "/link", "/sign-out"})

CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), interest-cohort=()"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN_PATH}?next={quote(next_path)}"


def client_address(scope: Scope) -> str:
    """The peer's address as uvicorn gives it (already taken from X-Forwarded-For when the
    peer is one of FAIRDRAFT_TRUSTED_PROXIES)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class SecurityHeaders:
    """Every response: CSP with no inline script or style, no framing, no sniffing, no
    referrer outside the site, HSTS over HTTPS; no-store on everything but static files,
    since pages and API answers carry personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [*_HEADERS, _HSTS] if https else list(_HEADERS)
                cache = b"no-cache" if static else b"no-store"
                extra.append((b"cache-control", cache))
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RequestMetrics:
    """Every HTTP answer into `metrics`: method, the route's template (never the path a
    client sent, which would let anyone add series), status class, and the seconds from
    the request to the last byte of the answer. Outermost, so refusals by the middleware
    below and the 500 of an unhandled error count too.

    With several processes (`pool_each_request`), each one also records its database
    pool's state after every request, so the scrape, answered by any one process, sums
    the pools of all; with one process the scrape reads the pool itself."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, pool_each_request: bool) -> None:
        self.app = app
        self.metrics = metrics
        self.pool_each_request = pool_each_request
        self.templates: RouteTemplates | None = None  # read from the app at its first refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets when the app raised before answering

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.request(scope["method"], self._route(scope), status, seconds)
            if self.pool_each_request:
                engine: Engine | None = getattr(scope["app"].state, "engine", None)
                if engine is not None:
                    self.metrics.pool(engine.pool)

    def _route(self, scope: Scope) -> str:
        """The template of the route that answered (`/api/v1/drafts/{draft_id}`); for an
        answer given before routing (a refusal above), the route the path would reach;
        `/static` for a static file; else one label for every path no route knows."""
        route = scope.get("route")
        if route is not None:
            return str(getattr(route, "path_format", None) or route.path)
        path: str = scope["path"]
        if path.startswith("/static/"):
            return "/static"
        if self.templates is None:
            self.templates = RouteTemplates(scope["app"].router.routes)
        return self.templates.find(path) or UNMATCHED


class RouteTemplates:
    """Each endpoint's path pattern and template, read once from the app's routes (through
    included routers), to name the route of a request refused before routing."""

    def __init__(self, routes: Iterable[Any]) -> None:
        self.leaves = list(_leaves(routes, ""))

    def find(self, path: str) -> str | None:
        for prefix, regex, template in self.leaves:
            if path.startswith(prefix) and regex.match(path[len(prefix) :]):
                return prefix + template
        return None


def _leaves(routes: Iterable[Any], prefix: str) -> Iterator[tuple[str, re.Pattern[str], str]]:
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _leaves(inner.routes, prefix + str(getattr(context, "prefix", "") or ""))
        elif not isinstance(route, Mount) and hasattr(route, "path_regex"):
            yield prefix, route.path_regex, str(route.path_format)


def bearer_token(scope: Scope) -> str | None:
    """The request's bearer token, if it sends one."""
    return _credentials(scope)[0]


class BodyLimit:
    """413 before the body is read: uploads to the ingest endpoint up to
    FAIRDRAFT_MAX_UPLOAD_BYTES, every other body up to FAIRDRAFT_MAX_BODY_BYTES."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.upload_limit = settings.max_upload_bytes + _MULTIPART_OVERHEAD
        self.body_limit = settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] == UPLOAD_PATH else self.body_limit
        declared = content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, _too_large(limit))
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised into whatever reads the body; FastAPI passes HTTPException on.
                    raise HTTPException(413, _too_large(limit).reason)
            return message

        await self.app(scope, counting_receive, send)


class Authenticate:
    """Resolve the caller before the body: see the module's docstring."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.authenticator = Authenticator(settings)
        self.throttle = FailureThrottle(
            limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path == METRICS_PATH or path.startswith((*_ANONYMOUS_PREFIXES, SCIM_PREFIX)):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["throttle"] = self.throttle
        state["authenticator"] = self.authenticator
        try:
            refusal = await self._authenticate(scope, state)
        except DATABASE_UNAVAILABLE as exc:
            refusal = await database_unavailable(Request(scope), exc)
        try:
            if refusal is not None:
                await refusal(scope, receive, send)
                return
            await self.app(scope, receive, send)
        finally:
            await _release_held(state)

    async def _authenticate(self, scope: Scope, state: dict[str, object]) -> Response | None:
        api = scope["path"].startswith("/api/")
        bearer, session = _credentials(scope)
        if api:
            session = None  # the API takes bearer tokens only: a cookie is no CSRF vector
        if bearer is None and session is None:
            return await self._anonymous(scope, api)
        principal = await run_in_threadpool(self._resolve, scope, bearer, session)
        if principal is not None:
            state["principal"] = principal
            if bearer is None:
                state["session_secret"] = session  # what sign-out ends
            return await self._refuse_large_body(scope, principal)
        if bearer is not None:
            return await self._failed(scope, api)
        return await self._anonymous(scope, api)

    async def _failed(self, scope: Scope, api: bool) -> Response | None:
        """A bad bearer token: counted and logged with the address; past the limit the
        answer is 429, so a script learns to slow down. A good token from the same address
        is still let in: everyone behind one NAT or proxy must not be locked out by one
        guesser (guessing a 256-bit token is hopeless anyway)."""
        if wait := note_failure(scope, self.throttle, "unknown, revoked or expired bearer token"):
            return await _error(scope, throttled(wait))
        if api:
            return await _error(scope, _unauthorised())
        return await self._anonymous(scope, api)

    @staticmethod
    async def _refuse_large_body(scope: Scope, principal: Principal) -> Response | None:
        """The upload endpoint takes bodies up to FAIRDRAFT_MAX_UPLOAD_BYTES, and only from
        HR: anyone else is refused here, before the body is read, not after FastAPI has
        parsed the form for the route's role check."""
        if scope["path"] == UPLOAD_PATH and not principal.hr_admin:
            return await _error(scope, ApiError(403, "uploads need the HR admin role"))
        return None

    def _resolve(self, scope: Scope, bearer: str | None, session: str | None) -> Principal | None:
        """The caller, in one query. A GET or HEAD that finds one keeps the connection for
        its route (`HELD_CONNECTION`, taken by service.http.deps.get_connection): a read
        then checks out (and pings) one pooled connection, not two. A request with a body
        does not, so no connection waits on a slow upload."""
        engine: Engine = scope["app"].state.engine
        connection = engine.connect()
        try:
            with connection.begin():
                principal = self._lookup(connection, bearer, session)
        except BaseException:
            connection.close()
            raise
        if principal is not None and scope["method"] in ("GET", "HEAD"):
            scope["state"][HELD_CONNECTION] = connection
        else:
            connection.close()
        return principal

    def _lookup(
        self, connection: Connection, bearer: str | None, session: str | None
    ) -> Principal | None:
        if bearer is not None:
            return self.authenticator.bearer(connection, bearer)
        assert session is not None
        return self.authenticator.session(connection, session)

    async def _anonymous(self, scope: Scope, api: bool) -> Response | None:
        """No valid credential: the API refuses; a page form post goes to sign-in unread;
        anything else goes on, and a page that needs a person sends the browser to sign-in
        itself."""
        if api:
            return await _error(scope, _unauthorised())
        if scope["method"] == "POST" and scope["path"] not in _OPEN_POSTS:
            return RedirectResponse(sign_in_url(scope["path"]), status_code=303)
        return None


async def _release_held(state: dict[str, object]) -> None:
    """Back to the pool with the connection authentication held, when no route took it (a
    refusal, a page that reads nothing, a 404)."""
    held = state.pop(HELD_CONNECTION, None)
    if isinstance(held, Connection):
        await run_in_threadpool(held.close)


def note_failure(scope: Scope, throttle: FailureThrottle, reason: str) -> int:
    """Count and log a failed authentication; the seconds the address must wait when it
    was already past the limit (then the answer is 429), else 0."""
    address = client_address(scope)
    wait = throttle.retry_after(address)
    throttle.failed(address)
    _log_failure(scope, reason)
    return wait


def _log_failure(scope: Scope, reason: str) -> None:
    log.warning(
        "authentication failed",
        extra={
            "event": "auth_failed",
            "client": client_address(scope),
            "method": scope["method"],
            "path": scope["path"],
            "reason": reason,
            "request_id": scope.get("state", {}).get("request_id"),
        },
    )


def _credentials(scope: Scope) -> tuple[str | None, str | None]:
    bearer = session = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            text = value.decode("latin-1")
            if text[:7].lower() == "bearer " and text[7:].strip():
                bearer = text[7:].strip()
        elif name == b"cookie":
            session = _cookie(value.decode("latin-1"), SESSION_COOKIE) or session
    return bearer, session


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def content_length(scope: Scope) -> int | None:
    """The declared Content-Length, or None (absent, or not a number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"the body is over the {limit} byte limit", field="body")


def _unauthorised() -> ApiError:
    return ApiError(401, "a valid bearer token is required", field="Authorization")


def throttled(wait: int) -> ApiError:
    return ApiError(
        429,
        f"too many failed authentications from this address; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def _error(scope: Scope, error: ApiError) -> Response:
    return await error_response(Request(scope), error)


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    response = await _error(scope, error)
    await response(scope, receive, send)
