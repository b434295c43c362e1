"""The worker: a procrastinate worker on the store, kept alive through database outages.

`fairdraft serve` runs one in a thread of its own (`start_in_thread`); `fairdraft worker`
runs one with any concurrency in a process of its own (`run_worker`) until SIGINT or
SIGTERM. procrastinate fetches jobs as the database announces them (LISTEN/NOTIFY, with a
poll every `job_poll_s` besides), runs each kind's task in a thread, sends the worker's
heartbeat, and defers the periodic tasks (service.jobs.periodic).

procrastinate's worker ends when it loses the database. `Worker.run` starts it again: it
waits longer and longer between tries while the database cannot be reached
(`DatabaseBackoff`), logs the outage when it starts and when it ends (not at every try),
and on the database's return takes over the jobs of workers that died meanwhile and carries
on, with no restart of the process.

Log lines name jobs, kinds, statuses and seconds: never a payload, a result or an error's
text, which could quote evidence.
"""

import asyncio
import contextlib
import logging
import random
import signal
import threading
import time
from types import FrameType

import psycopg
from procrastinate import PsycopgConnector
from procrastinate.app import WorkerOptions
from procrastinate.exceptions import ConnectorException
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from service.db.engine import CONNECT_TIMEOUT_S
from service.jobs.handlers import HANDLERS
from service.jobs.periodic import take_over_stalled_jobs
from service.jobs.queue import JOBS_QUEUE, jobs_due
from service.jobs.runner import RESOURCES, WorkerResources
from service.jobs.tasks import build_app
from service.settings import Settings
from service.store import EmbedderSource, ParserSource, open_store

log = logging.getLogger("fairdraft.jobs")
DB_RETRY_MAX_S = 30.0  # the longest wait between tries while the database is unreachable
DB_RETRY_JITTER = 0.2  # each wait is shortened by up to this share, so workers spread out
STOP_CHECK_S = 0.05  # how soon a running worker notices it was told to stop


class WorkerStopped(Exception):
    """procrastinate's worker ended without being told to (a side task of it, such as its
    heartbeat, lost the database)."""


# What a worker meets while the database is away: procrastinate wraps psycopg's errors in
# ConnectorException; the pool's and the probe's are psycopg's; the takeover's, SQLAlchemy's.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    ConnectorException,
    psycopg.Error,
    SQLAlchemyError,
    OSError,
    WorkerStopped,
)


class DatabaseBackoff:
    """The waits between tries while the database is unreachable: `first_s`, doubling up to
    `max_s`, each shortened at random by up to `jitter` of itself so that many workers do
    not all knock at once when it returns. Logs the outage once when it starts and once when
    it ends; every try between is logged at debug level only."""

    def __init__(
        self,
        worker_name: str,
        *,
        first_s: float,
        max_s: float = DB_RETRY_MAX_S,
        jitter: float = DB_RETRY_JITTER,
    ) -> None:
        self.worker_name = worker_name
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

    def failed(self, error_type: str) -> float:
        """Record a try that could not reach the database; the seconds to wait."""
        wait_s = self.next_wait_s()
        fields = {
            "worker": self.worker_name,
            "error_type": error_type,
            "retry_in_s": round(wait_s, 3),
        }
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.warning(
                "worker %s: database unavailable (%s), retrying in %.1f s",
                self.worker_name,
                error_type,
                wait_s,
                extra=fields,
            )
        else:
            log.debug(
                "worker %s: database still unavailable, retrying in %.1f s",
                self.worker_name,
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
            self.worker_name,
            seconds,
            extra={"worker": self.worker_name, "seconds": round(seconds, 3)},
        )
        self.down_since = None
        self.failures = 0


