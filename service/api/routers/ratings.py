"""Ratings: managers propose for their reports; HR reads and finalises any. Calibration
panels calibrate and finalise through their cohort (routers/calibration.py)."""

from fastapi import APIRouter

from service.access.people import person_in_scope
from service.access.principal import Principal
from service.api.schemas import RatingIn, RatingOut
from service.bias.gate import GateRefused, finalise_rating
from service.calibration.ratings import (
    RatingFinal,
    RatingRefused,
    RatingView,
    UnknownCycle,
    cycle_ratings,
    propose_rating,
)
from service.http.deps import ConnectionDep, HrDep, Id, PrincipalDep
from service.http.errors import CONFLICT, ERROR_RESPONSES, ApiError, forbidden, not_found
from service.http.params import cycle_name

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


def _visible(principal: Principal, view: RatingView) -> bool:
    """HR sees every rating, a manager their reports'; a person sees their own only once
    it is final (a proposal under calibration is not yet their rating)."""
    if principal.hr_admin or principal.manages(view.person_id):
        return True
    return view.person_id == principal.person_id and view.finalised_at is not None


@router.get("/{cycle}/ratings", summary="The cycle's ratings the caller may see")
def list_ratings(cycle: str, principal: PrincipalDep, connection: ConnectionDep) -> list[RatingOut]:
    people = None if principal.hr_admin else {principal.person_id, *principal.reports}
    views = cycle_ratings(connection, cycle_name(cycle), people)
    return [rating_out(v) for v in views if _visible(principal, v)]


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
        raise forbidden("only a manager of this person may propose their rating")
    try:
        view = propose_rating(
            connection,
            cycle_name(cycle),
            person_id,
            principal.person_id,
            body.rating,
            actor=principal.actor,
        )
    except UnknownCycle as exc:  # cycles are HR's to set up: a proposal never creates one
        raise ApiError(404, str(exc), field="cycle") from None
    except RatingFinal as exc:
        raise ApiError(409, str(exc), field="rating") from None
    except RatingRefused as exc:
        raise ApiError(422, str(exc), field="rating") from None
    return rating_out(view)


@router.post(
    "/{cycle}/ratings/{person_id}/finalise",
    summary="Finalise a person's rating (HR)",
    responses=CONFLICT,
)
def finalise(
    cycle: str, person_id: Id, principal: HrDep, connection: ConnectionDep
) -> list[RatingOut]:
    cycle = cycle_name(cycle)
    if not cycle_ratings(connection, cycle, [person_id]):
        raise not_found("rating")
    try:
        finalise_rating(connection, cycle, person_id, by=principal.actor)
    except GateRefused as exc:
        raise ApiError(409, str(exc)) from None
    return [rating_out(v) for v in cycle_ratings(connection, cycle, [person_id])]
