"""API load benchmark: concurrent managers and HR admins reading evidence packs and drafts.

    python -m evals.bench_api --people 600 --clients 50 --seconds 60

Generates the synthetic org, ingests it with the hashing embedder into an embedded
Postgres, drafts a self-reflection for everyone with the offline drafter, grants two people
the HR admin role and issues one API token per client: each client speaks for a real
person (a manager, who reads their direct and indirect reports, or an HR admin, who reads
everyone) and only asks for things in that person's scope. Then it starts `fairdraft serve`
as a subprocess on a free loopback port (FAIRDRAFT_SERVE_WORKER=false, the same database)
and, from a second process, runs `--clients` closed-loop asyncio clients (one keep-alive
httpx connection each; between requests an exponential think time of mean `--think-ms`,
none by default) for a `--warmup` that is not counted and then `--seconds` that are. Each
request is, at random (the shares with the default `--evidence-share 0.5`):

- 50% `GET /api/v1/people/{id}/evidence?kind=self_reflection&period=2026-H1` (hybrid
  retrieval: the person's chunks, ranked, diversified, fitted to a token budget);
- 40% `GET /api/v1/drafts/{id}` (a draft with its current version and citation check);
- 10% `GET /api/v1/people/{id}/drafts` (the person's drafts the caller may see).

Prints requests per second, p50 / p95 / p99 latency as the client saw it, errors (a non-2xx
answer or a failed request), the same per endpoint, the in-app time per request (from the
server's request log, so queueing outside the app shows as the difference), the new
database sessions (pool churn), where the machine's CPU went during the counted window
(cores kept busy by the server, Postgres, the load generator and anything else), and the
target: p95 under 100 ms with no errors. Ends with one JSON line of the figures; exits 1
when any request failed.

A closed loop keeps `--clients` requests in flight, so by Little's law the mean latency is
clients / throughput whatever the server does (`littles_law_mean_ms`): with no think time
the latency target is a throughput target (50 clients under 100 ms need ~500+ requests/s).

`--workers N` runs `fairdraft serve --workers N` (one process per core is what a
deployment would use; `make bench-api` passes 2, this machine's cores); `--pool-size N`
sets FAIRDRAFT_DB_POOL_SIZE for it.

After the load, the CPU time per request of the two hot reads (a cached evidence pack and
a draft) is measured in-process, with no network and nothing else running
(evals/request_cpu.py): `cpu_evidence_*` and `cpu_draft_*` in ms, and the database
statements each runs (`*_queries`). `--cpu-repeats 0` skips it.
"""

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert

from domain.kinds import DraftKind
from domain.periods import parse_period
from evals.org_store import HASHING_MODEL, org_store
from evals.report import print_figures
from evals.request_cpu import Reader, measure_reads, served_logging
from service.access.principal import reports_of
from service.access.tokens import issue_token
from service.app import create_app
from service.db.models import Draft, Person, PersonRole
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.ingest.progress import RichProgress
from service.settings import Settings

PERIOD = parse_period("2026-H1")
KIND = DraftKind.SELF_REFLECTION.value
ACTOR = "bench-api"
TARGET_P95_MS = 100.0
REQUEST_TIMEOUT_S = 30.0
ENDPOINTS = ("evidence", "draft", "drafts_list")
MEASURED = "m"  # X-Request-ID prefix of counted requests, so the server log can be filtered


@dataclass(frozen=True)
class ClientPlan:
    """Who one client speaks for and what they may read: (person id, draft id) pairs."""

    person_id: int
    role: str
    token: str
    subjects: tuple[tuple[int, int], ...]


@dataclass
class LoadResult:
    """What the load generator saw in the counted window."""

    seconds: float
    kinds: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)


# --- the org: drafts, roles, tokens -------------------------------------------------------


def draft_everyone(engine: Engine, drafting: Drafting, console: Console) -> int:
    """A self-reflection for everyone with evidence (kept ones are skipped); returns how
    many drafts of the kind exist for the period."""
    console.log("drafting self-reflections for everyone (offline drafter)")
    asyncio.run(draft_cycle(drafting, PERIOD, [KIND], concurrency=4, progress=RichProgress()))
    return len(drafted_subjects(engine))


