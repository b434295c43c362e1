"""Calibration panels: their cohort side by side (pseudonymised by default), the rating
distribution, the 9-box, manager leniency, the disagreements to discuss first; placing,
calibrating and finalising. A panel is visible to its members and to HR only."""

from fastapi import APIRouter, Response
from sqlalchemy import Connection

from service.api.accepted import accepted
from service.api.schemas import (
    CohortOut,
    CohortRowOut,
    DisagreementOut,
    DistributionOut,
    JobOut,
    ManagerOut,
    NineBoxOut,
    PanelIn,
    PanelOut,
    PanelRatingOut,
    PlacementIn,
    RatingIn,
)
from service.calibration.access import in_panel_terms, panel_subject, visible_panel
from service.calibration.cohort import cohort_view
from service.calibration.panels import (
    PanelView,
    all_panels,
    cohort_people,
    create_panel,
    panel,
    panels_of,
    place,
)
from service.calibration.pseudonyms import pseudonyms
from service.drafting.asks import DRAFT_PANEL_JOB
from service.http.deps import ConnectionDep, HrDep, Id, PrincipalDep, SettingsDep
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period
from service.ratings.workflow import calibrate_rating, finalise_rating
from service.settings import Settings

router = APIRouter(prefix="/api/v1/panels", tags=["calibration"], responses=ERROR_RESPONSES)


def panel_out(view: PanelView) -> PanelOut:
    return PanelOut(
        id=view.id,
        cycle=view.cycle,
        level=view.level,
        job_family=view.job_family,
        members=len(view.members),
    )


def _panel_rating(
    connection: Connection, settings: Settings, found: PanelView, person_id: int
) -> PanelRatingOut:
    """The answer to a panel's write, by the label the panel used: ids never leave."""
    view = cohort_view(connection, found.id, pseudonymise=settings.panel_pseudonymise)
    if settings.panel_pseudonymise:
        cohort = [p.id for p in cohort_people(connection, found)]
        label = pseudonyms(found, cohort)[person_id]
    else:
        label = str(person_id)
    row = next(r for r in view.rows if r.label == label or r.person_id == person_id)
    return PanelRatingOut(
        label=label, proposed=row.proposed, calibrated=row.calibrated, final=row.final
    )


@router.get("", summary="The panels the caller sits on (HR: all panels)")
def list_panels(principal: PrincipalDep, connection: ConnectionDep) -> list[PanelOut]:
    if principal.hr_admin:
        return [panel_out(p) for p in all_panels(connection)]
    return [panel_out(p) for p in panels_of(connection, principal.person_id)]


@router.post("", status_code=201, summary="Set up a panel for a cohort of a cycle (HR)")
def new_panel(body: PanelIn, principal: HrDep, connection: ConnectionDep) -> PanelOut:
    panel_id = create_panel(
        connection,
        required_period(body.cycle, field="cycle"),
        body.level,
        body.job_family,
        body.members,
        actor=principal.actor,
    )
    found = panel(connection, panel_id)
    assert found is not None
    return panel_out(found)


@router.get("/{panel_id}", summary="The cohort side by side, with the panel's charts' data")
def get_cohort(
    panel_id: Id, principal: PrincipalDep, connection: ConnectionDep, settings: SettingsDep
) -> CohortOut:
    visible_panel(connection, principal, panel_id)
    view = cohort_view(connection, panel_id, pseudonymise=settings.panel_pseudonymise)
    return CohortOut(
        panel=panel_out(view.panel),
        pseudonymised=view.pseudonymised,
        rows=[CohortRowOut.model_validate(r, from_attributes=True) for r in view.rows],
        distribution=DistributionOut(
            scale=list(view.distribution.scale),
            proposed={str(k): v for k, v in view.distribution.proposed.items()},
            calibrated={str(k): v for k, v in view.distribution.calibrated.items()},
            rated=view.distribution.rated,
            calibrated_people=view.distribution.calibrated_people,
        ),
        managers=[ManagerOut.model_validate(m, from_attributes=True) for m in view.managers],
        disagreements=[
            DisagreementOut.model_validate(d, from_attributes=True) for d in view.disagreements
        ],
        evidence_r_squared=view.evidence_r_squared,
    )


@router.put("/{panel_id}/people/{label}/placement", summary="Place a person on the 9-box")
def set_placement(
    panel_id: Id,
    label: str,
    body: PlacementIn,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> NineBoxOut:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    with in_panel_terms(connection, settings, person_id, label):
        place(
            connection,
            found.id,
            person_id,
            body.performance,
            body.potential,
            actor=principal.actor,
        )
    return NineBoxOut(performance=body.performance, potential=body.potential)


@router.put(
    "/{panel_id}/people/{label}/calibrated-rating",
    summary="Set the calibrated rating",
    responses=CONFLICT,
)
def set_calibrated(
    panel_id: Id,
    label: str,
    body: RatingIn,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> PanelRatingOut:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    with in_panel_terms(connection, settings, person_id, label):
        calibrate_rating(connection, found.cycle, person_id, body.rating, actor=principal.actor)
    return _panel_rating(connection, settings, found, person_id)


@router.post(
    "/{panel_id}/people/{label}/finalise",
    summary="Finalise the person's rating",
    responses=CONFLICT,
)
def finalise(
    panel_id: Id,
    label: str,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
) -> PanelRatingOut:
    found, person_id = panel_subject(connection, settings, principal, panel_id, label)
    with in_panel_terms(connection, settings, person_id, label):
        finalise_rating(connection, found.cycle, person_id, by=principal.actor)
    return _panel_rating(connection, settings, found, person_id)


@router.post(
    "/{panel_id}/summaries",
    status_code=202,
    summary="Draft the comparable-evidence summaries of the panel's whole cohort (one job)",
)
def draft_summaries(
    panel_id: Id,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    """For the panel's members and HR; the job's result holds counts only."""
    visible_panel(connection, principal, panel_id)
    return accepted(
        connection,
        response,
        principal,
        DRAFT_PANEL_JOB,
        {"panel_id": panel_id},
        max_attempts=settings.job_max_attempts,
    )
