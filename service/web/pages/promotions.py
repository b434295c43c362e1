"""The team page's promotion forms: a manager nominates a report for promotion (with an
optional reason) in the period's cycle, or withdraws the nomination.

The scope is the API's (service/api/routers/promotions.py): a manager of the person;
HR and the person themselves get 403 (told on the team page), anyone else 404. A refusal
(a reason too long, a packet already approved) is told on the team page, in its period.
"""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form
from fastapi.responses import Response

from service.cycles.promotions import nominate, require_manager_of, withdraw
from service.db.models import MAX_PROMOTION_REASON  # the service says why past it
from service.http.deps import ConnectionDep, Id
from service.http.params import required_period
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin

router = APIRouter(include_in_schema=False)
TEAM = "/team?period={cycle}"


def _team(cycle: str, person_id: int) -> str:
    """The team page of the cycle, at the person's row."""
    return f"/team?period={quote(cycle, safe='')}#person-{person_id}"


@router.post(
    "/team/{person_id}/cycles/{cycle}/promotion",
    dependencies=[SameOrigin, back_to(TEAM)],
)
def nominate_report(
    person_id: Id,
    cycle: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    reason: Annotated[str, Form(max_length=4 * MAX_PROMOTION_REASON)] = "",
) -> Response:
    require_manager_of(connection, principal, person_id)
    name = required_period(cycle, field="cycle").name
    line = nominate(connection, name, person_id, reason or None, actor=principal.actor)
    return redirect_with(
        _team(name, person_id),
        notice=f"Nominated {line.subject_name} for promotion in {name}: the packet is to write.",
    )


@router.post(
    "/team/{person_id}/cycles/{cycle}/promotion/withdraw",
    dependencies=[SameOrigin, back_to(TEAM)],
)
def withdraw_report(
    person_id: Id, cycle: str, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    require_manager_of(connection, principal, person_id)
    name = required_period(cycle, field="cycle").name
    done = withdraw(connection, name, person_id, actor=principal.actor)
    told = "Nomination withdrawn." if done.withdrawn else "There was no nomination to withdraw."
    return redirect_with(_team(name, person_id), notice=told)
