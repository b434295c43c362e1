"""`fairdraft demo`: a synthetic org, generated, ingested, embedded and drafted from.

It drives the same public pieces a user would (settings, the store, the ingestor), so a
fresh clone shows the whole path working with nothing configured.
"""

import asyncio
import json
from contextlib import ExitStack
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from domain.kinds import REVIEW_KINDS
from domain.periods import parse_period
from evals.synthetic_org import generate_org
from evals.timing import StepTimer
from service.cli_output import summary_table
from service.db.engine import open_engine
from service.db.migrate import ensure_schema
from service.db.models import Chunk, Demographic, Person, Rating, Record, ReviewCycle
from service.drafting.display import print_draft
from service.drafting.run import Drafting, DraftOutcome, draft_person, drafter_from, load_person
from service.ingest.progress import NoProgress, RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.settings import Settings
from service.store import embedder_from

DEMO_PERIOD = parse_period("2026-H1")


def run_demo(settings: Settings, console: Console, *, people: int, seed: int) -> dict[str, float]:
    """Generate, ingest and embed the org, draft three reviews for one person; print what
    was stored, the drafts and how long each step took, ending with one JSON line."""
    timer = StepTimer()
    org_dir = settings.data_dir / f"demo-org-{people}-{seed}"
    where = "the configured database" if settings.database_url else str(settings.data_dir)
    console.print(f"fairdraft demo: {people} people, seed {seed}, stored in {where}")
    with ExitStack() as stack:
        with timer.step("start database"):
            engine = stack.enter_context(open_engine(settings))
        with timer.step("migrate"):
            ensure_schema(engine)
        with timer.step("generate org"):
            generate_org(org_dir, people=people, seed=seed)
        with timer.step("load embedding model"):
            embedder = embedder_from(settings)
        progress = RichProgress() if settings.progress else NoProgress()
        ingestor = Ingestor(
            engine, settings, actor="demo", progress=progress, embedder_factory=lambda: embedder
        )
        summaries = ingest_path(ingestor, org_dir)
        timer.steps.update({f"ingest {s.format}": s.seconds for s in summaries})
        console.print(summary_table(summaries))
        console.print(_stored_table(engine))
        run = Drafting(engine, settings, embedder, drafter_from(settings), actor="demo")
        with timer.step("draft 3 kinds"):
            outcomes = _draft_one_person(run)
        for outcome in outcomes:
            print_draft(console, outcome, run.drafter.label)
    console.print(_timing_table(timer))
    figures = _figures(timer, summaries)
    shares = [o.citations.supported_share for o in outcomes if o.citations]
    figures["drafts"] = len(shares)
    figures["draft_supported_share_min"] = round(min(shares, default=0.0), 3)
    console.print(json.dumps(figures), soft_wrap=True)
    return figures


def _draft_one_person(run: Drafting) -> list[DraftOutcome]:
    """A self-reflection, manager feedback and a promotion packet for the person with the
    most evidence in the first half of 2026 (ties: the lowest employee id)."""
    with run.engine.connect() as conn:
        employee_id = conn.execute(
            select(Person.employee_id)
            .join(Record, Record.subject_id == Person.id)
            .where(Record.occurred_at >= datetime(2026, 1, 1, tzinfo=UTC))
            .where(Record.occurred_at < datetime(2026, 7, 1, tzinfo=UTC))
            .group_by(Person.employee_id)
            .order_by(func.count().desc(), Person.employee_id)
            .limit(1)
        ).scalar_one()
    person = load_person(run.engine, employee_id)
    kinds = REVIEW_KINDS

    async def draft_all() -> list[DraftOutcome]:
        # One event loop for all three: the chat client's connections belong to it.
        return [await draft_person(run, person, kind, DEMO_PERIOD) for kind in kinds]

    return asyncio.run(draft_all())


def _stored_table(engine: Engine) -> Table:
    table = Table(title="stored")
    table.add_column("what")
    table.add_column("count", justify="right")
    with engine.connect() as conn:
        for label, model in [
            ("people", Person),
            ("demographic values (restricted)", Demographic),
            ("records", Record),
            ("chunks", Chunk),
            ("review cycles", ReviewCycle),
            ("ratings", Rating),
        ]:
            table.add_row(
                label, str(conn.execute(select(func.count()).select_from(model)).scalar())
            )
        per_kind = conn.execute(
            select(Record.kind, func.count()).group_by(Record.kind).order_by(Record.kind)
        ).all()
    for kind, count in per_kind:
        table.add_row(f"  records: {kind}", str(count))
    return table


def _timing_table(timer: StepTimer) -> Table:
    table = Table(title="timings")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in timer.steps.items():
        table.add_row(name, f"{seconds:.2f}")
    return table


def _figures(timer: StepTimer, summaries: list[IngestSummary]) -> dict[str, float]:
    records = next((s for s in summaries if s.format == "records"), None)
    figures = {name.replace(" ", "_") + "_s": round(v, 2) for name, v in timer.steps.items()}
    if records is not None:
        figures["records_ingested"] = records.rows
        figures["chunks_embedded"] = records.chunks_written
        figures["embed_s"] = round(records.embed_seconds, 2)
        figures["db_s"] = round(records.db_seconds, 2)
    return figures
