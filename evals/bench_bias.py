"""Bias report benchmark: the full report (language and ratings) for a 2,400-person cycle
with three draft kinds each.

    python -m evals.bench_bias --people 2400

Generates the synthetic org, ingests it with the hashing embedder (the report reads text,
not vectors), drafts a self-reflection, manager feedback and a promotion packet for
everyone with the offline drafter, then times `build_report` for 2026-H1 twice:

- `report_s`, the cycle's first report, nothing checked yet: profiling and checking every
  draft, comparing profiles across each attribute by kind, and the ratings analyses;
- `report_again_s`, the next report after people edited EDITED_SHARE of the drafts (a new
  version each, saved as the editor saves one): only the edited versions are profiled, the
  others' profiles are rebuilt from their checks (`service/bias/stored_language.py`).

Wall and CPU time (`_cpu_s`, this process) of each, and the load average. Both reports run
in one transaction that is rolled back (checks kept from an earlier run on a kept store
are set aside inside it), so every run starts from nothing checked. The counterfactual
probe is not part of it. Prints a table and one JSON line.
"""

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from sqlalchemy import Connection, delete, select

from domain.kinds import REVIEW_KINDS
from domain.periods import parse_period
from evals.org_store import org_store
from evals.report import print_figures
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.bias.report_model import StoredBiasReport
from service.db.models import Draft, DraftCheck
from service.drafting.run import Drafting, draft_cycle, offline_drafter
from service.drafting.store import load_version, save_edit
from service.drafting.structure import DraftSentence
from service.ingest.progress import RichProgress
from service.store import parser_from

PERIOD = "2026-H1"
CYCLE = parse_period(PERIOD)  # parsed once, here
EDITED_SHARE = 0.05  # of the drafts, edited between the two reports
EDIT = "We agreed on the next steps in the review meeting."


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
            with engine.connect() as conn, conn.begin() as transaction:
                conn.execute(delete(DraftCheck))  # nothing checked (rolled back below)
                console.log(f"building the report (load average {os.getloadavg()[0]:.2f})")
                report = _timed(conn, sense, figures, "report")
                figures["edited"] = _edit_some(conn)
                console.log(f"building it again after {figures['edited']} edits")
                _timed(conn, sense, figures, "report_again")
                figures["load_average_1m"] = round(os.getloadavg()[0], 2)
                transaction.rollback()
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


def _timed(
    conn: Connection, sense: SenseParser, figures: dict[str, float | int | str], name: str
) -> StoredBiasReport:
    """One report, its wall and CPU time in `figures` as `name`_s and `name`_cpu_s."""
    started, cpu = time.perf_counter(), time.process_time()
    report = build_report(conn, CYCLE, actor="bench", parser=sense)
    figures[f"{name}_s"] = round(time.perf_counter() - started, 2)
    figures[f"{name}_cpu_s"] = round(time.process_time() - cpu, 2)
    return report


def _edit_some(conn: Connection) -> int:
    """A new version of every 1/EDITED_SHARE-th draft of the cycle, saved as the editor
    saves one: a sentence added, citing what the draft's first sentence cites."""
    ids = conn.execute(select(Draft.id).where(Draft.period == PERIOD).order_by(Draft.id))
    chosen = list(ids.scalars())[:: round(1 / EDITED_SHARE)]
    for draft_id in chosen:
        current = load_version(conn, draft_id)
        body = current.body.model_copy(deep=True)
        first = body.sections[0]
        cited = list(first.sentences[0].evidence) if first.sentences else []
        first.sentences.append(DraftSentence(text=EDIT, evidence=cited))
        save_edit(conn, draft_id=draft_id, based_on=current.version, body=body, author="bench")
    return len(chosen)


if __name__ == "__main__":
    raise SystemExit(main())
