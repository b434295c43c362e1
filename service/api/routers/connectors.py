"""Connectors for HR: what is configured and how its runs went, asking for a run, the
identities sources name (matched by hand here), and purging a source's records. And each
person's own choice of sources they keep out (/me/sources). docs/connectors.md."""

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from service.api.accepted import accepted
from service.api.schemas import JobOut
from service.connectors.identities import IdentityLine, Match, list_identities, match
from service.connectors.overview import (
    SYNC_JOB,
    ConnectorLine,
    known_source,
    overview,
    resume_connector,
    sync_payload,
)
from service.connectors.privacy import (
    SourceChoice,
    opt_in,
    opt_out,
    opted_out_sources,
    purge_source,
)
from service.connectors.registry import CONNECTORS
from service.connectors.runs import RunLine, recent_runs
from service.http.deps import ConnectionDep, HrDep, PageDep, PrincipalDep, SettingsDep
from service.http.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["connectors"], responses=ERROR_RESPONSES)


class SyncIn(BaseModel):
    full: bool = Field(default=False, description="Fetch everything, not only what changed.")


class MatchIn(BaseModel):
    employee_id: str | None = Field(
        max_length=64, description="The employee this identity is; null unmatches it."
    )


class MatchOut(BaseModel):
    system: str
    external_id: str
    employee_id: str | None


class PurgeOut(BaseModel):
    source: str
    deleted: int


class SourceIn(BaseModel):
    opted_out: bool


class ResumeOut(BaseModel):
    connector: str
    resumed: bool = Field(description="False when it was not stopped.")


@router.get("/connectors", summary="Each connector, whether it is configured, its last run (HR)")
def connectors(
    principal: HrDep, connection: ConnectionDep, settings: SettingsDep
) -> list[ConnectorLine]:
    return overview(connection, settings)


@router.get("/connectors/runs", summary="The latest connector runs, newest first (HR)")
def runs(
    principal: HrDep,
    connection: ConnectionDep,
    connector: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> list[RunLine]:
    return recent_runs(connection, connector=connector, limit=limit)


@router.post(
    "/connectors/{name}/sync", status_code=202, summary="Run a connector now, in the background"
)
def sync_now(
    name: str,
    body: SyncIn,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    payload = sync_payload(name, settings, full=body.full)
    return accepted(connection, response, principal, SYNC_JOB, payload, max_attempts=1)


@router.post(
    "/connectors/{name}/resume",
    summary="Let a connector stopped by a purge run again, from nothing (HR)",
)
def resume_now(name: str, principal: HrDep, connection: ConnectionDep) -> ResumeOut:
    resumed = resume_connector(connection, name, actor=principal.actor)
    return ResumeOut(connector=name, resumed=resumed)


@router.get(
    "/connectors/identities",
    summary="People as the sources name them, unmatched first (HR)",
)
def identities(
    principal: HrDep,
    connection: ConnectionDep,
    page: PageDep,
    unmatched: bool = False,
) -> list[IdentityLine]:
    return list_identities(
        connection, unmatched_only=unmatched, limit=page.limit, offset=page.offset
    )


@router.put(
    "/connectors/identities/{system}/{external_id:path}",
    summary="Match an identity to an employee by hand, or unmatch it (HR)",
)
def match_identity(
    system: str, external_id: str, body: MatchIn, principal: HrDep, connection: ConnectionDep
) -> MatchOut:
    match(
        connection,
        [Match(system, external_id, body.employee_id or None)],
        actor=principal.actor,
        by="hand",
    )
    return MatchOut(system=system, external_id=external_id, employee_id=body.employee_id or None)


@router.delete(
    "/connectors/sources/{source}/records",
    summary="Delete every record a source brought, and forget its cursor (HR)",
)
def purge(source: str, principal: HrDep, connection: ConnectionDep) -> PurgeOut:
    deleted = purge_source(connection, known_source(source), actor=principal.actor)
    return PurgeOut(source=source, deleted=deleted)


@router.get("/me/sources", summary="The sources the caller keeps out of their evidence")
def my_sources(principal: PrincipalDep, connection: ConnectionDep) -> list[SourceChoice]:
    out = opted_out_sources(connection, principal.person_id)
    return [SourceChoice(source=name, opted_out=name in out) for name in sorted(CONNECTORS)]


@router.put(
    "/me/sources/{source}",
    summary="Keep a source out of the caller's evidence (its records are deleted), or let "
    "it in again",
)
def set_my_source(
    source: str, body: SourceIn, principal: PrincipalDep, connection: ConnectionDep
) -> SourceChoice:
    name = known_source(source)
    if body.opted_out:
        opt_out(connection, principal.person_id, name, actor=principal.actor)
    else:
        opt_in(connection, principal.person_id, name, actor=principal.actor)
    return SourceChoice(source=name, opted_out=body.opted_out)
