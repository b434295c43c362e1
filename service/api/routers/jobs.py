"""Background jobs: their status, for the person who asked (and HR)."""

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import Connection

from service.access.principal import Principal
from service.api.deps import BigId, ConnectionDep, PrincipalDep
from service.api.errors import ERROR_RESPONSES, not_found
from service.api.schemas import JobOut
from service.jobs.queue import enqueue, job_status

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


def accept_job(
    connection: Connection,
    response: Response,
    principal: Principal,
    kind: str,
    payload: dict[str, Any],
    *,
    max_attempts: int,
) -> JobOut:
    """Queue background work for the caller and answer as a 202 does: the job, and where
    to poll it."""
    job_id = enqueue(
        connection,
        kind,
        payload,
        requested_by=principal.person_id,
        max_attempts=max_attempts,
        actor=principal.actor,
    )
    response.headers["Location"] = f"/api/v1/jobs/{job_id}"
    view = job_status(connection, job_id)
    assert view is not None
    return job_out(view)


@router.get("/jobs/{job_id}", summary="A job's status and, when done, its result")
def get_job(job_id: BigId, principal: PrincipalDep, connection: ConnectionDep) -> JobOut:
    view = job_status(connection, job_id)
    if view is None or not (principal.hr_admin or view.requested_by == principal.person_id):
        raise not_found("job")
    return job_out(view)
