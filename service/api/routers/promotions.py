"""Promotion nominations in a review cycle: a manager nominates a report (with an optional
reason) or withdraws the nomination; HR reads every nomination of the cycle, a manager
their scope's.

Scope: nominating and withdrawing are for a manager of the person (HR and the person
themselves see them and get 403; anyone else 404, as for a person who does not exist); the
list is HR's and managers' (403 for anyone else). The reason is never shown to the subject.
"""

from typing import Annotated

from fastapi import APIRouter, Body

from service.cycles.promotions import (
    PromotionIn,
    PromotionLine,
    WithdrawnOut,
    nominate,
    promotions,
    require_manager_of,
    require_reader,
    withdraw,
)
from service.http.deps import ConnectionDep, Id, PrincipalDep
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1", tags=["promotions"], responses=ERROR_RESPONSES)


@router.get(
    "/cycles/{cycle}/promotions",
    summary="The cycle's promotion nominations (HR: all; a manager: their scope's)",
)
def get_promotions(
    cycle: str, principal: PrincipalDep, connection: ConnectionDep
) -> list[PromotionLine]:
    require_reader(principal)
    name = required_period(cycle, field="cycle").name
    subjects = None if principal.hr_admin else principal.reports
    return promotions(connection, name, subjects=subjects)


@router.post(
    "/cycles/{cycle}/promotions/{person_id}",
    summary="Nominate a report for promotion (a manager of the person); again: a new reason",
    responses=CONFLICT,
)
def post_promotion(
    cycle: str,
    person_id: Id,
    principal: PrincipalDep,
    connection: ConnectionDep,
    body: Annotated[PromotionIn | None, Body()] = None,
) -> PromotionLine:
    require_manager_of(connection, principal, person_id)
    name = required_period(cycle, field="cycle").name
    return nominate(
        connection, name, person_id, None if body is None else body.reason, actor=principal.actor
    )


@router.delete(
    "/cycles/{cycle}/promotions/{person_id}",
    summary="Withdraw a nomination while its packet is not approved (a manager of the person)",
    responses=CONFLICT,
)
def delete_promotion(
    cycle: str, person_id: Id, principal: PrincipalDep, connection: ConnectionDep
) -> WithdrawnOut:
    require_manager_of(connection, principal, person_id)
    name = required_period(cycle, field="cycle").name
    return withdraw(connection, name, person_id, actor=principal.actor)
