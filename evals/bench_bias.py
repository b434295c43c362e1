"""Bias report benchmark: the full report (language and ratings) for a 2,400-person cycle
with three draft kinds each.

    python -m evals.bench_bias --people 2400

Generates the synthetic org, ingests it with the hashing embedder (the report reads text,
not vectors), drafts a self-reflection, manager feedback and a promotion packet for
everyone with the offline drafter, then times `build_report` for 2026-H1: checking every
draft, comparing profiles across each attribute by kind, and the ratings analyses. The
counterfactual probe is not part of it. Prints a table and one JSON line.
"""

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from domain.kinds import REVIEW_KINDS
from domain.periods import parse_period
from evals.org_store import org_store
from evals.report import print_figures
from service.bias.report import build_report
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.ingest.progress import RichProgress
from service.store import parser_from

PERIOD = "2026-H1"
CYCLE = parse_period(PERIOD)  # parsed once, here


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="keep the store (and drafts) here")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-bench-bias-"))
    figures: dict[str, float | int | str] = {"people": args.people}
    try:
        with org_store(home, people=args.people, seed=args.seed) as (engine, settings, embedder):
            run = Drafting(engine, settings, embedder, offline_drafter(), "bench")
            console.log("drafting three kinds for everyone (offline)")
            started = time.perf_counter()
            summary = asyncio.run(
                draft_cycle(
                    run,
                    CYCLE,
                    REVIEW_KINDS,
                    concurrency=4,
                    progress=RichProgress(min_total=0),
                )
            )
            figures["drafting_s"] = round(time.perf_counter() - started, 1)
            sense = parser_from(settings)  # loaded before the clock starts, as a worker has it
            console.log("building the report")
            started = time.perf_counter()
            with engine.begin() as conn:
                report = build_report(conn, CYCLE, actor="bench", parser=sense)
            figures["report_s"] = round(time.perf_counter() - started, 2)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    figures.update(
        drafts=report.data_seen.drafts,
        drafts_new=len(summary.drafted),
        ratings=report.report.ratings.ratings,
        comparisons=len(report.report.language),
        findings=len(report.report.findings),
        target_s=10,
    )
    print_figures(console, "bias report benchmark", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
