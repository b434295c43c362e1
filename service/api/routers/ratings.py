"""Ratings: managers propose for their reports; HR reads and finalises any. Calibration
panels calibrate and finalise through their cohort (routers/calibration.py)."""

from fastapi import APIRouter

from domain.errors import NotFound, Refused
from service.access.people import person_in_scope
from service.access.scope import may_see_rating
from service.api.schemas import RatingIn, RatingOut
from service.cycles.release import rating_withheld
from service.http.deps import ConnectionDep, HrDep, Id, PrincipalDep
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period
from service.ratings.workflow import (
    RatingView,
    cycle_ratings,
    finalise_rating,
    propose_rating,
)

router = APIRouter(prefix="/api/v1/cycles", tags=["ratings"], responses=ERROR_RESPONSES)


def rating_out(view: RatingView) -> RatingOut:
    return RatingOut(
        cycle=view.cycle,
        person_id=view.person_id,
        rater_id=view.rater_id,
        rating=view.rating,
        calibrated_rating=view.calibrated_rating,
        finalised=view.finalised_at is not None,
        updated_at=view.updated_at,
    )


@router.get("/{cycle}/ratings", summary="The cycle's ratings the caller may see")
def list_ratings(cycle: str, principal: PrincipalDep, connection: ConnectionDep) -> list[RatingOut]:
    name = required_period(cycle, field="cycle").name
    people = None if principal.hr_admin else {principal.person_id, *principal.reports}
    views = cycle_ratings(connection, name, people)
    withheld = rating_withheld(connection, name, principal.person_id)
    return [
        rating_out(v)
        for v in views
        if may_see_rating(principal, v.person_id, final=v.final, withheld=withheld)
    ]


@router.put(
    "/{cycle}/ratings/{person_id}",
    summary="Propose (or change) your rating of a report",
    responses=CONFLICT,
)
def propose(
    cycle: str, person_id: Id, body: RatingIn, principal: PrincipalDep, connection: ConnectionDep
) -> RatingOut:
    person_in_scope(connection, principal, person_id)
    if not principal.manages(person_id):
        raise Refused("only a manager of this person may propose their rating")
    view = propose_rating(
        connection,
        required_period(cycle, field="cycle").name,
        person_id,
        principal.person_id,
        body.rating,
        actor=principal.actor,
    )
    return rating_out(view)


@router.post(
    "/{cycle}/ratings/{person_id}/finalise",
    summary="Finalise a person's rating (HR)",
    responses=CONFLICT,
)
def finalise(
    cycle: str, person_id: Id, principal: HrDep, connection: ConnectionDep
) -> list[RatingOut]:
    name = required_period(cycle, field="cycle").name
    if not cycle_ratings(connection, name, [person_id]):
        raise NotFound("rating not found")
    finalise_rating(connection, name, person_id, by=principal.actor)
    return [rating_out(v) for v in cycle_ratings(connection, name, [person_id])]
