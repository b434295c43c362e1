"""Periodic tasks: the upkeep every long-running worker schedules (procrastinate's periodic
deferrer; the database defers each tick once, however many workers run), and the place for
the next ones (review-cycle reminders, connector syncs).

- take_over_stalled_jobs: a job whose worker stopped sending heartbeats (killed, its machine
  gone) is queued again, or failed if that was its last attempt. procrastinate finds such
  jobs (`JobManager.get_stalled_jobs`) but leaves them running for ever; this is what the
  old queue's leases did. A worker also runs it once as it starts.
- remove_ended_sessions: web sessions no request can use again are deleted.
- prune_periodic_runs: finished runs of these tasks older than a few days are deleted
  (they only record that upkeep ran); our jobs' own rows are kept.
- send_reminders: one reminder pass (service/cycles/reminder_pass.py), at
  FAIRDRAFT_REMINDERS_CRON (nightly by default): claims what is due and sends what waits.
- deactivate_leavers: people whose HRIS termination date has come are made inactive
  (service/ingest/people.py), daily, so a leaver's access ends on the day, not at the next
  import.
- sync_connectors: one run of every configured connector (service/connectors/sync.py), at
  FAIRDRAFT_CONNECTORS_CRON (hourly by default), each fetching what changed since its
  cursor; a connector already running (a person's `fairdraft sync`) is left to finish.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from procrastinate import App, JobContext
from procrastinate.exceptions import ConnectorException
from procrastinate.jobs import Status
from procrastinate.manager import JobManager
from sqlalchemy import Engine

from service.access.sessions import remove_ended_sessions
from service.connectors.sync import sync_configured
from service.cycles.reminder_pass import run_pass
from service.ingest.people import deactivate_leavers
from service.jobs.queue import JOBS_QUEUE, store_error_of
from service.jobs.runner import max_attempts_of, resources_of

log = logging.getLogger("fairdraft.jobs")
PERIODIC_QUEUE = "periodic"
TAKE_OVER_CRON = "* * * * *"  # every minute
SESSIONS_CRON = "*/15 * * * *"
PRUNE_CRON = "30 3 * * *"  # daily, at night
REMINDERS_CRON = "0 2 * * *"  # Settings.reminders_cron's default
CONNECTORS_CRON = "17 * * * *"  # Settings.connectors_cron's default
LEAVERS_CRON = "5 0 * * *"  # daily, just after midnight UTC
PERIODIC_RUNS_KEPT_HOURS = 72
WORKER_LOST = "its worker stopped before finishing the last allowed attempt"


async def take_over_stalled_jobs(manager: JobManager, engine: Engine, *, stalled_s: float) -> int:
    """Every job held by a worker silent for `stalled_s`: one of ours is queued again while
    attempts remain (the lost one counts) and failed otherwise, with WORKER_LOST as its
    error; a periodic run is failed (the next tick runs it again). Returns how many."""
    taken = 0
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_s):
        ours = job.queue == JOBS_QUEUE
        again = ours and job.attempts + 1 < max_attempts_of(job)
        try:
            if again:
                await manager.retry_job(job)
            else:
                await manager.finish_job(job, status=Status.FAILED, delete_job=False)
        except ConnectorException:
            continue  # another worker took it over, or its own worker finished it after all
        if ours and not again:
            assert job.id is not None
            await asyncio.to_thread(store_error_of, engine, job.id, WORKER_LOST)
        taken += 1
        log.warning(
            "job %s (%s) taken over from a silent worker: %s",
            job.id,
            job.task_name,
            "queued again" if again else "failed",
            extra={"procrastinate_job_id": job.id, "status": "queued" if again else "failed"},
        )
    return taken


async def _take_over(context: JobContext, timestamp: int) -> None:
    resources = resources_of(context)
    await take_over_stalled_jobs(
        context.app.job_manager, resources.engine, stalled_s=resources.settings.job_stalled_s
    )


def _remove_ended_sessions(context: JobContext, timestamp: int) -> None:
    resources = resources_of(context)
    idle = timedelta(minutes=resources.settings.session_idle_minutes)
    with resources.engine.begin() as conn:
        removed = remove_ended_sessions(conn, idle=idle)
    log.info("removed %s ended web sessions", removed, extra={"removed": removed})


def _send_reminders(context: JobContext, timestamp: int) -> None:
    resources = resources_of(context)
    summary = run_pass(resources.engine, resources.settings, now=datetime.now(UTC))
    sent = sum(o.sent for o in summary.outcomes.values())
    failed = sum(o.failed + o.gave_up for o in summary.outcomes.values())
    log.info(
        "reminder pass: %s sent, %s failed", sent, failed, extra={"sent": sent, "failed": failed}
    )


def _deactivate_leavers(context: JobContext, timestamp: int) -> None:
    resources = resources_of(context)
    with resources.engine.begin() as conn:
        gone = deactivate_leavers(conn, today=datetime.now(UTC).date(), actor="schedule")
    log.info("%s leavers made inactive", len(gone), extra={"deactivated": len(gone)})


def _sync_connectors(context: JobContext, timestamp: int) -> None:
    resources = resources_of(context)
    ran = sync_configured(
        resources.engine, resources.settings, actor="schedule", embedder=resources.embedder
    )
    for name, outcome in ran.items():
        if isinstance(outcome, str):
            log.info("%s sync not run: %s", name, outcome, extra={"connector": name})
            continue
        log.info(
            "%s sync %s: %s fetched, %s inserted, %s updated, %s deleted, %s skipped",
            name,
            outcome.status,
            outcome.fetched,
            outcome.inserted,
            outcome.updated,
            outcome.deleted,
            outcome.skipped,
            extra={"connector": name, **outcome.figures()},
        )


async def _prune_periodic_runs(context: JobContext, timestamp: int) -> None:
    await context.app.job_manager.delete_old_jobs(
        nb_hours=PERIODIC_RUNS_KEPT_HOURS,
        queue=PERIODIC_QUEUE,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )


def add_periodic_tasks(
    app: App, *, reminders_cron: str = REMINDERS_CRON, connectors_cron: str = CONNECTORS_CRON
) -> None:
    """Register the periodic tasks on `app`, each on the periodic queue with a queueing
    lock (while one run waits, no second is queued)."""
    for name, cron, function in (
        ("take_over_stalled_jobs", TAKE_OVER_CRON, _take_over),
        ("remove_ended_sessions", SESSIONS_CRON, _remove_ended_sessions),
        ("prune_periodic_runs", PRUNE_CRON, _prune_periodic_runs),
        ("send_reminders", reminders_cron, _send_reminders),
        ("sync_connectors", connectors_cron, _sync_connectors),
        ("deactivate_leavers", LEAVERS_CRON, _deactivate_leavers),
    ):
        task = app.task(name=name, queue=PERIODIC_QUEUE, pass_context=True, queueing_lock=name)
        app.periodic(cron=cron)(task(function))
