"""Connector pages (issue 17; docs/connectors.md): HR's view of each connector, its runs
and the identities its sources name, where unmatched ones are matched by hand, a run is
asked for and a source purged; and each person's choice of sources kept out of their
evidence (/me/sources)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from domain.errors import Invalid
from service.connectors.identities import Match, list_identities, match
from service.connectors.overview import (
    SYNC_JOB,
    known_source,
    overview,
    resume_connector,
    sync_payload,
)
from service.connectors.privacy import opt_in, opt_out, opted_out_sources, purge_source
from service.connectors.registry import CONNECTORS
from service.connectors.runs import recent_runs
from service.http.deps import ConnectionDep, SettingsDep
from service.jobs.queue import enqueue
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin, require_hr
from service.web.templating import render

router = APIRouter(include_in_schema=False)
HR_PAGE = "/hr/connectors"
CONNECTORS_ARE_HRS = "connectors are HR's"
IDENTITIES_SHOWN = 100
RUNS_SHOWN = 20


@router.get(HR_PAGE)
def connectors_page(
    request: Request, principal: PagePrincipal, connection: ConnectionDep, settings: SettingsDep
) -> Response:
    require_hr(principal, CONNECTORS_ARE_HRS)
    return render(
        request,
        "hr_connectors.html.j2",
        connectors=overview(connection, settings),
        runs=recent_runs(connection, connector=None, limit=RUNS_SHOWN),
        identities=list_identities(connection, unmatched_only=True, limit=IDENTITIES_SHOWN),
    )


@router.post("/hr/connectors/{name}/sync", dependencies=[SameOrigin, back_to(HR_PAGE)])
def sync_form(
    name: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    full: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require_hr(principal, CONNECTORS_ARE_HRS)
    payload = sync_payload(name, settings, full=full == "true")
    job_id = enqueue(
        connection,
        SYNC_JOB,
        payload,
        requested_by=principal.person_id,
        max_attempts=1,
        actor=principal.actor,
    )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post(
    "/hr/connectors/identities/{system}/{external_id:path}",
    dependencies=[SameOrigin, back_to(HR_PAGE)],
)
def match_form(
    system: str,
    external_id: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    employee_id: Annotated[str, Form(max_length=64)],
) -> Response:
    require_hr(principal, CONNECTORS_ARE_HRS)
    employee_id = employee_id.strip()
    if not employee_id:
        raise Invalid("give the employee id this identity is", field="employee_id")
    match(connection, [Match(system, external_id, employee_id)], actor=principal.actor, by="hand")
    notice = f"{system} {external_id} is now {employee_id}; its next run fetches everything."
    return redirect_with(HR_PAGE, notice=notice)


@router.post("/hr/connectors/{name}/resume", dependencies=[SameOrigin, back_to(HR_PAGE)])
def resume_form(name: str, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    require_hr(principal, CONNECTORS_ARE_HRS)
    resume_connector(connection, name, actor=principal.actor)
    return redirect_with(HR_PAGE, notice=f"{name} may sync again; its next run reads everything.")


@router.post("/hr/connectors/sources/{source}/purge", dependencies=[SameOrigin, back_to(HR_PAGE)])
def purge_form(
    source: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    require_hr(principal, CONNECTORS_ARE_HRS)
    name = known_source(source)
    if confirm != "yes":
        raise Invalid(f"tick the box to confirm deleting every {name} record", field="confirm")
    deleted = purge_source(connection, name, actor=principal.actor)
    notice = f"{deleted} {name} records deleted; {name} is stopped until you resume it."
    return redirect_with(HR_PAGE, notice=notice)


@router.get("/me/sources")
def my_sources_page(
    request: Request, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    out = opted_out_sources(connection, principal.person_id)
    sources = [(name, name in out) for name in sorted(CONNECTORS)]
    return render(request, "my_sources.html.j2", sources=sources)


@router.post("/me/sources/{source}", dependencies=[SameOrigin, back_to("/me/sources")])
def my_source_form(
    source: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    opted_out: Annotated[str, Form(max_length=8)],
    confirm: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    name = known_source(source)
    if opted_out not in ("true", "false"):
        raise Invalid("opted_out must be true or false", field="opted_out")
    if opted_out == "true":
        if confirm != "yes":
            raise Invalid(
                f"tick the box to confirm that your {name} records are deleted", field="confirm"
            )
        deleted = opt_out(connection, principal.person_id, name, actor=principal.actor)
        notice = f"{name} is kept out of your evidence; {deleted} records deleted."
    else:
        opt_in(connection, principal.person_id, name, actor=principal.actor)
        notice = f"{name} may bring your evidence again from its next full run."
    return redirect_with("/me/sources", notice=notice)
