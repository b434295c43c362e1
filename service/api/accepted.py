"""The API's answer to queued work: the job as JobOut, and a 202's Location header. Not a
router: the routers that queue work and the jobs router share it."""

from typing import Any

from fastapi import Response
from sqlalchemy import Connection

from service.access.principal import Principal
from service.api.schemas import JobOut
from service.jobs.accept import accept_job
from service.jobs.queue import JobView


def job_out(view: JobView) -> JobOut:
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


def accepted(
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
    view = accept_job(connection, principal, kind, payload, max_attempts=max_attempts)
    response.headers["Location"] = f"/api/v1/jobs/{view.id}"
    return job_out(view)