def drafted_subjects(engine: Engine) -> dict[int, int]:
    """person id -> the id of their self-reflection draft for the period."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Draft.subject_id, Draft.id).where(
                Draft.period == PERIOD.name, Draft.kind == KIND
            )
        ).all()
    return {row.subject_id: row.id for row in rows}


def plan_clients(engine: Engine, *, clients: int, hr_admins: int, seed: int) -> list[ClientPlan]:
    """`hr_admins` HR admins and managers for the rest, each with a fresh token and the
    drafted people in their scope. Managers are drawn at random without repeats while they
    last (with fewer managers than clients, two clients may speak for the same person)."""
    rng = random.Random(seed)
    drafts = drafted_subjects(engine)
    with engine.begin() as conn:
        people = list(conn.execute(select(Person.id).order_by(Person.id)).scalars())
        plans = []
        for person_id in rng.sample(people, min(hr_admins, clients, len(people))):
            _grant_hr(conn, person_id)
            plans.append(_plan(conn, person_id, "hr_admin", sorted(drafts.items())))
        managers = [(m, s) for m in _managers(conn) if (s := _in_scope(conn, m, drafts))]
        rng.shuffle(managers)
        for index in range(clients - len(plans) if managers else 0):
            person_id, subjects = managers[index % len(managers)]
            plans.append(_plan(conn, person_id, "manager", subjects))
    return plans


def _managers(conn: Connection) -> list[int]:
    rows = conn.execute(select(Person.manager_id).distinct().order_by(Person.manager_id))
    return [m for m in rows.scalars() if m is not None]


def _in_scope(conn: Connection, manager_id: int, drafts: dict[int, int]) -> list[tuple[int, int]]:
    """(person id, draft id) of the drafted people the manager sees (direct and indirect)."""
    scope = reports_of(conn, manager_id, indirect=True)
    return sorted((p, d) for p, d in drafts.items() if p in scope)


def _grant_hr(conn: Connection, person_id: int) -> None:
    conn.execute(
        insert(PersonRole)
        .values(person_id=person_id, role="hr_admin", granted_by=ACTOR)
        .on_conflict_do_nothing()
    )


def _plan(
    conn: Connection, person_id: int, role: str, subjects: list[tuple[int, int]]
) -> ClientPlan:
    issued = issue_token(conn, person_id, days=1, label=ACTOR, actor=ACTOR)
    return ClientPlan(person_id, role, issued.token, tuple(subjects))


# --- the server under test ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def server_command(port: int, workers: int) -> list[str]:
    """`fairdraft serve` with `workers` processes."""
    fairdraft = Path(sys.executable).with_name("fairdraft")
    return [
        str(fairdraft),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_env(database_url: str, home: Path, pool_size: int | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        FAIRDRAFT_DATABASE_URL=database_url,
        FAIRDRAFT_HOME=str(home),
        FAIRDRAFT_EMBEDDING_MODEL=HASHING_MODEL,
        FAIRDRAFT_SERVE_WORKER="false",
        FAIRDRAFT_PROGRESS="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    if pool_size is not None:
        env["FAIRDRAFT_DB_POOL_SIZE"] = str(pool_size)
    return env


@contextmanager
def running_server(command: list[str], env: dict[str, str], log_path: Path) -> Iterator[int]:
    """Start the server, wait for /health, yield its process id; stop it on the way out."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(_base_url(command), process, log_path)
        yield process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _base_url(command: list[str]) -> str:
    return f"http://127.0.0.1:{command[command.index('--port') + 1]}"


