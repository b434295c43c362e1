"""The job queue: rows in the `jobs` table, claimed with FOR UPDATE SKIP LOCKED under a lease.

Postgres is the only moving part, so a queued job survives restarts of the service and of
workers. A worker claims one job at a time and holds it until `lease_until`; a worker that
dies simply stops extending its lease, and once the lease has run out another worker claims
the job again. Every write after the claim names the worker (`locked_by`), so a worker whose
job was taken over cannot overwrite what its successor stored.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    and_,
    case,
    func,
    insert,
    or_,
    select,
    update,
)

from service.audit import audit
from service.db.models import Job

ERROR_MAX_CHARS = 1000
LEASE_LOST = "its worker stopped before finishing the last allowed attempt (the lease ran out)"


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs to run a job it now holds."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int  # including this one
    max_attempts: int
    requested_by: int | None


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


def enqueue(
    connection: Connection,
    kind: str,
    payload: dict[str, Any],
    *,
    requested_by: int | None,
    max_attempts: int,
    actor: str,
) -> int:
    """Queue a job in the caller's transaction (so it exists only if the caller commits) and
    audit it; returns the job id."""
    job_id: int = connection.execute(
        insert(Job)
        .values(kind=kind, payload=payload, requested_by=requested_by, max_attempts=max_attempts)
        .returning(Job.id)
    ).scalar_one()
    audit(
        connection,
        actor=actor,
        action="job_queued",
        entity="job",
        entity_id=str(job_id),
        after={"kind": kind},
    )
    return job_id


def _lease_expired() -> ColumnElement[bool]:
    return and_(Job.status == "running", Job.lease_until < func.now())


def reap(connection: Connection) -> list[int]:
    """Fail the jobs whose worker died on their last allowed attempt: running again would
    exceed max_attempts. Returns their ids."""
    rows = connection.execute(
        update(Job)
        .where(_lease_expired(), Job.attempts >= Job.max_attempts)
        .values(status="failed", error=LEASE_LOST, lease_until=None, updated_at=func.now())
        .returning(Job.id)
    )
    return list(rows.scalars())


def claim(engine: Engine, worker_id: str, lease_s: float) -> ClaimedJob | None:
    """Take the next runnable job (queued and due, or running with its lease run out) and
    hold it for `lease_s` seconds; None when there is nothing to do. SKIP LOCKED lets any
    number of workers claim at once without ever taking the same job."""
    claimable = or_(
        and_(Job.status == "queued", Job.run_after <= func.now()),
        and_(_lease_expired(), Job.attempts < Job.max_attempts),
    )
    next_id = (
        select(Job.id)
        .where(claimable)
        .order_by(Job.run_after, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    statement = (
        update(Job)
        .where(Job.id == next_id)
        .values(
            status="running",
            attempts=Job.attempts + 1,
            locked_by=worker_id,
            lease_until=func.now() + timedelta(seconds=lease_s),
            updated_at=func.now(),
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.requested_by)
    )
    with engine.begin() as conn:
        reap(conn)
        row = conn.execute(statement).first()
    if row is None:
        return None
    return ClaimedJob(
        row.id, row.kind, row.payload, row.attempts, row.max_attempts, row.requested_by
    )


def _held_by(job_id: int, worker_id: str) -> ColumnElement[bool]:
    """The job is still this worker's: not finished, not taken over by another."""
    return and_(Job.id == job_id, Job.status == "running", Job.locked_by == worker_id)


def complete(engine: Engine, job_id: int, worker_id: str, result: dict[str, Any]) -> bool:
    """Store the result and mark the job done; False (and nothing written) when the job is
    no longer this worker's."""
    with engine.begin() as conn:
        done = conn.execute(
            update(Job)
            .where(_held_by(job_id, worker_id))
            .values(
                status="done", result=result, error=None, lease_until=None, updated_at=func.now()
            )
            .returning(Job.id)
        ).first()
    return done is not None


def fail(
    engine: Engine, job_id: int, worker_id: str, error: str, *, retry_in_s: float | None
) -> str | None:
    """Record a failed attempt: queued again after `retry_in_s` while attempts remain, failed
    for good otherwise or when `retry_in_s` is None (a job that can never succeed). Returns
    the new status, or None (nothing written) when the job is no longer this worker's.
    `error` must be a short message of the caller's making, never evidence text."""
    values: dict[str, Any] = {"status": "failed"}
    if retry_in_s is not None:
        retry = Job.attempts < Job.max_attempts
        values = {
            "status": case((retry, "queued"), else_="failed"),
            "run_after": case(
                (retry, func.now() + timedelta(seconds=retry_in_s)), else_=Job.run_after
            ),
        }
    with engine.begin() as conn:
        status: str | None = conn.execute(
            update(Job)
            .where(_held_by(job_id, worker_id))
            .values(
                **values,
                error=error[:ERROR_MAX_CHARS],
                lease_until=None,
                updated_at=func.now(),
            )
            .returning(Job.status)
        ).scalar_one_or_none()
    return status


def heartbeat(engine: Engine, job_id: int, worker_id: str, lease_s: float) -> bool:
    """Extend a long job's lease to `lease_s` from now; False when the job is no longer this
    worker's (its lease ran out and another took it over, or it was finished)."""
    with engine.begin() as conn:
        held = conn.execute(
            update(Job)
            .where(_held_by(job_id, worker_id))
            .values(lease_until=func.now() + timedelta(seconds=lease_s))
            .returning(Job.id)
        ).first()
    return held is not None


def job_status(connection: Connection, job_id: int) -> JobView | None:
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
