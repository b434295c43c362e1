"""HR's cycle work: setting a cycle up (period, participants, reviews, scale, questions,
phases), starting it (everyone's tasks), changing its dates, copying it to the next period;
drafting a whole cycle and the cycle's bias report (background jobs), and reading the
stored report. Demographic detail stays behind the HR role."""

from fastapi import APIRouter, Response

from domain.errors import NotFound
from service.api.accepted import accepted
from service.api.schemas import (
    CycleCopyIn,
    CycleCreateIn,
    CycleJobIn,
    CycleSetupOut,
    CycleStartOut,
    JobOut,
    ProbeIn,
)
from service.bias.report import latest_report
from service.bias.report_model import StoredBiasReport
from service.cycles.setup import CycleSetupPatch
from service.cycles.setup_store import (
    copy_cycle,
    create_cycle,
    cycle_setup,
    start_cycle,
    update_setup,
)
from service.http.deps import ConnectionDep, HrDep, SettingsDep
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1/cycles", tags=["cycles"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=201,
    summary="Set up the cycle of a period, as a draft (HR)",
    responses=CONFLICT,
)
def new_cycle(body: CycleCreateIn, principal: HrDep, connection: ConnectionDep) -> CycleSetupOut:
    period = required_period(body.period, field="period")
    return create_cycle(connection, period, body, actor=principal.actor)


@router.get("/{cycle}/setup", summary="The cycle's set-up and where it stands (HR)")
def get_setup(cycle: str, principal: HrDep, connection: ConnectionDep) -> CycleSetupOut:
    return cycle_setup(connection, required_period(cycle, field="cycle").name)


@router.patch(
    "/{cycle}/setup",
    summary="Change a draft cycle's set-up; once started, its phase dates only (HR)",
    responses=CONFLICT,
)
def change_setup(
    cycle: str, body: CycleSetupPatch, principal: HrDep, connection: ConnectionDep
) -> CycleSetupOut:
    name = required_period(cycle, field="cycle").name
    return update_setup(connection, name, body, actor=principal.actor)


@router.post(
    "/{cycle}/start",
    summary="Start the cycle: every participant's tasks are created (HR)",
    responses=CONFLICT,
)
def start(cycle: str, principal: HrDep, connection: ConnectionDep) -> CycleStartOut:
    name = required_period(cycle, field="cycle").name
    return start_cycle(connection, name, actor=principal.actor)


@router.post(
    "/{cycle}/copy",
    status_code=201,
    summary="Set up the next period's cycle as a copy of this one, dates shifted (HR)",
    responses=CONFLICT,
)
def copy(
    cycle: str, body: CycleCopyIn, principal: HrDep, connection: ConnectionDep
) -> CycleSetupOut:
    source = required_period(cycle, field="cycle").name
    period = required_period(body.period, field="period")
    return copy_cycle(connection, source, period, actor=principal.actor)


@router.post("/{cycle}/drafts", status_code=202, summary="Draft the cycle for everyone")
def draft_cycle(
    cycle: str,
    body: CycleJobIn,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    period = required_period(cycle, field="cycle")
    payload = {"period": period.name, "kinds": list(dict.fromkeys(body.kinds))}
    return accepted(
        connection,
        response,
        principal,
        "draft_cycle",
        payload,
        max_attempts=settings.job_max_attempts,
    )


@router.post("/{cycle}/bias-report", status_code=202, summary="Run the cycle's bias check")
def run_bias_report(
    cycle: str,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    return accepted(
        connection,
        response,
        principal,
        "bias_report",
        {"cycle": required_period(cycle, field="cycle").name},
        max_attempts=settings.job_max_attempts,
    )


@router.post(
    "/{cycle}/bias-probe",
    status_code=202,
    summary="Draft a sample again with names and pronouns swapped; measure the shift",
)
def run_bias_probe(
    cycle: str,
    body: ProbeIn,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    period = required_period(cycle, field="cycle")
    payload = {"period": period.name, "kind": body.kind, "sample": body.sample}
    return accepted(
        connection,
        response,
        principal,
        "bias_probe",
        {**payload, "seed": body.seed},
        max_attempts=settings.job_max_attempts,
    )


@router.get("/{cycle}/bias-report", summary="The latest stored bias report of the cycle")
def get_bias_report(cycle: str, principal: HrDep, connection: ConnectionDep) -> StoredBiasReport:
    found = latest_report(connection, required_period(cycle, field="cycle").name)
    if found is None:
        raise NotFound("bias report not found")
    return found