def _wait_healthy(
    base_url: str, process: "subprocess.Popen[bytes]", log_path: Path, timeout_s: float = 120
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server exited with {process.returncode}:\n{tail}")
        try:
            httpx.get(f"{base_url}/health", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


# --- CPU accounting (Linux /proc) ---------------------------------------------------------

TICK_S = 1 / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        text = handle.read()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def tree_cpu_s(root: int) -> float:
    """User + system CPU of a process and its children (uvicorn workers, Postgres
    backends) so far: the live children's, and through the root's cutime and cstime those
    that have exited (a backend whose pooled connection was closed)."""
    fields = _stat_fields(root)
    ticks = sum(int(v) for v in fields[11:15])
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == root:
            continue
        try:
            child = _stat_fields(int(entry))
        except OSError:
            continue
        if int(child[1]) == root:
            ticks += int(child[11]) + int(child[12])
    return ticks * TICK_S


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent not idle (all cores)."""
    with open("/proc/stat") as handle:
        user, nice, system, _idle, _iowait, irq, softirq = handle.readline().split()[1:8]
    return sum(int(v) for v in (user, nice, system, irq, softirq)) * TICK_S


def cpu_snapshot(server_pid: int, postgres_pid: int) -> dict[str, float]:
    return {
        "server": tree_cpu_s(server_pid),
        "postgres": tree_cpu_s(postgres_pid),
        "load_generator": time.process_time(),
        "machine": machine_busy_s(),
    }


def db_sessions(engine: Engine) -> int:
    """Sessions the database has had so far (new connections: the pool's churn shows
    here). Statistics reach the view within a second, so this waits that long first."""
    time.sleep(1.5)
    with engine.connect() as conn:
        query = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        return int(conn.exec_driver_sql(query).scalar_one())


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


# --- the load generator (runs in a process of its own) ------------------------------------


@dataclass(frozen=True)
class LoadSpec:
    """How to load the server: where, how long, how hard and with what mix."""

    base_url: str
    warmup_s: float
    seconds: float
    think_s: float
    seed: int
    mix: dict[str, float]  # endpoint kind -> share of requests
    pids: tuple[int, int]  # the server's and the postmaster's, for CPU accounting


def request_mix(evidence_share: float) -> dict[str, float]:
    """Evidence packs at the given share; the rest reads drafts, four in five one draft
    and one in five a person's list of drafts."""
    rest = 1.0 - evidence_share
    return {"evidence": evidence_share, "draft": rest * 0.8, "drafts_list": rest * 0.2}


def generate_load(spec: LoadSpec, plans: Sequence[ClientPlan]) -> LoadResult:
    """Entry point of the load process: run every client, return what the window saw."""
    return asyncio.run(_load(spec, plans))


async def _load(spec: LoadSpec, plans: Sequence[ClientPlan]) -> LoadResult:
    result = LoadResult(seconds=spec.seconds)
    start = time.perf_counter()
    window = (start + spec.warmup_s, start + spec.warmup_s + spec.seconds)
    clients = [_client(spec, plan, index, window, result) for index, plan in enumerate(plans)]
    await asyncio.gather(_measure_cpu(window, spec.pids, result), *clients)
    return result


async def _measure_cpu(
    window: tuple[float, float], pids: tuple[int, int], result: LoadResult
) -> None:
    await asyncio.sleep(window[0] - time.perf_counter())
    before = cpu_snapshot(*pids)
    await asyncio.sleep(window[1] - time.perf_counter())
    after = cpu_snapshot(*pids)
    result.cpu_s = {name: after[name] - before[name] for name in before}


async def _client(
    spec: LoadSpec, plan: ClientPlan, index: int, window: tuple[float, float], result: LoadResult
) -> None:
    """One closed-loop client: a request, its answer, a think time, the next request. Think
    times are exponential around `think_s`, and the first is drawn too, so that clients do
    not move in step and hit the server in bursts."""
    rng = random.Random(spec.seed + index)
    await asyncio.sleep(_think(rng, spec.think_s))
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {plan.token}"}
    kinds, weights = list(spec.mix), list(spec.mix.values())
    async with httpx.AsyncClient(
        base_url=spec.base_url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        sent = 0
        while (started := time.perf_counter()) < window[1]:
            kind = rng.choices(kinds, weights)[0]
            counted = started >= window[0]
            request_id = f"{MEASURED if counted else 'w'}{index}-{sent}"
            path = request_path(kind, rng.choice(plan.subjects))
            status = await _get(client, path, request_id, result)
            if counted:
                result.kinds.append(kind)
                result.statuses.append(status)
                result.latencies_s.append(time.perf_counter() - started)
            sent += 1
            await asyncio.sleep(_think(rng, spec.think_s))


def _think(rng: random.Random, mean_s: float) -> float:
    return rng.expovariate(1 / mean_s) if mean_s > 0 else 0.0


def request_path(kind: str, subject: tuple[int, int]) -> str:
    person_id, draft_id = subject
    if kind == "evidence":
        return f"/api/v1/people/{person_id}/evidence?kind={KIND}&period={PERIOD.name}"
    if kind == "draft":
        return f"/api/v1/drafts/{draft_id}"
    return f"/api/v1/people/{person_id}/drafts"


async def _get(client: httpx.AsyncClient, path: str, request_id: str, result: LoadResult) -> int:
    """The answer's status, or 0 for a request that failed without one."""
    try:
        response = await client.get(path, headers={"X-Request-ID": request_id})
    except httpx.HTTPError as exc:
        _sample_error(result, f"{path}: {type(exc).__name__}: {exc}")
        return 0
    if not response.is_success:
        _sample_error(result, f"{path}: {response.status_code} {response.text[:200]}")
    return response.status_code


def _sample_error(result: LoadResult, message: str) -> None:
    if len(result.error_samples) < 5:
        result.error_samples.append(message)


# --- figures ------------------------------------------------------------------------------


def latency_figures(prefix: str, latencies_s: Sequence[float]) -> dict[str, float]:
    if not latencies_s:
        return {}
    cuts = np.percentile(np.array(latencies_s) * 1000, [50, 95, 99])
    return {f"{prefix}p{q}_ms": round(float(c), 1) for q, c in zip((50, 95, 99), cuts, strict=True)}


def load_figures(result: LoadResult, clients: int) -> dict[str, float | int | str]:
    errors = sum(1 for s in result.statuses if not 200 <= s < 300)
    rps = len(result.statuses) / result.seconds
    figures: dict[str, float | int | str] = {
        "requests": len(result.statuses),
        "requests_per_s": round(rps, 1),
        **latency_figures("", result.latencies_s),
        "errors": errors,
        "error_statuses": error_statuses(result.statuses),
        # a closed loop holds `clients` requests in flight, so the mean latency is
        # clients / throughput whatever the server does with them (Little's law)
        "littles_law_mean_ms": round(clients / rps * 1000, 1) if rps else 0.0,
    }
    for kind in ENDPOINTS:
        picked = [i for i, k in enumerate(result.kinds) if k == kind]
        figures[f"{kind}_per_s"] = round(len(picked) / result.seconds, 1)
        figures.update(latency_figures(f"{kind}_", [result.latencies_s[i] for i in picked]))
        figures[f"{kind}_errors"] = sum(1 for i in picked if not 200 <= result.statuses[i] < 300)
    return figures


def error_statuses(statuses: Sequence[int]) -> str:
    """The failed requests by status, e.g. "0x2,503x1" (0: no answer at all)."""
    failed = Counter(s for s in statuses if not 200 <= s < 300)
    return ",".join(f"{status}x{count}" for status, count in sorted(failed.items())) or "none"


def in_app_figures(log_path: Path) -> dict[str, float]:
    """In-app time of the counted requests per route, from the server's request log (the
    middleware's `ms`: thread-pool and connection-pool waits included, the event loop's
    and HTTP parsing's queue not)."""
    per_kind: dict[str, list[float]] = {kind: [] for kind in ENDPOINTS}
    for line in log_path.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "request" and str(entry["request_id"]).startswith(MEASURED):
            kind = _route_kind(str(entry["route"]))
            if kind:
                per_kind[kind].append(float(entry["ms"]) / 1000)
    figures: dict[str, float] = {}
    for kind, samples in per_kind.items():
        figures.update(latency_figures(f"in_app_{kind}_", samples))
    return figures


def _route_kind(route: str) -> str | None:
    return {
        "/api/v1/people/{person_id}/evidence": "evidence",
        "/api/v1/drafts/{draft_id}": "draft",
        "/api/v1/people/{person_id}/drafts": "drafts_list",
    }.get(route)


def cpu_figures(cpu_s: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores each part kept busy on average over the window (of os.cpu_count()); `other` is
    whatever else ran on the machine meanwhile."""
    figures = {f"cores_{name}": round(value / seconds, 2) for name, value in cpu_s.items()}
    ours = sum(value for name, value in cpu_s.items() if name != "machine")
    figures["cores_other"] = round((cpu_s.get("machine", 0.0) - ours) / seconds, 2)
    figures["cores_available"] = float(os.cpu_count() or 1)
    return figures


# --- the run ------------------------------------------------------------------------------


def request_cpu_figures(
    engine: Engine, settings: Settings, plans: Sequence[ClientPlan], repeats: int
) -> dict[str, float]:
    """CPU per request of the cached evidence pack and the draft read, in this process
    (the app called as ASGI, as the clients above call it, one request at a time)."""
    app = create_app(settings, engine=engine, worker=False)
    readers = [Reader(plan.token, plan.subjects) for plan in plans]
    with served_logging():
        measured = measure_reads(
            app, engine, readers, repeats=repeats, draft_kind=KIND, period=PERIOD.name
        )
    figures: dict[str, float] = {}
    for item in measured:
        figures.update(item.figures())
    return figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=600)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="counted duration")
    parser.add_argument("--warmup", type=float, default=5.0, help="uncounted seconds first")
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="mean pause between a client's requests"
    )
    parser.add_argument(
        "--evidence-share", type=float, default=0.5, help="share of evidence-pack requests"
    )
    parser.add_argument("--hr-admins", type=int, default=2, help="clients that are HR admins")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="keep the store (and drafts) here")
    parser.add_argument("--workers", type=int, default=1, help="fairdraft serve --workers")
    parser.add_argument("--pool-size", type=int, help="FAIRDRAFT_DB_POOL_SIZE for the server")
    parser.add_argument(
        "--cpu-repeats", type=int, default=300, help="in-process reads of each kind measured"
    )
    return parser.parse_args(argv)


def run_load(spec: LoadSpec, plans: list[ClientPlan]) -> LoadResult:
    """The load generator in a second process (spawned: nothing of this one's state)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(generate_load, spec, plans).result()


def server_label(args: argparse.Namespace) -> str:
    pool = f" pool {args.pool_size}" if args.pool_size else ""
    return f"fairdraft serve --workers {args.workers}{pool}"


def serve_and_load(
    args: argparse.Namespace,
    engine: Engine,
    home: Path,
    plans: list[ClientPlan],
    console: Console,
) -> tuple[LoadResult, int]:
    """Start the server on the store, load it from a second process, stop it; returns what
    the load generator saw and how many database sessions were opened meanwhile."""
    port = free_port()
    command = server_command(port, args.workers)
    env = server_env(engine.url.render_as_string(hide_password=False), home, args.pool_size)
    console.log(f"starting {server_label(args)} on port {port}")
    with running_server(command, env, home / "serve.log") as server_pid:
        pgdata = home.resolve() / "pgdata"
        console.log(
            f"server pid {server_pid}: {len(plans)} clients for {args.warmup:g}s "
            f"warm-up + {args.seconds:g}s"
        )
        sessions = db_sessions(engine)
        spec = LoadSpec(
            base_url=_base_url(command),
            warmup_s=args.warmup,
            seconds=args.seconds,
            think_s=args.think_ms / 1000,
            seed=args.seed,
            mix=request_mix(args.evidence_share),
            pids=(server_pid, postmaster_pid(pgdata)),
        )
        result = run_load(spec, plans)
        return result, db_sessions(engine) - sessions


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-bench-api-"))
    figures: dict[str, float | int | str] = {
        "people": args.people,
        "clients": args.clients,
        "seconds": args.seconds,
        "think_ms": args.think_ms,
        "evidence_share": args.evidence_share,
        "server": server_label(args),
    }
    try:
        with org_store(home, people=args.people, seed=args.seed) as (engine, settings, embedder):
            drafting = Drafting(engine, settings, embedder, offline_drafter(), ACTOR)
            figures["drafts"] = draft_everyone(engine, drafting, console)
            plans = plan_clients(
                engine, clients=args.clients, hr_admins=args.hr_admins, seed=args.seed
            )
            figures["managers"] = sum(1 for p in plans if p.role == "manager")
            figures["hr_admins"] = sum(1 for p in plans if p.role == "hr_admin")
            result, sessions = serve_and_load(args, engine, home, plans, console)
            figures["db_sessions_opened"] = sessions
            figures.update(load_figures(result, args.clients))
            figures.update(in_app_figures(home / "serve.log"))
            figures.update(cpu_figures(result.cpu_s, args.seconds))
            if args.cpu_repeats > 0:
                console.log(f"CPU per request in-process: {args.cpu_repeats} reads of each kind")
                figures.update(request_cpu_figures(engine, settings, plans, args.cpu_repeats))
            figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    for sample in result.error_samples:
        console.log(f"[red]error:[/red] {sample}")
    met = float(figures.get("p95_ms", 1e9)) < TARGET_P95_MS and figures["errors"] == 0
    figures.update(target_p95_ms=TARGET_P95_MS, target_errors=0, target_met=str(met).lower())
    print_figures(console, "API load benchmark", figures)
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
