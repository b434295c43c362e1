"""The worker: claim a job, run its handler, store the result or the failure, repeat.

One worker runs one job at a time. `fairdraft serve` runs one in a thread of its own
(`start_in_thread`); `fairdraft worker` runs any number in a process of their own
(`run_worker`) until SIGINT or SIGTERM. While a job runs, a heartbeat extends its lease, so
only a worker that really died loses its job to another.

While the database cannot be reached the worker waits longer and longer between tries
(`DatabaseBackoff`), logs the outage when it starts and when it ends (not at every try), and
carries on by itself once the database answers again.

Log lines name the job, its kind, status and seconds: never its payload, its result or an
error's text, which could quote evidence.
"""

import itertools
import logging
import os
import random
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
from service.store import EmbedderSource, open_store

log = logging.getLogger("fairdraft.jobs")
MAX_BACKOFF_S = 60.0
DB_RETRY_MAX_S = 30.0  # the longest wait between tries while the database is unreachable
DB_RETRY_JITTER = 0.2  # each wait is shortened by up to this share, so workers spread out
_worker_numbers = itertools.count(1)


def new_worker_id() -> str:
    """hostname:pid:n, unique per worker in this process, readable in the jobs table."""
    return f"{socket.gethostname()}:{os.getpid()}:{next(_worker_numbers)}"


def backoff_s(attempts: int) -> float:
    """Seconds before retrying after `attempts` tries: 2, 4, 8, ... capped at a minute."""
    return min(2.0**attempts, MAX_BACKOFF_S)


class DatabaseBackoff:
    """The waits between tries while the database is unreachable: `first_s`, doubling up to
    `max_s`, each shortened at random by up to `jitter` of itself so that many workers do
    not all knock at once when it returns. Logs the outage once when it starts and once when
    it ends; every try between is logged at debug level only."""

    def __init__(
        self,
        worker_id: str,
        *,
        first_s: float,
        max_s: float = DB_RETRY_MAX_S,
        jitter: float = DB_RETRY_JITTER,
    ) -> None:
        self.worker_id = worker_id
        self.first_s = first_s
        self.max_s = max(max_s, first_s)
        self.jitter = jitter
        self.failures = 0
        self.down_since: float | None = None
        self._random = random.Random()

    def next_wait_s(self) -> float:
        """The next wait; a doubling kept below 2**32 so a long outage cannot overflow."""
        nominal = min(self.first_s * 2.0 ** min(self.failures, 32), self.max_s)
        self.failures += 1
        return nominal * (1 - self.jitter * self._random.random())

    def failed(self, exc: SQLAlchemyError) -> float:
        """Record a try that could not reach the database; the seconds to wait."""
        wait_s = self.next_wait_s()
        fields = {
            "worker_id": self.worker_id,
            "error_type": type(exc).__name__,
            "retry_in_s": round(wait_s, 3),
        }
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "worker %s: database unavailable (%s), retrying in %.1f s",
                self.worker_id,
                type(exc).__name__,
                wait_s,
                extra=fields,
            )
        else:
            log.debug(
                "worker %s: database still unavailable, retrying in %.1f s",
                self.worker_id,
                wait_s,
                extra=fields,
            )
        return wait_s

    def answered(self) -> None:
        """The database answered: end an outage (logged with its length), reset the waits."""
        if self.down_since is None:
            return
        seconds = time.monotonic() - self.down_since
        log.info(
            "worker %s: database back after %.1f s",
            self.worker_id,
            seconds,
            extra={"worker_id": self.worker_id, "seconds": round(seconds, 3)},
        )
        self.down_since = None
        self.failures = 0


class Worker:
    """Runs jobs from the queue one at a time until told to stop."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        worker_id: str | None = None,
        handlers: Mapping[str, Handler] | None = None,
        embedder: EmbedderSource | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        # Workers of one process share one (a pool passes its own); a lone worker owns one.
        self.embedder = embedder or EmbedderSource(settings)
        self.worker_id = worker_id or new_worker_id()
        self.handlers = HANDLERS if handlers is None else handlers
        self.backoff = DatabaseBackoff(self.worker_id, first_s=settings.job_poll_s)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; the job in hand is finished first. A database outage
        is waited out, longer and longer, rather than ending the worker."""
        log.info("worker %s started", self.worker_id, extra={"worker_id": self.worker_id})
        while not stop.is_set():
            try:
                worked = self.run_once()
            except SQLAlchemyError as exc:
                stop.wait(self.backoff.failed(exc))
                continue
            self.backoff.answered()
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
            context = JobContext(
                self.engine, self.settings, self._actor(job), job.id, self.embedder
            )
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


def start_in_thread(
    engine: Engine, settings: Settings, *, embedder: EmbedderSource | None = None
) -> tuple[threading.Thread, threading.Event]:
    """One worker in a daemon thread (for `fairdraft serve`, sharing the app's embedder);
    set the event to stop it, then join the thread (it finishes the job in hand first)."""
    stop = threading.Event()
    worker = Worker(engine, settings, embedder=embedder)
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
            embedder = EmbedderSource(settings)
            threads = [
                threading.Thread(
                    target=Worker(engine, settings, embedder=embedder).run,
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
