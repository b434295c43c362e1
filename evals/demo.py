"""`fairdraft demo`: a synthetic org, generated, ingested and embedded on this machine.

It drives the same public pieces a user would (settings, the store, the ingestor), so a
fresh clone shows the whole path working with nothing configured.
"""

import json
from contextlib import ExitStack

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, select

from evals.synthetic_org import generate_org
from evals.timing import StepTimer
from service.cli_output import summary_table
from service.db.engine import open_engine
from service.db.migrate import ensure_schema
from service.db.models import Chunk, Demographic, Person, Rating, Record, ReviewCycle
from service.ingest.progress import NoProgress, RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.settings import Settings
from service.store import embedder_from


def run_demo(settings: Settings, console: Console, *, people: int, seed: int) -> dict[str, float]:
    """Generate, ingest and embed the org; print what was stored and how long each step
    took, ending with one JSON line of the figures."""
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
    console.print(_timing_table(timer))
    figures = _figures(timer, summaries)
    console.print(json.dumps(figures), soft_wrap=True)
    return figures


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
