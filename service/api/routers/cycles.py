"""HR's cycle work: drafting a whole cycle and the cycle's bias report (background jobs),
and reading the stored report. Demographic detail stays behind the HR role."""

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from service.api.accepted import accepted
from service.api.schemas import CycleJobIn, JobOut, ProbeIn
from service.db.models import BiasReport
from service.http.deps import ConnectionDep, HrDep, SettingsDep
from service.http.errors import ERROR_RESPONSES, not_found
from service.http.params import cycle_name

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
    payload = {"period": cycle_name(cycle), "kinds": list(dict.fromkeys(body.kinds))}
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
        {"cycle": cycle_name(cycle)},
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
    payload = {"period": cycle_name(cycle), "kind": body.kind, "sample": body.sample}
    return accepted(
        connection,
        response,
        principal,
        "bias_probe",
        {**payload, "seed": body.seed},
        max_attempts=settings.job_max_attempts,
    )


@router.get("/{cycle}/bias-report", summary="The latest stored bias report of the cycle")
def get_bias_report(cycle: str, principal: HrDep, connection: ConnectionDep) -> dict[str, Any]:
    row = connection.execute(
        select(BiasReport.__table__)
        .where(BiasReport.cycle == cycle_name(cycle))
        .order_by(BiasReport.version.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        raise not_found("bias report")
    return {
        "cycle": row.cycle,
        "version": row.version,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "data_seen": row.data_seen,
        "report": row.report,
    }
