"""HR's cycle work: drafting a whole cycle and the cycle's bias report (background jobs),
and reading the stored report. Demographic detail stays behind the HR role."""

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import select

from service.api.deps import ConnectionDep, HrDep, SettingsDep
from service.api.errors import ERROR_RESPONSES, not_found
from service.api.params import cycle_name
from service.api.routers.jobs import job_out
from service.api.schemas import CycleJobIn, JobOut
from service.db.models import BiasReport
from service.jobs.queue import enqueue, job_status

router = APIRouter(prefix="/api/v1/cycles", tags=["cycles"], responses=ERROR_RESPONSES)


def _accepted(connection: Any, job_id: int, response: Response) -> JobOut:
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    view = job_status(connection, job_id)
    assert view is not None
    return job_out(view)


@router.post("/{cycle}/drafts", status_code=202, summary="Draft the cycle for everyone")
def draft_cycle(
    cycle: str,
    body: CycleJobIn,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    job_id = enqueue(
        connection,
        "draft_cycle",
        {"period": cycle_name(cycle), "kinds": list(dict.fromkeys(body.kinds))},
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return _accepted(connection, job_id, response)


@router.post("/{cycle}/bias-report", status_code=202, summary="Run the cycle's bias check")
def run_bias_report(
    cycle: str,
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    job_id = enqueue(
        connection,
        "bias_report",
        {"cycle": cycle_name(cycle)},
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return _accepted(connection, job_id, response)


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
