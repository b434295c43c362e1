"""SCIM 2.0 (RFC 7643/7644) for identity providers: /scim/v2/Users, /Groups and the
discovery documents; docs/connectors.md, "SCIM provisioning".

Who may call: only the identity provider, with FAIRDRAFT_SCIM_TOKEN (checked before the
body by service.http.scim_gate.ScimGate; `_through_the_gate` refuses a request that did
not pass it, should the app ever be assembled without it). Every answer is
application/scim+json, every error a SCIM error: the domain errors the provisioning
functions raise, a body too large, an unknown path or method, all mapped once, here, by
`ScimRoute`. Thin: reading the request and shaping the answer; the rules live in
service/provisioning/.
"""

import json
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import ValidationError
from scim2_models import Context, Group, ListResponse, Resource, ResponseParameters
from sqlalchemy import Connection, Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from domain.errors import Conflict, FairdraftError, Invalid, NotFound, Refused
from service.http.deps import get_engine, get_settings
from service.http.errors import DATABASE_UNAVAILABLE, RETRY_AFTER_S
from service.http.scim_gate import SCIM_MEDIA_TYPE, scim_error
from service.provisioning import groups, users
from service.provisioning.errors import ScimInvalid, ScimNotFound, from_validation_error
from service.provisioning.filters import GROUP_ATTRIBUTES, USER_ATTRIBUTES, parse_filter
from service.provisioning.resources import (
    POLICY,
    User,
    dump,
    resource_types,
    schemas,
    service_provider_config,
)
from service.settings import Settings

PREFIX = "/scim/v2"
_STATUS: tuple[tuple[type[FairdraftError], int, str | None], ...] = (
    (Invalid, 400, "invalidValue"),
    (NotFound, 404, None),
    (Refused, 403, None),
    (Conflict, 409, None),
)


