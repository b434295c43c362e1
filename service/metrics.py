"""What the service tells an operator, in the Prometheus text format (prometheus-client):
the one place the metric families are defined. README's "Metrics" has the alerts.

Recorded as the work happens (per process; summed over processes in multiprocess mode):

- `fairdraft_http_request_duration_seconds{method, route, status}`: every HTTP answer,
  by the route's template (`/api/v1/drafts/{draft_id}`, never the path a client sent, so no
  client can add series) and the status class (`2xx` ... `5xx`);
- `fairdraft_job_duration_seconds{kind, outcome}`: each job attempt, `done`, `retried`
  (it failed and another attempt is due) or `failed`;
- `fairdraft_draft_duration_seconds{kind, drafter}`: each stored draft's own work
  (retrieval, the drafter, the citation check and storing; not its wait for a turn), and
  `fairdraft_drafts_total{kind, outcome}`: `drafted`, `empty` (no evidence) or `failed`;
- `fairdraft_llm_call_duration_seconds{outcome}`: each chat model call, `ok`, `timeout`,
  `http_error`, `connection_error` or `error`, and `fairdraft_llm_tokens_total{type}`
  (`prompt`, `completion`) from the usage the OpenAI-compatible answer reports;
- `fairdraft_embedding_texts_total{model}` and `fairdraft_embedding_seconds_total{model}`:
  texts embedded and the seconds it took (their rates' ratio is the throughput);
- `fairdraft_bias_report_duration_seconds{outcome}`: each cycle bias report job;
- `fairdraft_reminders_total{channel, outcome}`: reminder messages `sent` or `failed`.

Read when scraped:

- `fairdraft_job_queue_depth{kind, state}`: our jobs `waiting` (due, not started),
  `scheduled` (a retry waiting out its back-off) and `running`, from the database, so
  every worker's jobs count whatever process answers;
- `fairdraft_job_queue_oldest_age_seconds{kind}`: how long the oldest waiting job has been
  due (0 when none waits);
- `fairdraft_db_pool_connections{state}` (`in_use`, `idle`) and
  `fairdraft_db_pool_max_connections`: the SQLAlchemy pool (per process, summed);
- `fairdraft_database_up`: 1 when the scrape could read the queue, else 0.

No label ever holds a person, an id, a path or text: labels are route templates, job and
draft kinds, outcomes and model names, all from fairdraft's own code and settings.

Why one `Metrics` per process (`process_metrics()`), the one piece of module state here:
prometheus-client's values belong to a process. In multiprocess mode each process writes
its values to files of its own, keyed by metric name and labels, and two objects of the
same name in one process would overwrite each other's counts; and the places that record
(the job runner, the chat model call, the job handlers) run inside code that the app, the
worker and the CLI share, several calls away from any edge. So each process has one
`Metrics`, made on first use; what is made at the edge is the registry a scrape reads
(`exposition`): this process's families (or, in multiprocess mode, every process's files)
and collectors that read the database and the pool at that moment, from the engine passed
in. Tests build their own `Metrics` on their own registry where they need isolation.
"""

import glob
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from sqlalchemy import Engine, case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import Pool

from retrieval.embedding import Embedder, Vectors
from service.connectors.identities import count_unmatched
from service.db.models import PROCRASTINATE_JOBS, ConnectorRun, Job
from service.settings import Settings

log = logging.getLogger("fairdraft.metrics")

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
JOBS_QUEUE = "jobs"  # service.jobs.queue.JOBS_QUEUE (not imported: jobs import this module)
QUEUE_STATES = ("waiting", "scheduled", "running")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # a path no route answers: one series for all of them

