"""Drafting benchmark: a whole cycle against an OpenAI-compatible server that answers in a
fixed time.

    python -m evals.bench_drafting --people 2400 --latency-ms 200 --concurrency 32

Generates the synthetic org and ingests it with the hashing embedder (the model's speed is
not what is measured here; retrieval over the stored vectors is), starts the local stub
server (`evals.llm_stub`) in a process of its own, and drafts one self-reflection per person
for 2026-H1 through the real ChatOpenAI client, `--concurrency` calls at a time, spread over
`--processes` processes (default: one per core). Prints:

- wall time against the ideal (people x latency / concurrency), as a ratio;
- time spent outside the model per draft (retrieval, rendering, the citation check,
  storing: the work itself, not the wait for a worker thread, which the wall time shows),
  p50 / p95 / p99;
- model time per draft as the client saw it;
- the CPU seconds per draft of the drafting processes, the stub and the database, and the
  load average, so a run on a busy machine can be read for what it is.

`--processes 1,2 --rounds 3` compares variants side by side on the same store: the
variants take turns (all drafts are deleted between runs) and each figure is suffixed with
its variant (`wall_over_ideal_p2`) and is the median of its rounds.

Ends with one JSON line of the figures.
"""

import argparse
import asyncio
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from statistics import median, quantiles

import httpx
from rich.console import Console
from sqlalchemy import Engine, delete

from domain.kinds import DraftKind
from domain.periods import parse_period
from evals.org_store import org_store
from evals.report import print_figures
from retrieval.embedding import Embedder
from service.db.models import Draft
from service.drafting.run import CycleSummary, Drafting, draft_cycle, drafter_from
from service.ingest.progress import RichProgress
from service.settings import Settings

MODEL = "hashing-384"
PERIOD = parse_period("2026-H1")
KIND = DraftKind.SELF_REFLECTION


@contextmanager
def stub_server(latency_ms: int) -> Iterator[tuple[str, int]]:
    """The stub in its own process, so its work is not counted as ours; yields its URL and
    process id."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "evals.llm_stub", "--port", str(port)]
    process = subprocess.Popen([*command, "--latency-ms", str(latency_ms)])
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url)
        yield base_url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_up(base_url: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(f"{base_url}/models", timeout=1.0).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def ms_quantiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = quantiles([s * 1000 for s in samples], n=100)
    return round(cuts[49], 1), round(cuts[94], 1), round(cuts[98], 1)


def process_cpu_s(pid: int, *, with_children: bool = False) -> float:
    """CPU seconds a process has used (Linux /proc), with its live and reaped children's
    when asked (a database server's backends); 0.0 where /proc cannot tell."""
    try:
        fields = _stat(pid)
    except OSError:
        return 0.0
    ticks = sum(int(f) for f in fields[11 : 15 if with_children else 13])
    if with_children:
        ticks += sum(_own_ticks(child) for child in _children(pid))
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state is field 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _own_ticks(pid: str) -> int:
    try:
        fields = _stat(pid)
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def _children(pid: int) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if _stat(entry)[1] == str(pid):
                    found.append(entry)
            except OSError:
                continue
    return found


def database_pid(settings: Settings) -> int | None:
    """The embedded server's postmaster, from its pid file; None for a configured URL."""
    pid_file = settings.data_dir / "pgdata" / "postmaster.pid"
    if settings.database_url or not pid_file.exists():
        return None
    return int(pid_file.read_text().split()[0])


@dataclass(frozen=True)
class Meters:
    """CPU counters read before and after a run."""

    drafting: float  # this process and its reaped children (the helper processes)
    stub: float
    database: float

    @classmethod
    def read(cls, stub_pid: int, db_pid: int | None) -> "Meters":
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            time.process_time() + children.ru_utime + children.ru_stime,
            process_cpu_s(stub_pid),
            process_cpu_s(db_pid, with_children=True) if db_pid else 0.0,
        )


