"""`fairdraft demo`: a synthetic org, generated, ingested, embedded and drafted from, its
cycle's bias report run, and the pages served with a one-time sign-in link for each of four
people, so a fresh clone ends signed in as an employee, a manager, a calibration panel
member or an HR admin.

It drives the same public pieces a user would (settings, the store, the ingestor, the
drafting run, the bias report, the app), so it shows the whole path working with nothing
configured. The people are chosen by rule (evals/demo_cast.py): the default org always
gives the same four, the README's examples. Each step is timed; the total, the links and
one JSON line of figures are printed before the server waits for Ctrl-C (which stops it
and the embedded database). `--no-serve` stops after printing, for scripts.
"""

import asyncio
import errno
import json
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from domain.errors import Conflict, Unavailable
from domain.kinds import DraftKind
from domain.periods import parse_period
from evals.demo_cast import Cast, CastMember, OrgPerson, set_up_cast
from evals.demo_cycle import DemoCycle, run_demo_cycle
from evals.synthetic_org import generate_org
from evals.timing import StepTimer
from retrieval.embedding import Embedder
from service.access.links import base_url, issue_link, served_url
from service.bias.nlp import SenseParser
from service.bias.report import build_report
from service.bias.report_model import StoredBiasReport
from service.cli_output import plain, summary_table
from service.db.engine import open_engine
from service.db.migrate import ensure_schema
from service.db.models import Chunk, Demographic, Draft, Person, Rating, Record, ReviewCycle
from service.drafting.run import Drafting, DraftOutcome, draft_person, drafter_from
from service.ingest.progress import NoProgress, RichProgress
from service.ingest.records import ChunkSettings
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.settings import Settings
from service.store import OnFirstUse, embedder_from, parser_from

DEMO_PERIOD = parse_period("2026-H1")
ACTOR = "demo"
_STARTED_WITHIN_S = 60.0


class PortTaken(Conflict):
    """The address `fairdraft serve` would listen on is in use."""


class ServerDidNotStart(Unavailable):
    pass


@dataclass(frozen=True)
class DemoLink:
    member: CastMember
    url: str
    expires_at: datetime


@dataclass
class DemoRun:
    figures: dict[str, float]
    cast: Cast
    links: list[DemoLink]
    drafts: list[DraftOutcome] = field(default_factory=list)


def run_demo(
    settings: Settings,
    console: Console,
    *,
    people: int,
    seed: int,
    serve: bool = True,
    stop: threading.Event | None = None,
    parser: SenseParser | None = None,
    started: float | None = None,
) -> DemoRun:
    """Set the demo up, print its people with their sign-in links, the timings and a JSON
    line; with `serve`, then serve the pages until Ctrl-C (or `stop`, for tests). The bias
    check's parser is loaded unless one is passed in (tests share theirs). `started`: when
    the command began on `time.monotonic()` (evals.process_clock), so that the total counts
    Python's start-up and imports too; else the total starts here."""
    timer = StepTimer()
    now = time.monotonic()
    if started is not None:
        timer.steps["start-up and imports"] = now - started
    started = now if started is None else started
    org_dir = settings.data_dir / f"demo-org-{people}-{seed}"
    where = "the configured database" if settings.database_url else str(settings.data_dir)
    console.print(Text(f"fairdraft demo: {people} people, seed {seed}, stored in {where}"))
    with ExitStack() as stack:
        # The port first: a taken one is said at once, not after a minute of set-up.
        listener = stack.enter_context(_listening(settings)) if serve else None
        # The two models load in threads while the database starts and the org is written
        # (the database's start is mostly waiting on its own process); a step below waits
        # for each where it is first needed, and its time is that wait.
        loading = stack.enter_context(ThreadPoolExecutor(2, thread_name_prefix="demo-load"))
        embedder_loaded = loading.submit(embedder_from, settings)
        parser_loaded = loading.submit(parser_from, settings) if parser is None else None
        with timer.step("start database"):
            engine = stack.enter_context(open_engine(settings))
        with timer.step("migrate"):
            ensure_schema(engine)
        with timer.step("generate org"):
            generate_org(org_dir, people=people, seed=seed)
        with timer.step("load embedding model"):
            embedder = embedder_loaded.result()
        summaries = _ingest(engine, settings, embedder, org_dir, timer)
        console.print(summary_table(summaries))
        console.print(_stored_table(engine))
        with timer.step("roles and panel"), engine.begin() as conn:
            cast = set_up_cast(
                conn, DEMO_PERIOD, actor=ACTOR, indirect=settings.manager_scope_indirect
            )
        with timer.step("review cycle"), engine.begin() as conn:
            cycle = run_demo_cycle(
                conn,
                cast,
                DEMO_PERIOD,
                today=datetime.now(UTC).date(),
                actor=ACTOR,
                embedder=lambda: embedder,
                chunking=ChunkSettings.of(settings),
            )
        console.print(_cycle_line(cycle))
        run = Drafting(engine, settings, embedder, drafter_from(settings), actor=ACTOR)
        with timer.step("draft"):
            outcomes = _draft_for(run, cast, settings.llm_concurrency)
        console.print(_drafts_table(outcomes, run.drafter.model))
        if parser_loaded is not None:
            with timer.step("load bias parser"):
                parser = parser_loaded.result()
        assert parser is not None
        with timer.step("bias report"), engine.begin() as conn:
            report = build_report(conn, DEMO_PERIOD, actor=ACTOR, parser=parser)
        console.print(_report_line(report))
        if listener is not None:
            with timer.step("start server"):
                url = stack.enter_context(_serving(settings, engine, listener, embedder, parser))
        else:
            url = base_url(settings)
        with timer.step("links"):
            links = _links(engine, cast, url)
        figures = _figures(timer, summaries, outcomes, time.monotonic() - started)
        console.print(_timing_table(timer, figures["total_s"]))
        print_cast(console, cast, links, serving=listener is not None)
        console.print(json.dumps(figures), soft_wrap=True)
        if listener is not None:
            _wait(console, url, stop)
    return DemoRun(figures, cast, links, outcomes)


