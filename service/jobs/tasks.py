"""The procrastinate App a worker runs: a task per job kind, the retry rule, and (for
long-running workers) the periodic tasks.

A job's procrastinate arguments are our job id and the attempts it is allowed; the task
named after the job's kind runs it (service.jobs.runner). The resources a task needs (the
engine, settings, the embedder) come from the worker that runs it, through procrastinate's
additional context, never from module state.
"""

from collections.abc import Callable, Mapping

from procrastinate import App, BaseConnector, BaseRetryStrategy, JobContext, RetryDecision
from procrastinate.jobs import Job as ProcrastinateJob

from service.jobs.handlers import Handler
from service.jobs.periodic import CONNECTORS_CRON, REMINDERS_CRON, add_periodic_tasks
from service.jobs.queue import JOBS_QUEUE
from service.jobs.runner import (
    AttemptFailed,
    max_attempts_of,
    resources_of,
    retry_in_s,
    run_job,
)


class RetryByClass(BaseRetryStrategy):
    """Retry with back-off while attempts remain, unless the failed attempt's error says no
    retry can help (its class's `permanent`)."""

    def get_retry_decision(
        self, *, exception: BaseException, job: ProcrastinateJob
    ) -> RetryDecision | None:
        permanent = isinstance(exception, AttemptFailed) and exception.permanent
        seconds = retry_in_s(
            permanent=permanent, attempt=job.attempts + 1, max_attempts=max_attempts_of(job)
        )
        return None if seconds is None else RetryDecision(retry_in={"seconds": seconds})


def _task_for(handler: Handler) -> Callable[[JobContext, int, int], None]:
    """procrastinate's task function for one kind: runs the job its arguments name."""

    def run(context: JobContext, job_id: int, max_attempts: int) -> None:
        run_job(
            resources_of(context),
            handler,
            job_id,
            attempt=context.job.attempts + 1,  # procrastinate counts finished attempts
            max_attempts=max_attempts,
        )

    return run


def build_app(
    connector: BaseConnector,
    handlers: Mapping[str, Handler],
    *,
    periodic: bool,
    reminders_cron: str = REMINDERS_CRON,
    connectors_cron: str = CONNECTORS_CRON,
) -> App:
    """An App with a task per job kind in `handlers`, and the periodic tasks if asked
    (the reminder pass at `reminders_cron`, Settings.reminders_cron)."""
    app = App(connector=connector)
    for kind, handler in handlers.items():
        app.task(name=kind, queue=JOBS_QUEUE, pass_context=True, retry=RetryByClass())(
            _task_for(handler)
        )
    if periodic:
        add_periodic_tasks(app, reminders_cron=reminders_cron, connectors_cron=connectors_cron)
    return app
