"""The worker: claim a job, run its handler, store the result or the failure, repeat.

One worker runs one job at a time. `fairdraft serve` runs one in a thread of its own
(`start_in_thread`); `fairdraft worker` runs any number in a process of their own
(`run_worker`) until SIGINT or SIGTERM. While a job runs, a heartbeat extends its lease, so
only a worker that really died loses its job to another.

Log lines name the job, its kind, status and seconds: never its payload, its result or an
error's text, which could quote evidence.
"""

import itertools
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import FrameType

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from service.db.models import Person
from service.jobs.handlers import (
    HANDLERS,
    PERMANENT,
    Handler,
    JobContext,
    describe_error,
    handler_for,
)
from service.jobs.queue import ClaimedJob, claim, complete, fail, heartbeat
from service.settings import Settings
from service.store import open_store

log = logging.getLogger("fairdraft.jobs")
MAX_BACKOFF_S = 60.0
_worker_numbers = itertools.count(1)


def new_worker_id() -> str:
    """hostname:pid:n, unique per worker in this process, readable in the jobs table."""
    return f"{socket.gethostname()}:{os.getpid()}:{next(_worker_numbers)}"


def backoff_s(attempts: int) -> float:
    """Seconds before retrying after `attempts` tries: 2, 4, 8, ... capped at a minute."""
    return min(2.0**attempts, MAX_BACKOFF_S)


class Worker:
    """Runs jobs from the queue one at a time until told to stop."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        worker_id: str | None = None,
        handlers: Mapping[str, Handler] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.worker_id = worker_id or new_worker_id()
        self.handlers = HANDLERS if handlers is None else handlers

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; the job in hand is finished first. A database outage
        is logged and waited out rather than ending the worker."""
        log.info("worker %s started", self.worker_id, extra={"worker_id": self.worker_id})
        while not stop.is_set():
            try:
                worked = self.run_once()
            except SQLAlchemyError as exc:
                log.warning(
                    "worker %s: database unavailable (%s)",
                    self.worker_id,
                    type(exc).__name__,
                    extra={"worker_id": self.worker_id},
                )
                worked = False
            if not worked:
                stop.wait(self.settings.job_poll_s)
        log.info("worker %s stopped", self.worker_id, extra={"worker_id": self.worker_id})

    def run_once(self) -> bool:
        """Claim and run one job; False when there was none to run."""
        job = claim(self.engine, self.worker_id, self.settings.job_lease_s)
        if job is None:
            return False
        started = time.perf_counter()
        status = self._run(job)
        _log_finished(job, status, time.perf_counter() - started, self.worker_id)
        return True

    def _run(self, job: ClaimedJob) -> str:
        """Run the handler and record the outcome; the job's new status ("lost" when it was
        taken over meanwhile and nothing was written)."""
        try:
            handler = handler_for(job.kind, self.handlers)
            context = JobContext(self.engine, self.settings, self._actor(job), job.id)
            with self._heartbeat(job):
                result = handler(context, job.payload)
            return "done" if complete(self.engine, job.id, self.worker_id, result) else "lost"
        except Exception as exc:
            _log_error(job, exc)
            retry = None if isinstance(exc, PERMANENT) else backoff_s(job.attempts)
            status = fail(
                self.engine, job.id, self.worker_id, describe_error(exc), retry_in_s=retry
            )
            return status or "lost"

    def _actor(self, job: ClaimedJob) -> str:
        """Who the audit trail names: the job, on behalf of the person who asked for it."""
        if job.requested_by is None:
            return f"job:{job.id}"
        with self.engine.connect() as conn:
            email = conn.execute(
                select(Person.email).where(Person.id == job.requested_by)
            ).scalar_one_or_none()
        return f"job:{job.id} for {email}" if email else f"job:{job.id}"

    @contextmanager
    def _heartbeat(self, job: ClaimedJob) -> Iterator[None]:
        """Extend the lease every third of it while the handler runs, so a long job (a whole
        cycle) is not taken over from a worker that is alive."""
        done = threading.Event()
        lease_s = self.settings.job_lease_s

        def beat() -> None:
            while not done.wait(lease_s / 3):
                try:
                    held = heartbeat(self.engine, job.id, self.worker_id, lease_s)
                except SQLAlchemyError as exc:
                    log.warning("job %s: heartbeat failed (%s)", job.id, type(exc).__name__)
                    continue
                if not held:
                    log.warning(
                        "job %s: lease lost to another worker",
                        job.id,
                        extra={"job_id": job.id, "kind": job.kind, "worker_id": self.worker_id},
                    )
                    return

        beater = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
        beater.start()
        try:
            yield
        finally:
            done.set()
            beater.join()


def _log_finished(job: ClaimedJob, status: str, seconds: float, worker_id: str) -> None:
    fields = {
        "job_id": job.id,
        "kind": job.kind,
        "status": status,
        "attempt": job.attempts,
        "seconds": round(seconds, 3),
        "worker_id": worker_id,
    }
    level = logging.INFO if status == "done" else logging.WARNING
    log.log(
        level,
        "job %s %s: %s after attempt %s/%s in %.2f s",
        job.id,
        job.kind,
        status,
        job.attempts,
        job.max_attempts,
        seconds,
        extra=fields,
    )


def _log_error(job: ClaimedJob, exc: Exception) -> None:
    """The error's type, and for an unexpected one where it was raised, never its message
    (which may quote evidence); the stored job error carries the safe part of it."""
    fields = {"job_id": job.id, "kind": job.kind, "error_type": type(exc).__name__}
    if isinstance(exc, PERMANENT):
        log.warning("job %s %s refused: %s", job.id, job.kind, type(exc).__name__, extra=fields)
        return
    where = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "job %s %s raised %s at\n%s", job.id, job.kind, type(exc).__name__, where, extra=fields
    )


def start_in_thread(engine: Engine, settings: Settings) -> tuple[threading.Thread, threading.Event]:
    """One worker in a daemon thread (for `fairdraft serve`); set the event to stop it, then
    join the thread (it finishes the job in hand first)."""
    stop = threading.Event()
    worker = Worker(engine, settings)
    thread = threading.Thread(target=worker.run, args=(stop,), name="fairdraft-worker", daemon=True)
    thread.start()
    return thread, stop


def run_worker(settings: Settings, *, concurrency: int = 1) -> None:
    """`fairdraft worker`: `concurrency` workers on the store until SIGINT or SIGTERM. The
    first signal lets running jobs finish; a second stops at once (their leases run out and
    other workers take them over)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("stopping after the running jobs (signal %s again to stop now)", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_store(settings) as engine:
            threads = [
                threading.Thread(
                    target=Worker(engine, settings).run,
                    args=(stop,),
                    name=f"worker-{n}",
                    daemon=True,
                )
                for n in range(concurrency)
            ]
            for thread in threads:
                thread.start()
            _wait_for(threads)
    except KeyboardInterrupt:
        log.warning("stopped now; unfinished jobs are taken over after their lease")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _wait_for(threads: list[threading.Thread]) -> None:
    """Join with a timeout, so the main thread keeps handling signals."""
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.5)