def _ingest(
    engine: Engine, settings: Settings, embedder: Embedder, org_dir: Path, timer: StepTimer
) -> list[IngestSummary]:
    progress = RichProgress() if settings.progress else NoProgress()
    ingestor = Ingestor(
        engine, settings, actor=ACTOR, progress=progress, embedder_factory=lambda: embedder
    )
    summaries = ingest_path(ingestor, org_dir)
    timer.steps.update({f"ingest {s.format}": s.seconds for s in summaries})
    return summaries


# --- drafts -------------------------------------------------------------------------------


def demo_drafts(cast: Cast) -> list[tuple[OrgPerson, DraftKind]]:
    """What the four see something of: the employee's self-reflection, manager feedback for
    each of the manager's direct reports, and a calibration summary for each person of the
    panel's cohort (the panel compares them side by side)."""
    wanted = [(cast.employee.person, DraftKind.SELF_REFLECTION)]
    wanted += [(p, DraftKind.MANAGER_FEEDBACK) for p in cast.team]
    wanted += [(p, DraftKind.CALIBRATION_SUMMARY) for p in cast.cohort]
    return list(dict.fromkeys(wanted))


def _draft_for(run: Drafting, cast: Cast, concurrency: int) -> list[DraftOutcome]:
    """The demo's drafts not yet stored for the period (a second run drafts nothing)."""
    with run.engine.connect() as conn:
        rows = conn.execute(
            select(Draft.subject_id, Draft.kind).where(Draft.period == DEMO_PERIOD.name)
        )
        stored = {(row.subject_id, row.kind) for row in rows}
        wanted = [(p, k) for p, k in demo_drafts(cast) if (p.id, k.value) not in stored]
        subjects = {
            person.id: person
            for person in _people_rows(run.engine, sorted({p.id for p, _ in wanted}))
        }

    async def draft_all() -> list[DraftOutcome]:
        # One event loop for all: a chat model's connections belong to it.
        gate = asyncio.Semaphore(concurrency)

        async def one(person_id: int, kind: DraftKind) -> DraftOutcome:
            async with gate:
                return await draft_person(run, subjects[person_id], kind.value, DEMO_PERIOD)

        return list(await asyncio.gather(*(one(p.id, k) for p, k in wanted)))

    return asyncio.run(draft_all()) if wanted else []


def _people_rows(engine: Engine, ids: Sequence[int]) -> list[Person]:
    with Session(engine, expire_on_commit=False) as session:
        people = list(session.scalars(select(Person).where(Person.id.in_(ids))))
        session.expunge_all()
        return people


def _cycle_line(cycle: DemoCycle) -> Text:
    if not cycle.tasks:
        return Text(f"review cycle {cycle.name}: set up by an earlier run, left as it is")
    return Text(
        f"review cycle {cycle.name}: started with {cycle.tasks} tasks; the employee's peers "
        f"nominated and approved, {cycle.answered} of them answered"
    )


def _drafts_table(outcomes: Sequence[DraftOutcome], drafter: str) -> Table:
    table = Table(title=f"drafts for {DEMO_PERIOD.name}, by the {drafter} drafter")
    table.add_column("kind")
    table.add_column("drafted", justify="right")
    table.add_column("empty", justify="right")
    table.add_column("supported sentences", justify="right")
    kinds = sorted({o.kind for o in outcomes})
    for kind in kinds:
        mine = [o for o in outcomes if o.kind == kind]
        reports = [o.citations for o in mine if o.citations is not None]
        supported = sum(r.supported for r in reports)
        sentences = sum(r.sentences for r in reports)
        table.add_row(
            kind,
            str(len(reports)),
            str(len(mine) - len(reports)),
            f"{supported}/{sentences}" if sentences else "-",
        )
    if not kinds:
        table.add_row("(all drafted by an earlier run)", "0", "0", "-")
    return table


