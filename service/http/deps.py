"""FastAPI dependencies: settings, the database connection, and the current person.

A request gets one connection in one transaction (committed when the endpoint returns,
rolled back when it raises), so a refused or failed request leaves nothing half-written.
"""

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine, Row, Select, func, select

from domain.errors import Refused
from retrieval.embedding import Embedder
from retrieval.pack_cache import PackCache
from service.access.principal import Principal
from service.bias.nlp import SenseParser
from service.http.errors import ApiError
from service.settings import Settings
from service.store import EmbedderSource, ParserSource

_bearer = HTTPBearer(auto_error=False, description="A fairdraft API token or an OIDC JWT.")


async def get_settings(request: Request) -> Settings:
    """async: trivial dependencies stay on the event loop instead of a thread hop each."""
    settings: Settings = request.app.state.settings
    return settings


async def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


# Where the authentication middleware leaves the connection it read the caller with, for
# the route of a GET or HEAD to go on with: one pool checkout (and its ping) per request.
HELD_CONNECTION = "held_connection"


def get_connection(
    request: Request, engine: Annotated[Engine, Depends(get_engine)]
) -> Iterator[Connection]:
    """The request's connection in a transaction of its own; the one authentication held
    (service.http.middleware) when there is one, given back to the pool once the endpoint
    is done."""
    held: Connection | None = request.scope.get("state", {}).pop(HELD_CONNECTION, None)
    if held is not None:
        with held, held.begin():
            yield held
        return
    with engine.begin() as connection:
        yield connection


def get_embedder(request: Request) -> Embedder:
    """The query embedder: the app's one EmbedderSource (created with the app) loads it on
    first use and shares it with every request after it and the in-process worker."""
    source: EmbedderSource = request.app.state.embedder
    return source()


def get_sense_parser(request: Request) -> SenseParser:
    """The bias check's sense parser: the app's one ParserSource loads it on first use."""
    source: ParserSource = request.app.state.parser
    return source()


async def get_pack_cache(request: Request) -> PackCache:
    """One evidence-pack cache per process, created with the app."""
    cache: PackCache = request.app.state.pack_cache
    return cache


SettingsDep = Annotated[Settings, Depends(get_settings)]
ParserDep = Annotated[SenseParser, Depends(get_sense_parser)]
# scope="function": the transaction commits when the endpoint returns, before the response
# is sent, so a client that reads right after a write (a browser following a redirect)
# sees it. FastAPI's default closes yield-dependencies only after the response.
ConnectionDep = Annotated[Connection, Depends(get_connection, scope="function")]


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller the authentication middleware resolved before the body was read (the
    `credentials` parameter only documents the scheme in the OpenAPI description)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise ApiError(401, "a valid bearer token is required", field="Authorization")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_hr(principal: PrincipalDep) -> Principal:
    if not principal.hr_admin:
        raise Refused("this needs the HR admin role")
    return principal


HrDep = Annotated[Principal, Depends(require_hr)]


class PageParams:
    """limit/offset with the configured page-size ceiling; an over-size page is refused
    with a message rather than silently cut, so a client never mistakes it for the end."""

    def __init__(
        self,
        settings: SettingsDep,
        limit: Annotated[int, Query(ge=1, le=10000, description="Items per page.")] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> None:
        if limit > settings.max_page_size:
            raise ApiError(422, f"at most {settings.max_page_size} per page", field="limit")
        self.limit = limit
        self.offset = offset

    def rows(
        self, connection: Connection, statement: Select[Any], *order_by: Any
    ) -> tuple[Sequence[Row[Any]], int]:
        """This page of the statement's rows in `order_by` order, and how many rows there
        are over all pages."""
        total = connection.execute(
            select(func.count()).select_from(statement.subquery())
        ).scalar_one()
        rows = connection.execute(
            statement.order_by(*order_by).limit(self.limit).offset(self.offset)
        ).all()
        return rows, int(total)


PageDep = Annotated[PageParams, Depends()]


# Ids as Postgres stores them: a larger number is not an id of anything, so it is refused
# as invalid input rather than reaching the database.
Id = Annotated[int, Path(ge=1, le=2_147_483_647, description="An id.")]
BigId = Annotated[int, Path(ge=1, le=2**63 - 1, description="An id.")]
