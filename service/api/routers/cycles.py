"""HR's cycle work: drafting a whole cycle and the cycle's bias report (background jobs),
and reading the stored report. Demographic detail stays behind the HR role."""

from fastapi import APIRouter, Response

from domain.errors import NotFound
from service.api.accepted import accepted
from service.api.schemas import CycleJobIn, JobOut, ProbeIn
from service.bias.report import latest_report
from service.bias.report_model import StoredBiasReport
from service.http.deps import ConnectionDep, HrDep, SettingsDep
from service.http.errors import ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1/cycles", tags=["cycles"], responses=ERROR_RESPONSES)


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
