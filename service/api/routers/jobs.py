"""Background jobs: their status, for the person who asked (and HR)."""

from typing import Any

from fastapi import APIRouter

from service.api.deps import BigId, ConnectionDep, PrincipalDep
from service.api.errors import ERROR_RESPONSES, not_found
from service.api.schemas import JobOut
from service.jobs.queue import job_status

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=ERROR_RESPONSES)


def job_out(view: Any) -> JobOut:
    return JobOut(
        id=view.id,
        kind=view.kind,
        status=view.status,
        attempts=view.attempts,
        result=view.result,
        error=view.error,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


@router.get("/jobs/{job_id}", summary="A job's status and, when done, its result")
def get_job(job_id: BigId, principal: PrincipalDep, connection: ConnectionDep) -> JobOut:
    view = job_status(connection, job_id)
    if view is None or not (principal.hr_admin or view.requested_by == principal.person_id):
        raise not_found("job")
    return job_out(view)
