"""Queueing a job and reading it back: our record (`jobs`) beside procrastinate's job.

procrastinate keeps the queue: its job is what a worker fetches, retries and finishes, and
its status and attempts are the job's. Our record keeps what it has no place for: who
asked, the payload (procrastinate's job carries only our id and the attempts allowed, so its
log lines never show a payload), the result and a safe error message.

Both are written in the caller's transaction, on the caller's connection: the job exists
only if the caller commits, and no worker can start it before our record is there.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from procrastinate import App, SyncPsycopgConnector
from sqlalchemy import Connection, Engine, func, insert, select, update

from service.audit import audit
from service.db.models import PROCRASTINATE_JOBS, Job, Person
from service.jobs.handlers import handler_for

JOBS_QUEUE = "jobs"  # procrastinate's queue for our jobs; periodic tasks have their own
ERROR_MAX_CHARS = 1000


@dataclass(frozen=True)
class JobView:
    """A job as its requester sees it: never the payload, which may name server paths."""

    id: int
    kind: str
    status: str
    attempts: int
    requested_by: int | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class QueuedJob:
    """What a worker needs to run one of our jobs."""

    id: int
    kind: str
    payload: dict[str, Any]
    requester_email: str | None  # for the audit trail's actor


def enqueue(
    connection: Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    requested_by: int | None,
    max_attempts: int,
    actor: str,
) -> int:
    """Queue a job in the caller's transaction and audit it; returns our job id. An unknown
    kind is refused here (JobRejected), before anything is written."""
    handler_for(kind)
    job_id: int = connection.execute(
        select(func.nextval(func.pg_get_serial_sequence(Job.__tablename__, "id")))
    ).scalar_one()
    connection.execute(
        insert(Job).values(
            id=job_id,
            kind=kind,
            payload=payload,
            requested_by=requested_by,
            procrastinate_job_id=_defer(connection, kind, job_id, max_attempts),
        )
    )
    audit(
        connection,
        actor=actor,
        action="job_queued",
        entity="job",
        entity_id=str(job_id),
        after={"kind": kind},
    )
    return job_id


def _defer(connection: Connection, kind: str, job_id: int, max_attempts: int) -> int:
    """procrastinate's job for ours, inserted through procrastinate's own API on the
    caller's psycopg connection (so within the caller's transaction). Deferring by task
    name needs no open pool and no registered task."""
    deferrer = App(connector=SyncPsycopgConnector())
    psycopg_connection = connection.connection.driver_connection
    return deferrer.configure_task(kind, queue=JOBS_QUEUE, connection=psycopg_connection).defer(
        job_id=job_id, max_attempts=max_attempts
    )


def job_status(connection: Connection, job_id: int) -> JobView | None:
    """The job with procrastinate's status and attempts; None when there is no such job."""
    row = connection.execute(
        select(
            Job.id,
            Job.kind,
            Job.status,
            Job.attempts,
            Job.requested_by,
            Job.result,
            Job.error,
            Job.created_at,
            Job.updated_at,
        ).where(Job.id == job_id)
    ).first()
    if row is None:
        return None
    return JobView(
        row.id,
        row.kind,
        row.status,
        row.attempts,
        row.requested_by,
        row.result,
        row.error,
        row.created_at,
        row.updated_at,
    )


def jobs_due(connection: Connection) -> bool:
    """Whether a job of ours is waiting and due now (a retry may be waiting out its
    back-off)."""
    p = PROCRASTINATE_JOBS.c
    return bool(
        connection.execute(
            select(
                select(p.id)
                .where(
                    p.queue_name == JOBS_QUEUE,
                    p.status == "todo",
                    (p.scheduled_at.is_(None)) | (p.scheduled_at <= func.now()),
                )
                .exists()
            )
        ).scalar_one()
    )


# --- what a worker writes ---------------------------------------------------------------


def start_attempt(engine: Engine, job_id: int) -> QueuedJob | None:
    """Our record of a job a worker is starting, marked updated now; None when it has none
    (removed by hand)."""
    with engine.begin() as conn:
        row = conn.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(updated_at=func.now())
            .returning(Job.id, Job.kind, Job.payload, Job.requested_by)
        ).first()
        if row is None:
            return None
        email = conn.execute(
            select(Person.email).where(Person.id == row.requested_by)
        ).scalar_one_or_none()
    return QueuedJob(row.id, row.kind, row.payload, email)


def store_result(engine: Engine, job_id: int, result: dict[str, Any]) -> None:
    """The finished attempt's result; an earlier attempt's error is cleared."""
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(result=result, error=None))


def store_error(engine: Engine, job_id: int, error: str) -> None:
    """The failed attempt's error: a short message of fairdraft's making, never evidence."""
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(error=error[:ERROR_MAX_CHARS]))


def store_error_of(engine: Engine, procrastinate_job_id: int, error: str) -> None:
    """`store_error` for the job that procrastinate knows by `procrastinate_job_id`."""
    with engine.begin() as conn:
        conn.execute(
            update(Job)
            .where(Job.procrastinate_job_id == procrastinate_job_id)
            .values(error=error[:ERROR_MAX_CHARS])
        )