class Worker:
    """One procrastinate worker running `concurrency` jobs at once, for as long as asked."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        name: str = "fairdraft",
        concurrency: int = 1,
        embedder: EmbedderSource | None = None,
        parser: ParserSource | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.name = name
        self.concurrency = concurrency
        # Workers of one process share one (the app passes its own); a lone worker owns one.
        self.embedder = embedder or EmbedderSource(settings)
        self.parser = parser or ParserSource(settings)
        self.backoff = DatabaseBackoff(name, first_s=settings.job_poll_s)
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; the jobs in hand are finished first. A database outage
        is waited out, longer and longer, rather than ending the worker."""
        asyncio.run(self._supervise(stop))

    def run_once(self) -> bool:
        """Run the jobs that are due now, one at a time, and return: False when there was
        none. For tests and scripts; periodic tasks are not run."""
        with self.engine.connect() as conn:
            if not jobs_due(conn):
                return False
        asyncio.run(self._drain())
        return True

    async def _supervise(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.name, extra={"worker": self.name})
        while not stop.is_set():
            try:
                await self._work(stop)
            except OUTAGE_ERRORS as exc:
                await _wait(stop, self.backoff.failed(type(exc).__name__))
        log.info("worker %s stopped", self.name, extra={"worker": self.name})

    async def _work(self, stop: threading.Event) -> None:
        """One run of procrastinate's worker, after taking over dead workers' jobs; returns
        when `stop` is set and the jobs in hand are done."""
        await self._probe()
        self.backoff.answered()
        app = build_app(
            self._connector(),
            HANDLERS,
            periodic=True,
            reminders_cron=self.settings.reminders_cron,
            connectors_cron=self.settings.connectors_cron,
        )
        async with app.open_async():
            await take_over_stalled_jobs(
                app.job_manager, self.engine, stalled_s=self.settings.job_stalled_s
            )
            running = asyncio.create_task(app.run_worker_async(**self._options(wait=True)))
            told = asyncio.create_task(_until_set(stop))
            await asyncio.wait({running, told}, return_when=asyncio.FIRST_COMPLETED)
            told.cancel()
            if not running.done():
                running.cancel()  # procrastinate stops gracefully: running jobs finish
            with contextlib.suppress(asyncio.CancelledError):
                await running
        if not stop.is_set():
            raise WorkerStopped

    async def _drain(self) -> None:
        options = self._options(wait=False)
        options["queues"] = [JOBS_QUEUE]
        options["listen_notify"] = False
        app = build_app(self._connector(), HANDLERS, periodic=False)
        async with app.open_async():
            await app.run_worker_async(**options)

    async def _probe(self) -> None:
        """One connection, refused at once (or after the connect timeout) while the
        database is away, where a pool would keep trying for half a minute."""
        connection = await psycopg.AsyncConnection.connect(
            self.conninfo, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True
        )
        await connection.close()

    def _connector(self) -> PsycopgConnector:
        return PsycopgConnector(
            conninfo=self.conninfo,
            min_size=1,
            max_size=self.concurrency + 2,
            timeout=CONNECT_TIMEOUT_S,  # a pooled connection not had by then is an outage
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
        )

    def _options(self, *, wait: bool) -> WorkerOptions:
        resources = WorkerResources(self.engine, self.settings, self.embedder, self.parser)
        stalled_s = self.settings.job_stalled_s
        return {
            "name": self.name,
            "wait": wait,
            "concurrency": self.concurrency,
            "fetch_job_polling_interval": self.settings.job_poll_s,
            "update_heartbeat_interval": stalled_s / 4,
            "stalled_worker_timeout": stalled_s,
            "delete_jobs": "never",  # a job's status is read from its row
            "install_signal_handlers": False,  # ours stop it (run_worker), or the app's
            "additional_context": {RESOURCES: resources},
        }


async def _until_set(stop: threading.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(STOP_CHECK_S)


async def _wait(stop: threading.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if told to stop meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_until_set(stop), timeout=seconds)


def start_in_thread(
    engine: Engine,
    settings: Settings,
    *,
    embedder: EmbedderSource | None = None,
    parser: ParserSource | None = None,
) -> tuple[threading.Thread, threading.Event]:
    """One worker in a daemon thread (for `fairdraft serve`, sharing the app's models);
    set the event to stop it, then join the thread (it finishes the jobs in hand first)."""
    stop = threading.Event()
    worker = Worker(engine, settings, name="serve", embedder=embedder, parser=parser)
    thread = threading.Thread(target=worker.run, args=(stop,), name="fairdraft-worker", daemon=True)
    thread.start()
    return thread, stop


def run_worker(settings: Settings, *, concurrency: int = 1) -> None:
    """`fairdraft worker`: a worker running `concurrency` jobs at once until SIGINT or
    SIGTERM. The first signal lets running jobs finish; a second stops at once (their
    worker's heartbeat stops with it, and another worker takes them over)."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.warning("stopping after the running jobs (signal %s again to stop now)", signum)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with open_store(settings) as engine:
            worker = Worker(engine, settings, name="worker", concurrency=concurrency)
            thread = threading.Thread(target=worker.run, args=(stop,), name="worker", daemon=True)
            thread.start()
            while thread.is_alive():
                thread.join(timeout=0.5)  # with a timeout, so signals are handled meanwhile
    except KeyboardInterrupt:
        log.warning("stopped now; unfinished jobs are taken over once the worker counts as dead")
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
