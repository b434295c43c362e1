"""Release and sign-off pages (issue 16): the employee's released review with its
acknowledgement form, the same review for their manager and HR with the comment it drew,
and HR's forms that close a phase and release a cycle (their buttons live on the cycle's
dashboard, where both redirect back with a message)."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from domain.errors import NotFound
from domain.phases import PHASES, Phase
from service.cycles.export import cycle_export, export_csv
from service.cycles.release import close_phase, release_cycle
from service.cycles.signoff import COMMENT_LIMIT, acknowledge, review_of
from service.http.deps import ConnectionDep, Id
from service.http.downloads import csv_download
from service.http.params import required_period
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin, require_hr
from service.web.templating import render

router = APIRouter(include_in_schema=False)
DASHBOARD = "/hr/cycles/{cycle}/dashboard"
RELEASE_IS_HRS = "closing a phase and releasing a cycle are HR's"
EVERYONE = ("", "all")  # the release form's values for the whole cycle


@router.get("/me/reviews/{cycle}")
def my_review_page(
    cycle: str, request: Request, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    name = required_period(cycle, field="cycle").name
    review = review_of(connection, principal, name, principal.person_id, via_me=True)
    return render(request, "review.html.j2", review=review, mine=True, limit=COMMENT_LIMIT)


@router.post(
    "/me/reviews/{cycle}/acknowledge",
    dependencies=[SameOrigin, back_to("/me/reviews/{cycle}")],
)
def acknowledge_form(
    cycle: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    comment: Annotated[str, Form()] = "",
) -> Response:
    """The comment's limits are the service's (told on the review's page)."""
    name = required_period(cycle, field="cycle").name
    first = review_of(connection, principal, name, principal.person_id, via_me=True)
    acknowledge(connection, principal, name, comment)
    notice = "Comment saved." if first.acknowledgement else "Acknowledged. Thank you."
    return redirect_with(f"/me/reviews/{name}", notice=notice)


@router.get("/people/{person_id}/reviews/{cycle}")
def person_review_page(
    person_id: Id,
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
) -> Response:
    """A report's review for their manager, anyone's for HR (the employee's own too)."""
    name = required_period(cycle, field="cycle").name
    review = review_of(connection, principal, name, person_id)
    mine = person_id == principal.person_id
    return render(request, "review.html.j2", review=review, mine=mine, limit=COMMENT_LIMIT)


@router.post(
    "/hr/cycles/{cycle}/phases/{phase}/close", dependencies=[SameOrigin, back_to(DASHBOARD)]
)
def close_form(
    cycle: str, phase: str, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    require_hr(principal, RELEASE_IS_HRS)
    name = required_period(cycle, field="cycle").name
    if phase not in PHASES:
        raise NotFound(f"no phase {phase[:32]!r}; one of {', '.join(PHASES)}", field="phase")
    closed = close_phase(connection, name, Phase(phase), actor=principal.actor)
    title = closed.phase.value.replace("_", " ").capitalize()
    return redirect_with(f"/hr/cycles/{name}/dashboard", notice=f"{title} of {name} closed.")


@router.post("/hr/cycles/{cycle}/release", dependencies=[SameOrigin, back_to(DASHBOARD)])
def release_form(
    cycle: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    department: Annotated[str, Form()] = "",
) -> Response:
    """An empty department, or the dashboard's "all", releases the whole cycle (a
    department named "all" is released alone through the API or the CLI)."""
    require_hr(principal, RELEASE_IS_HRS)
    name = required_period(cycle, field="cycle").name
    chosen = None if department.strip() in EVERYONE else department
    released = release_cycle(connection, name, chosen, actor=principal.actor)
    whom = "everyone" if released.department is None else released.department
    return redirect_with(f"/hr/cycles/{name}/dashboard", notice=f"{name} released to {whom}.")


@router.get("/hr/cycles/{cycle}/export.csv")
def export_csv_page(cycle: str, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    """The cycle's decisions for pay and promotion, for HR signed in to the pages (the API's
    export, the same file)."""
    require_hr(principal, RELEASE_IS_HRS)
    name = required_period(cycle, field="cycle").name
    return csv_download(export_csv(cycle_export(connection, name)), f"decisions-{name}.csv")
