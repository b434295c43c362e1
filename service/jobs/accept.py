"""Queueing background work on a caller's behalf, for every endpoint that answers 202."""

from typing import Any

from sqlalchemy import Connection

from service.access.principal import Principal
from service.jobs.queue import JobView, enqueue, job_status


def accept_job(
    connection: Connection,
    principal: Principal,
    kind: str,
    payload: dict[str, Any],
    *,
    max_attempts: int,
) -> JobView:
    """Queue the work as the caller and return the job as they will poll it."""
    job_id = enqueue(
        connection,
        kind,
        payload,
        requested_by=principal.person_id,
        max_attempts=max_attempts,
        actor=principal.actor,
    )
    view = job_status(connection, job_id)
    assert view is not None
    return view
