"""One attempt at one of our jobs, as procrastinate's task for its kind runs it: load our
record, call the handler, store the result or a safe error, and tell procrastinate whether
to try again.

What procrastinate logs about a failed job is the exception the task raised, with its
chain; a handler's own exception (or one it was raised from) may quote evidence. So the
task raises AttemptFailed instead, holding only the stored message, with the handler's
exception unchained; our own log line names the handler's exception by type and place.
"""

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from procrastinate import JobContext as ProcrastinateContext
from procrastinate.jobs import Job as ProcrastinateJob
from sqlalchemy import Engine

from retrieval.embedding import Embedder
from service.bias.nlp import SenseParser
from service.jobs.handlers import Handler, JobContext, describe_error, is_permanent
from service.jobs.queue import QueuedJob, start_attempt, store_error, store_result
from service.metrics import metered, process_metrics
from service.settings import Settings

log = logging.getLogger("fairdraft.jobs")
MAX_BACKOFF_S = 60
RESOURCES = "fairdraft"  # the key of WorkerResources in procrastinate's additional context


@dataclass(frozen=True)
class WorkerResources:
    """What a worker lends its jobs: made once by whoever runs the worker, passed to
    procrastinate as the tasks' additional context."""

    engine: Engine
    settings: Settings
    embedder: Callable[[], Embedder]  # loaded on first use, then kept
    parser: Callable[[], SenseParser]  # the same


def resources_of(context: ProcrastinateContext) -> WorkerResources:
    """The running worker's resources, as `Worker` hands them to procrastinate."""
    resources = context.additional_context.get(RESOURCES)
    if not isinstance(resources, WorkerResources):
        raise TypeError("the worker passed no WorkerResources to its tasks")
    return resources


def max_attempts_of(job: ProcrastinateJob) -> int:
    """The attempts a job is allowed, from its arguments (1 if they do not say)."""
    value = job.task_kwargs.get("max_attempts")
    return value if isinstance(value, int) and value >= 1 else 1


class AttemptFailed(Exception):
    """An attempt failed with `message` (the error stored with the job). `permanent`: the
    handler's error said no retry can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def backoff_s(attempts: int) -> int:
    """Seconds before retrying after `attempts` tries: 2, 4, 8, ... capped at a minute."""
    return int(min(2**attempts, MAX_BACKOFF_S))


def retry_in_s(*, permanent: bool, attempt: int, max_attempts: int) -> int | None:
    """The one retry rule: seconds until the next attempt after attempt number `attempt`
    failed, or None when the job fails now (the error is permanent, or attempts ran out)."""
    if permanent or attempt >= max_attempts:
        return None
    return backoff_s(attempt)


def run_job(
    resources: WorkerResources,
    handler: Handler,
    job_id: int,
    *,
    attempt: int,
    max_attempts: int,
) -> None:
    """Run attempt number `attempt` of our job `job_id`; raises AttemptFailed when it fails."""
    job = start_attempt(resources.engine, job_id)
    if job is None:
        raise AttemptFailed(f"job {job_id} has no record", permanent=True)
    metrics = process_metrics()

    def embedder() -> Embedder:  # counted in the metrics, whichever worker runs the job
        return metered(resources.embedder(), metrics)

    context = JobContext(
        resources.engine,
        resources.settings,
        _actor(job),
        job.id,
        embedder,
        resources.parser,
    )
    started = time.perf_counter()
    try:
        result = handler(context, job.payload)
    except Exception as exc:
        message, permanent = describe_error(exc), is_permanent(exc)
        _log_error(job, exc, permanent)
        store_error(resources.engine, job.id, message)
        retry = retry_in_s(permanent=permanent, attempt=attempt, max_attempts=max_attempts)
        status = "failed" if retry is None else "queued"
        seconds = time.perf_counter() - started
        _log_finished(job, status, attempt, max_attempts, seconds)
        metrics.job(job.kind, "failed" if retry is None else "retried", seconds)
        raise AttemptFailed(message, permanent=permanent) from None
    store_result(resources.engine, job.id, result)
    seconds = time.perf_counter() - started
    _log_finished(job, "done", attempt, max_attempts, seconds)
    metrics.job(job.kind, "done", seconds)


def _actor(job: QueuedJob) -> str:
    """Who the audit trail names: the job, on behalf of the person who asked for it."""
    if job.requester_email is None:
        return f"job:{job.id}"
    return f"job:{job.id} for {job.requester_email}"


def _log_finished(
    job: QueuedJob, status: str, attempt: int, max_attempts: int, seconds: float
) -> None:
    """One line per attempt: the job, its kind, the outcome, never payload or result."""
    fields = {
        "job_id": job.id,
        "kind": job.kind,
        "status": status,
        "attempt": attempt,
        "seconds": round(seconds, 3),
    }
    level = logging.INFO if status == "done" else logging.WARNING
    log.log(
        level,
        "job %s %s: %s after attempt %s/%s in %.2f s",
        job.id,
        job.kind,
        status,
        attempt,
        max_attempts,
        seconds,
        extra=fields,
    )


def _log_error(job: QueuedJob, exc: Exception, permanent: bool) -> None:
    """The error's type, and for an unexpected one where it was raised, never its message
    (which may quote evidence); the stored job error carries the safe part of it."""
    fields = {"job_id": job.id, "kind": job.kind, "error_type": type(exc).__name__}
    if permanent:
        log.warning("job %s %s refused: %s", job.id, job.kind, type(exc).__name__, extra=fields)
        return
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "job %s %s raised %s at\n%s", job.id, job.kind, type(exc).__name__, where, extra=fields
    )
