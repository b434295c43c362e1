"""Background jobs: their status, for the person who asked (and HR)."""

from fastapi import APIRouter

from domain.errors import NotFound
from service.api.accepted import job_out
from service.api.schemas import JobOut
from service.http.deps import BigId, ConnectionDep, PrincipalDep
from service.http.errors import ERROR_RESPONSES
from service.jobs.queue import job_status

router = APIRouter(prefix="/api/v1", tags=["jobs"], responses=ERROR_RESPONSES)


@router.get("/jobs/{job_id}", summary="A job's status and, when done, its result")
def get_job(job_id: BigId, principal: PrincipalDep, connection: ConnectionDep) -> JobOut:
    view = job_status(connection, job_id)
    if view is None or not (principal.hr_admin or view.requested_by == principal.person_id):
        raise NotFound("job not found")
    return job_out(view)
