"""Drafting benchmark: a whole cycle against an OpenAI-compatible server that answers in a
fixed time.

    python -m evals.bench_drafting --people 2400 --latency-ms 200 --concurrency 32

Generates the synthetic org and ingests it with the hashing embedder (the model's speed is
not what is measured here; retrieval over the stored vectors is), starts the local stub
server (`evals.llm_stub`) in a process of its own, and drafts one self-reflection per person
for 2026-H1 through the real ChatOpenAI client, `--concurrency` calls at a time. Prints:

- wall time against the ideal (people x latency / concurrency), as a ratio;
- time spent outside the model per draft (retrieval, rendering, the citation check,
  storing: the work itself, not the wait for a worker thread, which the wall time shows),
  p50 / p95 / p99;
- model time per draft as the client saw it.

Ends with one JSON line of the figures.
"""

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from statistics import quantiles

import httpx
from rich.console import Console

from domain.kinds import DraftKind
from domain.periods import parse_period
from evals.org_store import org_store
from evals.report import print_figures
from service.drafting.run import Drafting, draft_cycle, drafter_from
from service.ingest.progress import RichProgress

MODEL = "hashing-384"
PERIOD = parse_period("2026-H1")
KIND = DraftKind.SELF_REFLECTION


@contextmanager
def stub_server(latency_ms: int) -> Iterator[str]:
    """The stub in its own process, so its work is not counted as ours; yields its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "evals.llm_stub", "--port", str(port)]
    process = subprocess.Popen([*command, "--latency-ms", str(latency_ms)])
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_until_up(base_url)
        yield base_url
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = Path(tempfile.mkdtemp(prefix="fairdraft-bench-drafting-"))
    figures: dict[str, float | int | str] = {"people": args.people, "kind": KIND.value}
    try:
        with (
            stub_server(args.latency_ms) as base_url,
            org_store(
                home,
                people=args.people,
                seed=args.seed,
                llm_model="stub",
                llm_base_url=base_url,
                llm_concurrency=args.concurrency,
            ) as (engine, settings, embedder),
        ):
            console.log("ingested; drafting the cycle")
            run = Drafting(engine, settings, embedder, drafter_from(settings), "bench")
            summary = asyncio.run(
                draft_cycle(
                    run,
                    PERIOD,
                    [KIND],
                    concurrency=args.concurrency,
                    progress=RichProgress(min_total=0),
                )
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    drafted = summary.drafted
    ideal = len(drafted) * args.latency_ms / 1000 / args.concurrency
    figures.update(
        drafted=len(drafted),
        failed=len(summary.failed),
        concurrency=args.concurrency,
        latency_ms=args.latency_ms,
        wall_s=round(summary.seconds, 1),
        ideal_s=round(ideal, 1),
        wall_over_ideal=round(summary.seconds / ideal, 2) if ideal else 0.0,
    )
    outside = ms_quantiles([o.outside_model_s for o in drafted])
    model = ms_quantiles([o.model_s for o in drafted])
    figures.update(
        outside_model_p50_ms=outside[0],
        outside_model_p95_ms=outside[1],
        outside_model_p99_ms=outside[2],
        model_p50_ms=model[0],
        model_p95_ms=model[1],
    )
    print_figures(console, "cycle drafting benchmark", figures)
    return 0 if not summary.failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