def _report_line(report: StoredBiasReport) -> Text:
    kinds = Counter(f.what for f in report.report.findings)
    found = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no findings"
    return Text(f"bias report {report.cycle}, version {report.version}: {found}")


# --- people and links ---------------------------------------------------------------------


def _links(engine: Engine, cast: Cast, url: str) -> list[DemoLink]:
    with engine.begin() as conn:
        issued = [(m, issue_link(conn, m.person.id, actor=ACTOR)) for m in cast.members]
    return [DemoLink(m, link.url(url), link.expires_at) for m, link in issued]


def print_cast(console: Console, cast: Cast, links: Sequence[DemoLink], *, serving: bool) -> None:
    """Who is who, and a link for each: names and emails from people.csv are printed as
    plain text, never read as markup nor passed to the terminal as control sequences; each
    link on a line of its own, never wrapped."""
    table = Table(title=f"who is who in the demo org ({DEMO_PERIOD.name})")
    for column in ("role", "name", "email", "starts at", "sees"):
        table.add_column(column)
    for member in cast.members:
        person = member.person
        table.add_row(
            Text(member.role),
            plain(person.name),
            plain(person.email),
            Text(member.start),
            plain(member.shows),
        )
    console.print(table)
    if not links:
        return
    until = min(link.expires_at for link in links)
    opened = "in a browser" if serving else "once `fairdraft serve` runs"
    console.print(
        Text(f"Sign in as one of them: open a link {opened}. Each works once, until ")
        + Text(f"{until:%H:%M} UTC;")
    )
    console.print(Text("make another with `fairdraft sign-in-link --person EMAIL`."))
    for link in links:
        console.print(plain(f"  {link.member.role}, {link.member.person.name}:"), soft_wrap=True)
        console.print(Text(f"    {link.url}"), soft_wrap=True)


# --- the server ---------------------------------------------------------------------------


@contextmanager
def _listening(settings: Settings) -> Iterator[socket.socket]:
    """The socket `fairdraft serve` would listen on, bound now; a taken port is a clear
    error before any set-up."""
    host, port = settings.api_host, settings.api_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise PortTaken(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        raise PortTaken(
            f"port {port} on {host} is taken (another `fairdraft serve` or demo?): stop it, "
            "or set FAIRDRAFT_API_PORT to a free port; the demo's data is kept",
            field="FAIRDRAFT_API_PORT",
        ) from None
    try:
        yield listener
    finally:
        listener.close()


@contextmanager
def _serving(
    settings: Settings,
    engine: Engine,
    listener: socket.socket,
    embedder: Embedder,
    parser: SenseParser,
) -> Iterator[str]:
    """`fairdraft serve`'s app (pages, API and a job worker) on the demo's database, in a
    thread of this process, with the models already loaded; its URL while it runs."""
    import uvicorn

    from service.app import create_app

    app = create_app(settings, engine=engine)
    app.state.embedder = OnFirstUse(lambda: embedder)
    app.state.parser = OnFirstUse(lambda: parser)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="on",
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.trusted_proxies,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="demo-server", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + _STARTED_WITHIN_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise ServerDidNotStart("the demo's server did not start; see the log above")
        time.sleep(0.02)
    try:
        yield served_url(*listener.getsockname()[:2])
    finally:
        server.should_exit = True
        thread.join(30)


def _wait(console: Console, url: str, stop: threading.Event | None) -> None:
    """Until Ctrl-C (or SIGTERM, or `stop`): then the server and the database stop."""
    console.print(
        Text(f"Serving {url} (pages and API, with a job worker). Ctrl-C stops it all."),
        soft_wrap=True,
    )
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        while not (stop is not None and stop.is_set()):
            time.sleep(0.2)
    except KeyboardInterrupt:
        console.print("Stopping the server and the database.")
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# --- what was stored and how long it took -------------------------------------------------


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


def _timing_table(timer: StepTimer, total: float) -> Table:
    table = Table(title="timings")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in timer.steps.items():
        table.add_row(name, f"{seconds:.2f}")
    table.add_row("total", f"{total:.2f}", style="bold")
    return table


def _figures(
    timer: StepTimer,
    summaries: Sequence[IngestSummary],
    outcomes: Sequence[DraftOutcome],
    total: float,
) -> dict[str, float]:
    figures = {name.replace(" ", "_") + "_s": round(v, 2) for name, v in timer.steps.items()}
    records = next((s for s in summaries if s.format == "records"), None)
    if records is not None:
        figures["records_ingested"] = records.rows
        figures["chunks_embedded"] = records.chunks_written
        figures["embed_s"] = round(records.embed_seconds, 2)
        figures["db_s"] = round(records.db_seconds, 2)
    shares = [o.citations.supported_share for o in outcomes if o.citations]
    figures["drafts"] = len(shares)
    if shares:
        figures["draft_supported_share_min"] = round(min(shares), 3)
    figures["total_s"] = round(total, 2)
    return figures