class ScimRoute(APIRoute):
    """Every SCIM route answers its errors as SCIM errors: the one mapping."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except FairdraftError as exc:
                return _domain_error(exc)
            except StarletteHTTPException as exc:
                return scim_error(exc.status_code, str(exc.detail))
            except DATABASE_UNAVAILABLE:
                return scim_error(
                    503,
                    "the database is unreachable; try again",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ()))
                return scim_error(400, f"{where}: {first.get('msg', 'invalid')}", "invalidValue")

        return answer


def _domain_error(exc: FairdraftError) -> Response:
    for cls, status, default in _STATUS:
        if isinstance(exc, cls):
            return scim_error(status, exc.reason, getattr(exc, "scim_type", default))
    return scim_error(503, exc.reason)


def _through_the_gate(request: Request) -> None:
    if not getattr(request.state, "scim", False):
        raise StarletteHTTPException(401, "the SCIM bearer token is required")


router = APIRouter(
    prefix=PREFIX,
    route_class=ScimRoute,
    include_in_schema=False,
    dependencies=[Depends(_through_the_gate)],
)
SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    """Each endpoint's own transaction, so that an error rolls it back before `ScimRoute`
    turns the error into an answer (a yield dependency would see no error and commit)."""
    with engine.begin() as connection:
        yield connection


async def _body(request: Request) -> object:
    """The body as JSON; not JSON (or not UTF-8, or nested deeper than any SCIM body) is
    400 invalidSyntax."""
    raw = await request.body()
    try:
        body: object = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        raise ScimInvalid(
            f"the body is not JSON: {exc.__class__.__name__}", scim_type="invalidSyntax"
        ) from None
    if _depth(body) > MAX_DEPTH:
        raise ScimInvalid(f"the body nests deeper than {MAX_DEPTH}", scim_type="invalidSyntax")
    return body


MAX_DEPTH = 16  # a User with its extension and a PATCH value is 5 deep


def _depth(value: object) -> int:
    """How deep `value` nests, without recursion (a hostile body may be 10,000 deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


BodyDep = Annotated[object, Depends(_body)]


class Listing:
    """A list's parameters (query string or a /.search body): filter, startIndex (from
    1), count (up to FAIRDRAFT_MAX_PAGE_SIZE), attributes or excludedAttributes."""

    def __init__(self, values: Mapping[str, Any], max_page: int) -> None:
        self.filter = _text(values.get("filter"), "filter")
        self.start_index = max(1, _number(values.get("startIndex"), "startIndex", 1))
        self.count = min(max(0, _number(values.get("count"), "count", max_page)), max_page)
        self.attributes = values.get("attributes")
        self.excluded = values.get("excludedAttributes")


def _text(value: object, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ScimInvalid(f"{name}: not a string", scim_type="invalidValue", field=name)


def _number(value: object, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit() and len(value) < 10:
        return int(value)
    raise ScimInvalid(
        f"{name}: {value!r} is not a whole number", scim_type="invalidValue", field=name
    )


def _parameters(listing: Listing, model: type[Resource[Any]]) -> ResponseParameters[Any]:
    try:
        with POLICY:
            return ResponseParameters[model].model_validate(  # type: ignore[valid-type]
                {"attributes": listing.attributes, "excluded_attributes": listing.excluded}
            )
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def _scim(body: Mapping[str, Any], status: int = 200, location: str | None = None) -> Response:
    headers = {"Location": location} if location else None
    return Response(
        json.dumps(body), status_code=status, media_type=SCIM_MEDIA_TYPE, headers=headers
    )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def _located(request: Request, resource: Resource[Any], endpoint: str) -> Resource[Any]:
    if resource.meta is not None:
        resource.meta.location = f"{_base(request)}/{endpoint}/{resource.id}"
    return resource


def _one(
    request: Request,
    resource: Resource[Any],
    endpoint: str,
    status: int = 200,
    parameters: ResponseParameters[Any] | None = None,
) -> Response:
    _located(request, resource, endpoint)
    context = (
        Context.RESOURCE_CREATION_RESPONSE if status == 201 else (Context.RESOURCE_QUERY_RESPONSE)
    )
    body = resource.model_dump(scim_ctx=context, response_parameters=parameters)
    location = resource.meta.location if status == 201 and resource.meta else None
    return _scim(body, status, location)


def _list(
    request: Request,
    model: type[Resource[Any]],
    endpoint: str,
    total: int,
    start_index: int,
    resources: list[Any],
    parameters: ResponseParameters[Any],
) -> Response:
    for resource in resources:
        _located(request, resource, endpoint)
    response = ListResponse[model](  # type: ignore[valid-type]
        total_results=total,
        start_index=start_index,
        items_per_page=len(resources),
        resources=resources,
    )
    body = response.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    return _scim(body)


# --- discovery ---------------------------------------------------------------------------


@router.get("/ServiceProviderConfig")
def read_service_provider_config(request: Request, settings: SettingsDep) -> Response:
    config = service_provider_config(settings.max_page_size)
    config.meta = None
    return _scim(dump(config))


@router.get("/ResourceTypes")
def list_resource_types(request: Request) -> Response:
    found = resource_types()
    return _discovery_list(found)


@router.get("/ResourceTypes/{name}")
def read_resource_type(name: str) -> Response:
    for resource_type in resource_types():
        if resource_type.id == name:
            return _scim(dump(resource_type))
    raise ScimNotFound(f"no resource type {name!r}")


@router.get("/Schemas")
def list_schemas() -> Response:
    return _discovery_list(schemas())


@router.get("/Schemas/{urn}")
def read_schema(urn: str) -> Response:
    for schema in schemas():
        if schema.id == urn:
            return _scim(dump(schema))
    raise ScimNotFound(f"no schema {urn!r}")


def _discovery_list(found: list[Any]) -> Response:
    return _scim(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(found),
            "startIndex": 1,
            "itemsPerPage": len(found),
            "Resources": [dump(item) for item in found],
        }
    )


# --- Users ------------------------------------------------------------------------------


def _defaults(settings: Settings) -> users.Defaults:
    return users.Defaults(
        level=settings.scim_default_level,
        job_family=settings.scim_default_job_family,
        department=settings.scim_default_department,
        location=settings.scim_default_location,
    )


def _list_users(request: Request, engine: Engine, listing: Listing) -> Response:
    parameters = _parameters(listing, User)
    terms = parse_filter(listing.filter, USER_ATTRIBUTES)
    with _transaction(engine) as connection:
        page = users.list_users(connection, terms, listing.start_index, listing.count)
    return _list(request, User, "Users", page.total, page.start_index, page.users, parameters)


@router.get("/Users")
def list_users(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    return _list_users(request, engine, Listing(request.query_params, settings.max_page_size))


@router.post("/Users/.search")
def search_users(
    request: Request, engine: EngineDep, settings: SettingsDep, body: BodyDep
) -> Response:
    return _list_users(request, engine, Listing(_object(body), settings.max_page_size))


@router.post("/Users")
def create_user(
    request: Request, engine: EngineDep, settings: SettingsDep, body: BodyDep
) -> Response:
    with _transaction(engine) as connection:
        created = users.create_user(connection, body, _defaults(settings))
    return _one(request, created, "Users", 201)


@router.get("/Users/{user_id}")
def read_user(request: Request, user_id: str, engine: EngineDep, settings: SettingsDep) -> Response:
    parameters = _parameters(Listing(request.query_params, settings.max_page_size), User)
    with _transaction(engine) as connection:
        found = users.get_user(connection, user_id)
    return _one(request, found, "Users", parameters=parameters)


@router.put("/Users/{user_id}")
def replace_user(request: Request, user_id: str, engine: EngineDep, body: BodyDep) -> Response:
    with _transaction(engine) as connection:
        replaced = users.replace_user(connection, user_id, body)
    return _one(request, replaced, "Users")


@router.patch("/Users/{user_id}")
def patch_user(request: Request, user_id: str, engine: EngineDep, body: BodyDep) -> Response:
    with _transaction(engine) as connection:
        patched = users.patch_user(connection, user_id, body)
    return _one(request, patched, "Users")


@router.delete("/Users/{user_id}", status_code=204)
def delete_user(user_id: str, engine: EngineDep) -> Response:
    with _transaction(engine) as connection:
        users.delete_user(connection, user_id)
    return Response(status_code=204)


# --- Groups -----------------------------------------------------------------------------


def _list_groups(request: Request, engine: Engine, listing: Listing) -> Response:
    parameters = _parameters(listing, Group)
    terms = parse_filter(listing.filter, GROUP_ATTRIBUTES)
    with _transaction(engine) as connection:
        page = groups.list_groups(connection, terms, listing.start_index, listing.count)
    return _list(request, Group, "Groups", page.total, page.start_index, page.groups, parameters)


@router.get("/Groups")
def list_groups(request: Request, engine: EngineDep, settings: SettingsDep) -> Response:
    return _list_groups(request, engine, Listing(request.query_params, settings.max_page_size))


@router.post("/Groups/.search")
def search_groups(
    request: Request, engine: EngineDep, settings: SettingsDep, body: BodyDep
) -> Response:
    return _list_groups(request, engine, Listing(_object(body), settings.max_page_size))


@router.post("/Groups")
def create_group(request: Request, engine: EngineDep, body: BodyDep) -> Response:
    with _transaction(engine) as connection:
        created = groups.create_group(connection, body)
    return _one(request, created, "Groups", 201)


@router.get("/Groups/{group_id}")
def read_group(
    request: Request, group_id: str, engine: EngineDep, settings: SettingsDep
) -> Response:
    parameters = _parameters(Listing(request.query_params, settings.max_page_size), Group)
    with _transaction(engine) as connection:
        found = groups.get_group(connection, group_id)
    return _one(request, found, "Groups", parameters=parameters)


@router.put("/Groups/{group_id}")
def replace_group(request: Request, group_id: str, engine: EngineDep, body: BodyDep) -> Response:
    with _transaction(engine) as connection:
        replaced = groups.replace_group(connection, group_id, body)
    return _one(request, replaced, "Groups")


@router.patch("/Groups/{group_id}")
def patch_group(request: Request, group_id: str, engine: EngineDep, body: BodyDep) -> Response:
    with _transaction(engine) as connection:
        patched = groups.patch_group(connection, group_id, body)
    return _one(request, patched, "Groups")


@router.delete("/Groups/{group_id}", status_code=204)
def delete_group(group_id: str, engine: EngineDep) -> Response:
    with _transaction(engine) as connection:
        groups.delete_group(connection, group_id)
    return Response(status_code=204)


def _object(body: object) -> Mapping[str, Any]:
    if not isinstance(body, dict):
        raise ScimInvalid("the body is not a JSON object", scim_type="invalidSyntax")
    return body


@router.post("/.search")
def search_everything() -> Response:
    """Searching every resource type at once: no identity provider asks it (501, as
    RFC 7644 §3.12 has for an operation a server does not support)."""
    return scim_error(501, "search /Users/.search or /Groups/.search instead")


# --- anything else under /scim/v2: 405 for a known path, else 404 ----------------------

_KNOWN = tuple(route.path_regex for route in router.routes if isinstance(route, APIRoute))


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
def elsewhere(request: Request, rest: str) -> Response:
    if any(pattern.match(request.url.path) for pattern in _KNOWN):
        return scim_error(405, f"{request.method} is not allowed here")
    return scim_error(404, f"no SCIM endpoint {PREFIX}/{rest[:100]}")