def run_once(
    engine: Engine,
    settings: Settings,
    embedder: Embedder,
    args: argparse.Namespace,
    processes: int,
    pids: tuple[int, int | None],
) -> tuple[CycleSummary, dict[str, float | int]]:
    """One cycle from no drafts at all, and its figures."""
    with engine.begin() as conn:
        conn.execute(delete(Draft))  # versions and checks go with their drafts
    run = Drafting(engine, settings, embedder, drafter_from(settings), "bench")
    before = Meters.read(*pids)
    summary = asyncio.run(
        draft_cycle(
            run,
            PERIOD,
            [KIND],
            concurrency=args.concurrency,
            progress=RichProgress(min_total=0),
            processes=processes,
        )
    )
    after = Meters.read(*pids)
    return summary, figures_of(summary, args, before, after)


def figures_of(
    summary: CycleSummary, args: argparse.Namespace, before: Meters, after: Meters
) -> dict[str, float | int]:
    drafted = summary.drafted
    count = max(len(drafted), 1)
    ideal = len(drafted) * args.latency_ms / 1000 / args.concurrency
    outside = ms_quantiles([o.outside_model_s for o in drafted])
    model = ms_quantiles([o.model_s for o in drafted])
    return {
        "drafted": len(drafted),
        "failed": len(summary.failed),
        "wall_s": round(summary.seconds, 1),
        "ideal_s": round(ideal, 1),
        "wall_over_ideal": round(summary.seconds / ideal, 2) if ideal else 0.0,
        "outside_model_p50_ms": outside[0],
        "outside_model_p95_ms": outside[1],
        "outside_model_p99_ms": outside[2],
        "model_p50_ms": model[0],
        "model_p95_ms": model[1],
        "cpu_drafting_ms_per_draft": round((after.drafting - before.drafting) / count * 1000, 1),
        "cpu_stub_ms_per_draft": round((after.stub - before.stub) / count * 1000, 1),
        "cpu_database_ms_per_draft": round((after.database - before.database) / count * 1000, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def process_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of counts like 1,2") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("process counts are 1 or more")
    return counts


def median_figures(runs: list[dict[str, float | int]]) -> dict[str, float | int]:
    return {name: median(run[name] for run in runs) for name in runs[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--processes",
        type=process_counts,
        default=[os.cpu_count() or 1],
        help="drafting processes (default one per core); several, like 1,2, take turns",
    )
    parser.add_argument("--rounds", type=int, default=1, help="runs of each variant")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--store",
        type=Path,
        help="keep the ingested org in this folder, to reuse on the next run (default: a "
        "temporary folder, removed at the end)",
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.store or Path(tempfile.mkdtemp(prefix="fairdraft-bench-drafting-"))
    figures: dict[str, float | int | str] = {
        "people": args.people,
        "kind": KIND.value,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "cores": os.cpu_count() or 1,
    }
    runs: dict[int, list[dict[str, float | int]]] = {n: [] for n in args.processes}
    failed = False
    try:
        with (
            stub_server(args.latency_ms) as (base_url, stub_pid),
            org_store(
                home,
                people=args.people,
                seed=args.seed,
                llm_model="stub",
                llm_base_url=base_url,
                llm_concurrency=args.concurrency,
            ) as (engine, settings, embedder),
        ):
            pids = (stub_pid, database_pid(settings))
            console.log(f"ingested; drafting the cycle (load average {os.getloadavg()[0]:.2f})")
            for _ in range(args.rounds):
                for processes in args.processes:
                    summary, run_figures = run_once(
                        engine, settings, embedder, args, processes, pids
                    )
                    console.log(f"{processes} processes: {run_figures}")
                    runs[processes].append(run_figures)
                    failed = failed or bool(summary.failed)
    finally:
        if args.store is None:
            shutil.rmtree(home, ignore_errors=True)
    if len(runs) == 1:
        [(processes, only)] = runs.items()
        figures.update(processes=processes, rounds=args.rounds, **median_figures(only))
    else:
        figures["rounds"] = args.rounds
        for processes, variant in runs.items():
            figures.update(
                {f"{name}_p{processes}": v for name, v in median_figures(variant).items()}
            )
    print_figures(console, "cycle drafting benchmark", figures)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
