"""Release and sign-off (issue 16): HR closes a cycle's phases (calibration only while the
bias report is current) and releases the cycle, whole or by department; an employee reads
their released review and acknowledges it with a comment their manager and HR read; HR
exports the cycle's decisions for pay and promotion as JSON or CSV."""

from fastapi import APIRouter
from fastapi.responses import Response

from domain.phases import Phase
from service.cycles.export import CycleExport, cycle_export, export_csv
from service.cycles.release import PhaseClosed, ReleaseIn, ReleaseLine, close_phase, release_cycle
from service.cycles.signoff import (
    AcknowledgeIn,
    Acknowledgement,
    ReleasedReview,
    acknowledge,
    review_of,
)
from service.http.deps import ConnectionDep, HrDep, Id, PrincipalDep
from service.http.downloads import csv_download
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1", tags=["release"], responses=ERROR_RESPONSES)


@router.post(
    "/cycles/{cycle}/phases/{phase}/close",
    summary="Close a phase of a started cycle; calibration only once the bias report is "
    "current (HR)",
    responses=CONFLICT,
)
def close(cycle: str, phase: Phase, principal: HrDep, connection: ConnectionDep) -> PhaseClosed:
    name = required_period(cycle, field="cycle").name
    return close_phase(connection, name, phase, actor=principal.actor)


@router.post(
    "/cycles/{cycle}/release",
    summary="Release the cycle's reviews to employees, all or one department, after "
    "calibration (HR)",
    responses=CONFLICT,
)
def release(
    cycle: str, body: ReleaseIn, principal: HrDep, connection: ConnectionDep
) -> ReleaseLine:
    name = required_period(cycle, field="cycle").name
    return release_cycle(connection, name, body.department, actor=principal.actor)


@router.get("/me/reviews/{cycle}", summary="My review of a cycle, once released to me")
def my_review(cycle: str, principal: PrincipalDep, connection: ConnectionDep) -> ReleasedReview:
    name = required_period(cycle, field="cycle").name
    return review_of(connection, principal, name, principal.person_id, via_me=True)


@router.post(
    "/me/reviews/{cycle}/acknowledge",
    summary="Acknowledge my released review, with an optional comment (sent again: the "
    "comment changes)",
)
def acknowledge_mine(
    cycle: str, body: AcknowledgeIn, principal: PrincipalDep, connection: ConnectionDep
) -> Acknowledgement:
    name = required_period(cycle, field="cycle").name
    return acknowledge(connection, principal, name, body.comment)


@router.get(
    "/people/{person_id}/reviews/{cycle}",
    summary="A person's review of a cycle with their acknowledgement and comment (their "
    "manager, HR; the person once released)",
)
def person_review(
    person_id: Id, cycle: str, principal: PrincipalDep, connection: ConnectionDep
) -> ReleasedReview:
    name = required_period(cycle, field="cycle").name
    return review_of(connection, principal, name, person_id)


@router.get(
    "/cycles/{cycle}/export.json",
    summary="The cycle's final ratings, promotion recommendations and bias report versions (HR)",
)
def export_json(cycle: str, principal: HrDep, connection: ConnectionDep) -> CycleExport:
    return cycle_export(connection, required_period(cycle, field="cycle").name)


@router.get(
    "/cycles/{cycle}/export.csv",
    summary="The same export as CSV, formula-looking cells neutralised (HR)",
    responses={200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
def export_csv_file(cycle: str, principal: HrDep, connection: ConnectionDep) -> Response:
    name = required_period(cycle, field="cycle").name
    return csv_download(export_csv(cycle_export(connection, name)), f"decisions-{name}.csv")
