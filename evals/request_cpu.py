"""CPU time per request of the API's hot reads, measured in-process (no network, no HTTP
parsing): the app is called as an ASGI application, one request at a time, and each
request's `time.process_time` (every thread of this process: the event loop and the
thread pool that runs the sync endpoints) and database statements are counted.

    python -m evals.request_cpu --people 120 --repeats 300 [--profile evidence]

Used by evals/bench_api.py next to the load figures; on its own it builds a small org
(hashing embedder, offline drafts) and can print a cProfile of one endpoint, to see where
the time goes. Postgres's own CPU is not in these figures: it is another process.
"""

import argparse
import asyncio
import cProfile
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.to_thread
import numpy as np
from fastapi import FastAPI
from rich.console import Console
from sqlalchemy import Engine, event
from starlette.types import Message

from service.http.logs import JsonFormatter

# What the load benchmark's clients ask for, and what each figure is called.
HOT_READS = ("evidence", "draft")


@dataclass(frozen=True)
class Reader:
    """One caller and the (person id, draft id) pairs they may read."""

    token: str
    subjects: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


async def asgi_get(app: FastAPI, path: str, headers: Sequence[tuple[bytes, bytes]]) -> Answer:
    """GET `path` from the app as uvicorn would call it, without a socket."""
    raw_path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "app": app,
    }
    status = 0
    chunks: list[bytes] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, b"".join(chunks))


def read_path(kind: str, subject: tuple[int, int], draft_kind: str, period: str) -> str:
    person_id, draft_id = subject
    if kind == "evidence":
        return f"/api/v1/people/{person_id}/evidence?kind={draft_kind}&period={period}"
    return f"/api/v1/drafts/{draft_id}"


class StatementCounter:
    """Database statements executed through the engine while it is attached."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def _note(self, *_: object, **__: object) -> None:
        self.count += 1

    @contextmanager
    def attached(self) -> Iterator["StatementCounter"]:
        event.listen(self.engine, "before_cursor_execute", self._note)
        try:
            yield self
        finally:
            event.remove(self.engine, "before_cursor_execute", self._note)


@contextmanager
def served_logging() -> Iterator[None]:
    """The request log as `fairdraft serve` writes it (one JSON line per request), into
    the null device: its cost is part of a request's."""
    root = logging.getLogger("fairdraft")
    saved = (root.handlers[:], root.level, root.propagate)
    with open(os.devnull, "w") as sink:
        handler = logging.StreamHandler(sink)
        handler.setFormatter(JsonFormatter())
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        root.propagate = False
        try:
            yield
        finally:
            root.handlers[:], root.level, root.propagate = saved


@dataclass(frozen=True)
class CpuFigures:
    kind: str
    requests: int
    cpu_ms: list[float]
    statements: float  # per request

    def figures(self) -> dict[str, float]:
        cuts = np.percentile(np.array(self.cpu_ms), [50, 95])
        return {
            f"cpu_{self.kind}_mean_ms": round(float(np.mean(self.cpu_ms)), 2),
            f"cpu_{self.kind}_p50_ms": round(float(cuts[0]), 2),
            f"cpu_{self.kind}_p95_ms": round(float(cuts[1]), 2),
            f"cpu_{self.kind}_queries": round(self.statements, 2),
        }


def measure_reads(
    app: FastAPI,
    engine: Engine,
    readers: Sequence[Reader],
    *,
    repeats: int,
    draft_kind: str,
    period: str,
    seed: int = 7,
) -> list[CpuFigures]:
    """CPU per request of each hot read, after one warm-up pass (every evidence pack the
    readers ask for is then cached, as it is under load). Kinds alternate request by
    request, so a change in the machine's load touches both alike."""
    return asyncio.run(
        _measure(
            app, engine, readers, repeats=repeats, draft_kind=draft_kind, period=period, seed=seed
        )
    )


async def _measure(
    app: FastAPI,
    engine: Engine,
    readers: Sequence[Reader],
    *,
    repeats: int,
    draft_kind: str,
    period: str,
    seed: int,
) -> list[CpuFigures]:
    rng = random.Random(seed)
    plan = [
        (kind, reader, rng.choice(reader.subjects))
        for _ in range(repeats)
        for reader in [rng.choice(readers)]
        for kind in HOT_READS
    ]
    for kind, reader, subject in plan:  # warm-up: caches filled, code paths imported
        await _checked(app, reader, read_path(kind, subject, draft_kind, period))
    cpu: dict[str, list[float]] = {kind: [] for kind in HOT_READS}
    statements = dict.fromkeys(HOT_READS, 0)
    counter = StatementCounter(engine)
    with counter.attached():
        for kind, reader, subject in plan:
            path = read_path(kind, subject, draft_kind, period)
            before_statements = counter.count
            started = time.process_time()
            await _checked(app, reader, path)
            cpu[kind].append((time.process_time() - started) * 1000)
            statements[kind] += counter.count - before_statements
    return [
        CpuFigures(kind, len(cpu[kind]), cpu[kind], statements[kind] / max(len(cpu[kind]), 1))
        for kind in HOT_READS
    ]


async def _checked(app: FastAPI, reader: Reader, path: str) -> Answer:
    answer = await asgi_get(app, path, [(b"authorization", f"Bearer {reader.token}".encode())])
    if answer.status != 200:
        raise RuntimeError(f"{path}: {answer.status} {answer.body[:200]!r}")
    return answer


def profile_reads(
    app: FastAPI,
    readers: Sequence[Reader],
    *,
    kind: str,
    repeats: int,
    draft_kind: str,
    period: str,
    top: int = 40,
) -> str:
    """A cProfile of `repeats` requests of one kind (after a warm-up), sorted by own time
    and by cumulative time."""
    rng = random.Random(11)
    paths = [
        (reader, read_path(kind, rng.choice(reader.subjects), draft_kind, period))
        for reader in (rng.choice(readers) for _ in range(repeats))
    ]

    async def run() -> None:
        for reader, path in paths:
            await _checked(app, reader, path)

    asyncio.run(run())
    profiler = cProfile.Profile(time.process_time)  # CPU, not waits on the database
    with _inline_threadpool():
        profiler.enable()
        asyncio.run(run())
        profiler.disable()
    if dump := os.environ.get("FAIRDRAFT_PROFILE_DUMP"):
        profiler.dump_stats(dump)
    out = _StringSink()
    stats = pstats.Stats(profiler, stream=out)  # type: ignore[arg-type]
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.text


@contextmanager
def _inline_threadpool() -> Iterator[None]:
    """Run what would go to the thread pool on the event loop's thread, where cProfile
    sees it (it profiles one thread)."""
    saved = anyio.to_thread.run_sync

    async def inline(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        return func(*args)

    anyio.to_thread.run_sync = inline  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.to_thread.run_sync = saved


class _StringSink:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=300, help="requests of each kind")
    parser.add_argument("--readers", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="keep the store (and drafts) here")
    parser.add_argument("--profile", choices=HOT_READS, help="print a cProfile of this read")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    # imported here: evals.bench_api imports this module
    from evals.bench_api import ACTOR, KIND, PERIOD, draft_everyone, plan_clients
    from evals.org_store import org_store
    from evals.report import print_figures
    from service.app import create_app
    from service.drafting.run import Drafting, offline_drafter

    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-request-cpu-"))
    try:
        with org_store(home, people=args.people, seed=args.seed) as (engine, settings, embedder):
            drafting = Drafting(engine, settings, embedder, offline_drafter(), ACTOR)
            draft_everyone(engine, drafting, console)
            plans = plan_clients(engine, clients=args.readers, hr_admins=1, seed=args.seed)
            readers = [Reader(p.token, p.subjects) for p in plans]
            app = create_app(settings, engine=engine, worker=False)
            with served_logging():
                if args.profile:
                    console.print(
                        profile_reads(
                            app,
                            readers,
                            kind=args.profile,
                            repeats=args.repeats,
                            draft_kind=KIND,
                            period=PERIOD.name,
                        ),
                        markup=False,
                        highlight=False,
                    )
                    return 0
                measured = measure_reads(
                    app,
                    engine,
                    readers,
                    repeats=args.repeats,
                    draft_kind=KIND,
                    period=PERIOD.name,
                    seed=args.seed,
                )
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    figures: dict[str, float | int | str] = {"people": args.people, "repeats": args.repeats}
    for item in measured:
        figures.update(item.figures())
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    print_figures(console, "CPU per request (in-process)", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