# Seconds; each family's buckets span what its work takes, fast to slow.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0)
DRAFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
LLM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
REPORT_BUCKETS = (0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
_LIVE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


class Metrics:
    """The families recorded as fairdraft works, on `registry` (a fresh one if none).

    Every method is cheap: a dictionary look-up and an add under a lock (about 3 to 8 us
    on this machine), so recording stays off any request's or job's critical path."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        on = self.registry
        self._http_series: dict[tuple[str, str, int], Histogram] = {}
        self.http = Histogram(
            "fairdraft_http_request_duration_seconds",
            "HTTP answers by method, route template and status class, from the request "
            "reaching the app to the last byte of the answer.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=on,
        )
        self.jobs = Histogram(
            "fairdraft_job_duration_seconds",
            "Job attempts by kind and outcome (done, retried, failed).",
            ["kind", "outcome"],
            buckets=JOB_BUCKETS,
            registry=on,
        )
        self.drafts = Histogram(
            "fairdraft_draft_duration_seconds",
            "Stored drafts by kind and drafter (llm, offline): retrieval, writing, the "
            "citation check and storing, not the wait for a turn.",
            ["kind", "drafter"],
            buckets=DRAFT_BUCKETS,
            registry=on,
        )
        self.draft_outcomes = Counter(
            "fairdraft_drafts",
            "Drafts asked for by kind and outcome (drafted, empty: no evidence, failed).",
            ["kind", "outcome"],
            registry=on,
        )
        self.llm = Histogram(
            "fairdraft_llm_call_duration_seconds",
            "Chat model calls (with the client's own retries) by outcome: ok, timeout, "
            "http_error, connection_error, error.",
            ["outcome"],
            buckets=LLM_BUCKETS,
            registry=on,
        )
        self.llm_tokens = Counter(
            "fairdraft_llm_tokens",
            "Tokens of chat model calls, as the server's usage reports them, by type "
            "(prompt, completion).",
            ["type"],
            registry=on,
        )
        self.embedded_texts = Counter(
            "fairdraft_embedding_texts", "Texts embedded, by model.", ["model"], registry=on
        )
        self.embedding_seconds = Counter(
            "fairdraft_embedding_seconds",
            "Seconds spent embedding, by model (texts / seconds is the throughput).",
            ["model"],
            registry=on,
        )
        self.reminders = Counter(
            "fairdraft_reminders",
            "Reminder messages by channel (email, slack, teams) and outcome (sent, failed).",
            ["channel", "outcome"],
            registry=on,
        )
        self.bias_reports = Histogram(
            "fairdraft_bias_report_duration_seconds",
            "Cycle bias report jobs by outcome (done, failed).",
            ["outcome"],
            buckets=REPORT_BUCKETS,
            registry=on,
        )
        # Set from the pool at each scrape (and, with several processes, after each request
        # of each process); summed over the live processes in multiprocess mode.
        self.pool_connections = Gauge(
            "fairdraft_db_pool_connections",
            "Database connections of the SQLAlchemy pool by state (in_use, idle).",
            ["state"],
            multiprocess_mode="livesum",
            registry=on,
        )
        self.pool_max = Gauge(
            "fairdraft_db_pool_max_connections",
            "The most connections the pool opens (its size plus overflow).",
            multiprocess_mode="livesum",
            registry=on,
        )

    # --- recording ----------------------------------------------------------------------

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        """One HTTP answer. `method` is kept only when it is a standard one (a client may
        send any word there); `status` is reduced to its class. The series is looked up
        once and kept (bounded: routes x methods x statuses), halving the cost per request."""
        key = (method if method in METHODS else "other", route, status)
        series = self._http_series.get(key)
        if series is None:
            series = self.http.labels(key[0], route, status_class(status))
            self._http_series[key] = series
        series.observe(seconds)

    def job(self, kind: str, outcome: str, seconds: float) -> None:
        """One job attempt ended: done, retried or failed."""
        self.jobs.labels(kind, outcome).observe(seconds)

    def draft(self, kind: str, drafter: str, seconds: float) -> None:
        """A draft was stored after `seconds` of its own work."""
        self.drafts.labels(kind, drafter).observe(seconds)
        self.draft_outcomes.labels(kind, "drafted").inc()

    def draft_not_stored(self, kind: str, outcome: str) -> None:
        """A draft asked for and not stored: `empty` (no evidence) or `failed`."""
        self.draft_outcomes.labels(kind, outcome).inc()

    def llm_call(
        self, outcome: str, seconds: float, *, prompt_tokens: int = 0, completion_tokens: int = 0
    ) -> None:
        """One chat model call, with the tokens its answer's usage reported."""
        self.llm.labels(outcome).observe(seconds)
        if prompt_tokens > 0:
            self.llm_tokens.labels("prompt").inc(prompt_tokens)
        if completion_tokens > 0:
            self.llm_tokens.labels("completion").inc(completion_tokens)

    def embedded(self, model: str, texts: int, seconds: float) -> None:
        self.embedded_texts.labels(model).inc(texts)
        self.embedding_seconds.labels(model).inc(seconds)

    def reminder(self, channel: str, outcome: str) -> None:
        """One reminder message tried: `sent` or `failed`."""
        self.reminders.labels(channel, outcome).inc()

    def bias_report(self, outcome: str, seconds: float) -> None:
        self.bias_reports.labels(outcome).observe(seconds)

    def pool(self, pool: Pool) -> None:
        """The pool's state now (a QueuePool's counts; other pools report nothing)."""
        state = pool_state(pool)
        if state is None:
            return
        self.pool_connections.labels("in_use").set(state.in_use)
        self.pool_connections.labels("idle").set(state.idle)
        self.pool_max.set(state.max_connections)


def status_class(status: int) -> str:
    """200 -> "2xx": five series at most, whatever a handler answers."""
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


@dataclass(frozen=True)
class PoolState:
    in_use: int
    idle: int
    max_connections: float  # +Inf for a pool without an overflow limit


def pool_state(pool: Pool) -> PoolState | None:
    """A QueuePool's counts (what make_engine builds); None for another kind of pool. The
    overflow limit is the pool's constructor argument, kept as `_max_overflow` (-1: none):
    SQLAlchemy has no public reader for it."""
    counts = [getattr(pool, name, None) for name in ("checkedout", "checkedin", "size")]
    if not all(callable(count) for count in counts):
        return None
    in_use, idle, size = (int(count()) for count in counts)  # type: ignore[misc]
    overflow = getattr(pool, "_max_overflow", 0)
    limit = float("inf") if overflow == -1 else float(size + max(int(overflow), 0))
    return PoolState(in_use, idle, limit)


_process: Metrics | None = None
_process_lock = threading.Lock()


def process_metrics() -> Metrics:
    """This process's one `Metrics` (see the module's docstring for why there is one)."""
    global _process
    if _process is None:
        with _process_lock:
            if _process is None:
                _process = Metrics()
    return _process


# --- embedding, measured where the embedder is handed out ---------------------------------


class MeteredEmbedder:
    """An embedder that counts its texts and seconds into `metrics`; wraps any Embedder."""

    def __init__(self, inner: Embedder, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        started = time.perf_counter()
        vectors = self.inner.embed(texts)
        self.metrics.embedded(self.inner.name, len(texts), time.perf_counter() - started)
        return vectors


def metered(embedder: Embedder, metrics: Metrics) -> Embedder:
    """`embedder` counting into `metrics`; one already counting is returned as it is, so a
    text is never counted twice when the app and the job runner both wrap."""
    if isinstance(embedder, MeteredEmbedder):
        return embedder
    return MeteredEmbedder(embedder, metrics)


# --- read at scrape: the job queue ----------------------------------------------------------


@dataclass(frozen=True)
class QueueRow:
    kind: str
    state: str  # waiting, scheduled, running
    jobs: int
    oldest_s: float | None  # the oldest waiting job's time since it was due


def queue_rows(engine: Engine) -> list[QueueRow]:
    """Our jobs not ended, counted by kind and state in one query. A job is due from when
    it was queued or, for a retry, from its scheduled time."""
    p = PROCRASTINATE_JOBS.c
    due = p.scheduled_at.is_(None) | (p.scheduled_at <= func.now())
    jobs = (
        select(
            p.task_name.label("kind"),
            case((p.status == "doing", "running"), (due, "waiting"), else_="scheduled").label(
                "state"
            ),
            func.extract("epoch", func.now() - func.coalesce(p.scheduled_at, Job.created_at)).label(
                "waited_s"
            ),
        )
        .select_from(PROCRASTINATE_JOBS)
        .outerjoin(Job, Job.procrastinate_job_id == p.id)
        .where(p.queue_name == JOBS_QUEUE, p.status.in_(("todo", "doing")))
        .subquery()
    )
    query = select(
        jobs.c.kind,
        jobs.c.state,
        func.count().label("jobs"),
        func.max(jobs.c.waited_s).label("oldest_s"),
    ).group_by(jobs.c.kind, jobs.c.state)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        QueueRow(
            str(r.kind),
            str(r.state),
            int(r.jobs),
            None if r.oldest_s is None else max(float(r.oldest_s), 0.0),
        )
        for r in rows
    ]


class QueueCollector(Collector):
    """The queue's depth and age by kind, read from the database when scraped. Every known
    kind gets a series, zero when idle, so an alert sees 0 rather than nothing."""

    def __init__(self, engine: Engine, kinds: Iterable[str]) -> None:
        self.engine = engine
        self.kinds = sorted(kinds)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "fairdraft_database_up", "1 when this scrape could read the job queue, else 0."
        )
        try:
            rows = queue_rows(self.engine)
        except SQLAlchemyError as exc:
            log.warning(
                "metrics: the job queue could not be read (%s)",
                type(exc).__name__,
                extra={"event": "metrics_queue_unread", "error_type": type(exc).__name__},
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from queue_families(rows, self.kinds)


def queue_families(rows: Sequence[QueueRow], kinds: Sequence[str]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "fairdraft_job_queue_depth",
        "Jobs not ended, by kind and state (waiting: due and not started; scheduled: a retry "
        "waiting out its back-off; running).",
        labels=["kind", "state"],
    )
    age = GaugeMetricFamily(
        "fairdraft_job_queue_oldest_age_seconds",
        "Seconds the oldest waiting job of a kind has been due (0: none waits).",
        labels=["kind"],
    )
    counts = {(row.kind, row.state): row.jobs for row in rows}
    oldest = {row.kind: row.oldest_s or 0.0 for row in rows if row.state == "waiting"}
    for kind in sorted({*kinds, *(row.kind for row in rows)}):
        for state in QUEUE_STATES:
            depth.add_metric([kind, state], counts.get((kind, state), 0))
        age.add_metric([kind], oldest.get(kind, 0.0))
    yield depth
    yield age


# --- read at scrape: connectors ---------------------------------------------------------

CONNECTOR_OUTCOMES = ("inserted", "updated", "unchanged", "deleted", "skipped")


class ConnectorCollector(Collector):
    """Connector runs as the database has them, so every worker's runs count wherever
    they ran: records by outcome, rate-limit waits and their seconds, the last run's end
    by status, and the identities still unmatched per system (HR's to-do)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        runs = ConnectorRun.__table__.c
        totals = select(
            runs.connector,
            *(func.sum(runs[name]).label(name) for name in CONNECTOR_OUTCOMES),
            func.sum(runs.rate_limit_waits).label("waits"),
            func.sum(runs.waited_s).label("waited_s"),
        ).group_by(runs.connector)
        last = (
            select(runs.connector, runs.status, func.max(runs.finished_at).label("at"))
            .where(runs.finished_at.is_not(None))
            .group_by(runs.connector, runs.status)
        )
        try:
            with self.engine.connect() as conn:
                total_rows = conn.execute(totals).all()
                last_rows = conn.execute(last).all()
                unmatched = count_unmatched(conn)
        except SQLAlchemyError as exc:
            log.warning("metrics: connector runs could not be read (%s)", type(exc).__name__)
            return
        records = CounterMetricFamily(
            "fairdraft_connector_records",
            "Records connector runs handled, by connector and outcome (inserted, updated, "
            "unchanged, deleted, skipped).",
            labels=["connector", "outcome"],
        )
        waits = CounterMetricFamily(
            "fairdraft_connector_rate_limit_waits",
            "Rate-limit waits connector runs sat through, by connector.",
            labels=["connector"],
        )
        waited = CounterMetricFamily(
            "fairdraft_connector_rate_limit_wait_seconds",
            "Seconds connector runs waited for rate limits, by connector.",
            labels=["connector"],
        )
        for row in total_rows:
            for name in CONNECTOR_OUTCOMES:
                records.add_metric([row.connector, name], int(row._mapping[name] or 0))
            waits.add_metric([row.connector], int(row.waits or 0))
            waited.add_metric([row.connector], float(row.waited_s or 0.0))
        ended = GaugeMetricFamily(
            "fairdraft_connector_last_run_timestamp_seconds",
            "When a connector's last run with each status (succeeded, paused, failed) ended.",
            labels=["connector", "status"],
        )
        for connector, status, at in last_rows:
            ended.add_metric([connector, status], at.timestamp())
        identities = GaugeMetricFamily(
            "fairdraft_connector_unmatched_identities",
            "Identities a source names that no employee is matched to, by system (HR's "
            "to-do, as its connectors page counts them: not those unmatched on purpose).",
            labels=["system"],
        )
        for system, count in sorted(unmatched.items()):
            identities.add_metric([system], count)
        yield from (records, waits, waited, ended, identities)


class _Families(Collector):
    """Another registry's families, as one collector of the scrape's registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


# --- the scrape ---------------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    """The folder every process writes its values to, when several processes serve."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def exposition(
    metrics: Metrics, engine: Engine, kinds: Iterable[str], *, directory: Path | None = None
) -> bytes:
    """The text a scrape gets: the recorded families (this process's, or every process's
    files in `directory`), the pool as it is now, and the queue read from the database."""
    metrics.pool(engine.pool)
    registry = CollectorRegistry(auto_describe=False)
    if directory is None:
        registry.register(_Families(metrics.registry))
    else:
        forget_dead_processes(directory)
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    registry.register(QueueCollector(engine, kinds))
    registry.register(ConnectorCollector(engine))
    return generate_latest(registry)


def forget_dead_processes(directory: Path) -> None:
    """Drop the live gauges (the pool's) of processes that have ended, so a restarted
    worker's connections are not counted twice; their counters and histograms stay, as
    counts that happened."""
    pids = {
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _LIVE_FILE.match(name)) is not None
    }
    for pid in pids:
        if not _alive(pid):
            mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiprocess(settings: Settings) -> Path:
    """Before `fairdraft serve` starts several processes: the folder they share their
    values through (PROMETHEUS_MULTIPROC_DIR if the operator set one, else `metrics/` in
    the data folder), emptied of an earlier run's files, and set in the environment the
    processes inherit. prometheus-client reads it when first imported, so it must be set
    before the processes start."""
    directory = multiprocess_dir() or settings.data_dir / "metrics"
    directory.mkdir(parents=True, exist_ok=True)
    for stale in glob.glob(str(directory / "*.db")):
        os.remove(stale)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory
