"""The `fairdraft` command line.

Each command imports what it runs inside its body: the database layer, the embedder and
LangChain load only for the commands that use them, so `fairdraft --help` and an option
refused as it is parsed answer at once. Only typer, rich, the settings and the option
validators load up front (tests/test_cli_startup.py holds this).
"""

import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from domain.kinds import DRAFT_KINDS, REVIEW_KINDS
from domain.periods import Period
from service.cli_connectors import connectors_app, sync
from service.cli_cycles import cycle_app, tasks
from service.cli_errors import errors, refuse_option, say, user_errors
from service.cli_hris import hris_app
from service.cli_lists import drafts_app, people
from service.cli_peers import (
    approve_nominations_command,
    nominate,
    nominations_show,
    peer_feedback,
)
from service.cli_reminders import remind
from service.cli_service import panel_app, period_option, role_app, serve, token_app, worker
from service.cli_sso import sso_app
from service.ingest.formats import FORMATS
from service.settings import Settings, get_settings

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from service.drafting.store import StoredVersion
    from service.drafting.structure import DraftBody
    from service.ingest.summary import IngestSummary

app = typer.Typer(help="fairdraft: evidence-based review drafts, checked for bias.")
db_app = typer.Typer(help="Database schema.")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(role_app, name="role")
app.add_typer(panel_app, name="panel")
app.add_typer(drafts_app, name="drafts")
app.add_typer(cycle_app, name="cycle")
app.add_typer(hris_app, name="hris")
app.add_typer(connectors_app, name="connectors")
app.add_typer(sso_app, name="sso")
cycle_app.command("nominations")(nominations_show)
cycle_app.command("nominate")(nominate)
cycle_app.command("approve-nominations")(approve_nominations_command)
cycle_app.command("peer-feedback")(peer_feedback)
app.command()(people)
app.command()(tasks)
app.command("remind")(remind)
app.command("sync")(sync)
app.command()(serve)
app.command()(worker)
# Piped output (CI logs, files) gets a fixed width so tables are not squeezed to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 120)


def draft_kind_option(kind: str) -> str:
    """Every --kind goes through one check as it is parsed, before a database opens: not a
    draft kind, one line and exit 2, like every other input error."""
    if kind not in DRAFT_KINDS:
        refuse_option(f"unknown draft kind {kind!r}; use one of {', '.join(DRAFT_KINDS)}")
    return kind


def draft_kinds_option(kinds: list[str] | None) -> list[str] | None:
    """The repeatable --kind of draft-cycle, each checked like a single one."""
    for kind in kinds or []:
        draft_kind_option(kind)
    return kinds


# Every period and cycle option goes through the one period validation as it is parsed.
PeriodOption = Annotated[
    Period,
    typer.Option(
        help="2026-H1, 2026-Q3, 2026-05, 2026 or a..b", parser=period_option, metavar="PERIOD"
    ),
]
CycleOption = Annotated[
    Period, typer.Option(help="the cycle, e.g. 2026-H1", parser=period_option, metavar="PERIOD")
]
KindOption = Annotated[
    str, typer.Option(help=f"one of {', '.join(DRAFT_KINDS)}", callback=draft_kind_option)
]


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING)
    check_settings()


def check_settings() -> None:
    """Read the settings before any command runs: a FAIRDRAFT_* variable out of bounds is
    a line per variable and exit 2, not a traceback from wherever it is first read. The
    value is not repeated (it may be a key)."""
    try:
        get_settings()
    except ValidationError as exc:
        for problem in exc.errors():
            name = "FAIRDRAFT_" + "_".join(str(part) for part in problem["loc"]).upper()
            where = name if problem["loc"] else "settings"
            say(f"[red]error:[/red] {escape(where)}: {escape(problem['msg'])}")
        raise typer.Exit(2) from None


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations (safe to run again)."""
    from service.db.engine import open_engine
    from service.db.migrate import current_revision, upgrade

    with user_errors(), open_engine(get_settings()) as engine:
        before = current_revision(engine)
        upgrade(engine)
        console.print(f"schema: {before or 'empty'} -> {current_revision(engine)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the one this code needs."""
    from service.db.engine import open_engine
    from service.db.migrate import current_revision, head_revision

    with user_errors(), open_engine(get_settings()) as engine:
        console.print(f"database: {current_revision(engine) or 'empty'}; code: {head_revision()}")


@db_app.command("index")
def db_index() -> None:
    """Build the HNSW index for org-wide similarity over the configured model's vectors."""
    from retrieval.similar import create_hnsw_index, stored_dimension
    from service.store import open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        dim = stored_dimension(engine, settings.embedding_model)
        if dim is None:
            console.print(
                f"no chunks embedded with {settings.embedding_model} yet; nothing to index"
            )
            return
        name = create_hnsw_index(
            engine, settings.embedding_model, dim, build_memory=settings.index_build_memory
        )
        console.print(f"index {name} is ready ({settings.embedding_model}, {dim} dimensions)")


@app.command()
def ingest(
    path: Annotated[
        Path, typer.Argument(help="people.csv, records.jsonl, ratings.csv or a folder")
    ],
    fmt: Annotated[
        str | None, typer.Option("--format", help=f"one of {', '.join(FORMATS)}")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="land the valid rows, list the invalid ones")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="the summary as one JSON document (a file per entry)")
    ] = False,
) -> None:
    """Validate and store an export; a file with an invalid row is refused whole."""
    settings = get_settings()
    with user_errors():
        summaries = run_ingest(settings, path, fmt=fmt, skip_invalid=skip_invalid)
        _show(summaries, as_json=as_json)


def run_ingest(
    settings: Settings, path: Path, *, fmt: str | None, skip_invalid: bool
) -> "list[IngestSummary]":
    from service.ingest.progress import NoProgress, RichProgress
    from service.ingest.run import Ingestor, files_to_ingest, ingest_path
    from service.ingest.validate import FileLimits, check_file
    from service.store import open_store

    # A missing path, or a file that is not a UTF-8 text export within the limits, is
    # reported before any server is started.
    if fmt is not None and path.is_file():
        files = [path]
    else:
        files = [file for file, _ in files_to_ingest(path)]
    limits = FileLimits.from_settings(settings)
    for file in files:
        check_file(file, limits)
    progress = RichProgress() if settings.progress else NoProgress()
    with open_store(settings) as engine:
        ingestor = Ingestor(engine, settings, actor=cli_actor(), progress=progress)
        return ingest_path(ingestor, path, fmt=fmt, skip_invalid=skip_invalid)


def _show(summaries: "list[IngestSummary]", *, as_json: bool) -> None:
    from service.cli_output import ingest_report, print_json, print_row_errors, summary_table

    if as_json:
        print_json(ingest_report(summaries))
        return
    console.print(summary_table(summaries))
    for summary in summaries:
        if summary.refused:
            # The path on a line of its own, never wrapped, however deep the file lies.
            console.print(Text(f"{summary.path}: skipped invalid rows"), soft_wrap=True)
            print_row_errors(console, "skipped invalid rows", summary.refused)


@app.command()
def evidence(
    person: Annotated[str, typer.Option(help="employee_id or email")],
    period: PeriodOption,
    kind: KindOption,
    budget: Annotated[int, typer.Option(help="token budget of the pack")] = 2000,
    ranking: Annotated[str, typer.Option(help="hybrid, vector or text")] = "hybrid",
) -> None:
    """Show the evidence pack a draft of this kind would be written from."""
    from retrieval.search import retrieve_evidence
    from service.cli_output import evidence_table
    from service.ingest.directory import find_person
    from service.store import embedder_from, open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine, engine.connect() as conn:
        subject = find_person(conn, person)
        pack = retrieve_evidence(
            conn,
            embedder_from(settings),
            subject_id=subject.id,
            period=period,
            draft_kind=kind,
            token_budget=budget,
            ranking=ranking,
        )
    console.print(evidence_table(pack, title=f"{kind} evidence for {person}, {period.name}"))
    if pack.message:
        console.print(pack.message)


@app.command()
def draft(
    person: Annotated[str, typer.Option(help="employee_id or email")],
    kind: KindOption,
    period: PeriodOption,
) -> None:
    """Draft a review text from the person's evidence (a new version if one exists)."""
    from service.drafting.display import print_draft
    from service.drafting.run import Drafting, draft_person, drafter_from, load_person
    from service.store import embedder_from, open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        run = Drafting(
            engine, settings, embedder_from(settings), drafter_from(settings), cli_actor()
        )
        subject = load_person(engine, person)
        outcome = asyncio.run(draft_person(run, subject, kind, period))
    print_draft(console, outcome, run.drafter.label)


@app.command("draft-cycle")
def draft_cycle_command(
    period: CycleOption,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            help="draft kinds (repeat); default: the three reviews", callback=draft_kinds_option
        ),
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="model calls at once (default FAIRDRAFT_LLM_CONCURRENCY)")
    ] = None,
) -> None:
    """Draft for everyone with evidence in the period; run again to resume after a failure."""
    from service.bias.report import check_cycle
    from service.drafting.display import cycle_table
    from service.drafting.run import Drafting, draft_cycle, drafter_from
    from service.ingest.progress import RichProgress
    from service.store import embedder_from, open_store, parser_from

    settings = get_settings()
    kinds: list[str] = kind or list(REVIEW_KINDS)
    with user_errors(), open_store(settings) as engine:
        run = Drafting(
            engine, settings, embedder_from(settings), drafter_from(settings), cli_actor()
        )
        summary = asyncio.run(
            draft_cycle(
                run,
                period,
                kinds,
                concurrency=concurrency or settings.llm_concurrency,
                progress=RichProgress(errors, min_total=0),
            )
        )
        with engine.begin() as conn:  # the stored ones arrive with their flags
            checked = check_cycle(conn, period, actor=cli_actor(), parser=parser_from(settings))
    console.print(cycle_table(summary))
    console.print(f"{checked} new drafts checked for biased language")
    for email, failed_kind, reason in summary.failed:
        errors.print(f"[red]failed[/red] {failed_kind} for {escape(email)}: {escape(reason)}")
    if summary.failed:
        errors.print("run the same command again to retry them; finished drafts are kept")
        raise typer.Exit(1)


@app.command()
def show(
    draft: Annotated[int, typer.Option(help="draft id")],
    version: Annotated[int | None, typer.Option(help="a version; default the current")] = None,
) -> None:
    """Print a draft version as plain text (the format `fairdraft edit` reads)."""
    from service.drafting.store import load_version, version_history
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        stored = load_version(conn, draft, version)
        history = version_history(conn, draft)
    errors.print(
        f"draft {draft}, version {stored.version} of {len(history)}, by {stored.author} "
        f"({stored.origin}) at {stored.created_at:%Y-%m-%d %H:%M}"
    )
    sys.stdout.write(stored.body.as_text() + "\n")


@app.command()
def edit(
    draft: Annotated[int, typer.Option(help="draft id")],
    based_on: Annotated[int, typer.Option(help="the version you edited (from `show`)")],
    file: Annotated[
        Path, typer.Option(help="the edited text", exists=True, dir_okay=False, readable=True)
    ],
    by: Annotated[str, typer.Option(help="who edits (name or email)")],
) -> None:
    """Save an edited text as the draft's next version; refused if someone saved since."""
    from service.drafting.text_format import parse_text
    from service.store import open_store

    with user_errors():
        body = parse_text(file.read_text())
        with open_store(get_settings()) as engine:
            saved = _save_or_keep(engine, draft, based_on, body, by)
    report = saved.citations
    console.print(
        f"draft {draft} is at version {saved.version}; supported sentences "
        f"{report.supported}/{report.sentences}"
    )
    for flag in report.flags:
        if flag.problem == "unknown_citation":
            console.print(Text(f"removed {flag.citation}: not an id of this draft's evidence"))


@app.command("bias-report")
def bias_report(
    cycle: CycleOption,
    json_output: Annotated[
        bool, typer.Option("--json", help="the stored report as JSON, as the API returns it")
    ] = False,
) -> None:
    """Check every draft of the cycle and its ratings across groups; store and print the
    report, flagged findings first. For HR: it reads the restricted demographics."""
    from service.bias.display import print_report
    from service.bias.report import build_report
    from service.cli_output import print_json
    from service.drafting.store import DraftFilter, count_drafts
    from service.ingest.progress import stage
    from service.store import open_store, parser_from

    settings = get_settings()
    with user_errors(), open_store(settings) as engine, engine.begin() as conn:
        _require_cycle(conn, cycle)  # before the parser loads or anything is checked
        drafts = count_drafts(conn, DraftFilter(period=cycle.name))
        with stage(errors, f"bias report {cycle.name}: checking {drafts} drafts and the ratings"):
            report = build_report(conn, cycle, actor=cli_actor(), parser=parser_from(settings))
    if json_output:
        print_json(report)
    else:
        print_report(console, report)


def _require_cycle(conn: "Connection", cycle: Period) -> None:
    """A cycle is one HR set up (ratings, a panel) or a period that has drafts; any other
    name is refused, naming the ones there are, so a typo does not store an empty report."""
    from service.cycles.store import cycle_scales
    from service.drafting.store import draft_periods
    from service.ratings.workflow import UnknownCycle

    known = sorted(set(cycle_scales(conn)) | set(draft_periods(conn)), reverse=True)
    if cycle.name not in known:
        listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "") or "none yet"
        raise UnknownCycle(
            f"cycle: no review cycle {cycle.name} (none set up, no drafts for that period); "
            f"cycles: {listed}",
            field="cycle",
        )


@app.command("bias-probe")
def bias_probe(
    period: CycleOption,
    kind: KindOption,
    sample: Annotated[int, typer.Option(help="people to draft twice")] = 20,
    seed: Annotated[int, typer.Option(help="seed of the sample")] = 7,
) -> None:
    """Draft again with names and pronouns swapped, and show how far the language moved."""
    from service.bias.counterfactual import probe
    from service.bias.display import probe_table
    from service.drafting.run import Drafting, cycle_people, drafter_from
    from service.store import embedder_from, open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        run = Drafting(
            engine, settings, embedder_from(settings), drafter_from(settings), cli_actor()
        )
        people = cycle_people(engine, period, settings.embedding_model)
        result = asyncio.run(probe(run, people, kind, period, sample=sample, seed=seed))
    console.print(probe_table(result))


@app.command("check-draft")
def check_draft_command(draft: Annotated[int, typer.Option(help="draft id")]) -> None:
    """Run the bias check on a draft's current version and list its flags."""
    from service.bias.gate import check_draft
    from service.store import open_store, parser_from

    settings = get_settings()
    with user_errors(), open_store(settings) as engine, engine.begin() as conn:
        result = check_draft(conn, draft, actor=cli_actor(), parser=parser_from(settings))
    console.print(f"draft {draft} version {result.version} checked: {len(result.flags)} flags")
    for flag in result.flags:
        console.print(  # the phrase is the draft's own text: plain, not markup
            Text(
                f"  {flag['key']} {flag['measure']}: {flag['phrase']!r} (section "
                f"{flag['section'] + 1}, sentence {flag['sentence'] + 1}). {flag['suggestion']}"
            )
        )


@app.command()
def acknowledge(
    draft: Annotated[int, typer.Option(help="draft id")],
    flag: Annotated[str, typer.Option(help="flag key from the check, e.g. F2")],
    by: Annotated[str, typer.Option(help="who decides (name or email)")],
    reason: Annotated[str, typer.Option(help="why the wording stays")],
) -> None:
    """Keep a flagged phrase, on the record, with a reason."""
    from service.bias.gate import acknowledge_flag
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        acknowledge_flag(conn, draft, flag, by=by, reason=reason)
    console.print(Text(f"flag {flag} of draft {draft} acknowledged by {by}"))


@app.command()
def approve(
    draft: Annotated[int, typer.Option(help="draft id")],
    by: Annotated[str, typer.Option(help="who approves (name or email)")],
) -> None:
    """Approve a draft: only after a check of its current version, with no open flag."""
    from service.bias.gate import approve_draft
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        approve_draft(conn, draft, by=by)
    console.print(Text(f"draft {draft} approved by {by}"))


@app.command("finalise-rating")
def finalise_rating_command(
    cycle: CycleOption,
    person: Annotated[str, typer.Option(help="employee_id or email")],
    by: Annotated[str, typer.Option(help="who finalises")],
) -> None:
    """Finalise a person's rating, once the cycle's bias report has seen the ratings."""
    from service.ingest.directory import find_person
    from service.ratings.workflow import finalise_rating
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        finalise_rating(conn, cycle.name, find_person(conn, person).id, by=by)
    console.print(Text(f"rating of {person} in {cycle.name} finalised by {by}"))


def _save_or_keep(
    engine: "Engine", draft: int, based_on: int, body: "DraftBody", by: str
) -> "StoredVersion":
    """Save the edit; a stale one is kept as a non-current version, then refused."""
    from service.drafting.store import StaleEdit, save_or_keep_edit

    with engine.begin() as conn:
        outcome = save_or_keep_edit(conn, draft_id=draft, based_on=based_on, body=body, author=by)
    if outcome.saved is None:
        kept = outcome.kept_version
        errors.print(f"your text is kept as version {kept} of draft {draft} (not current)")
        raise StaleEdit(draft, based_on, outcome.current_version)
    return outcome.saved


@app.command()
def reembed(
    batch_size: Annotated[int, typer.Option(help="chunks per committed batch")] = 1000,
) -> None:
    """Embed every chunk not yet embedded with the configured model (after changing it)."""
    from retrieval.reembed import reembed as reembed_chunks
    from retrieval.reembed import stale_chunk_count
    from service.ingest.progress import NoProgress, RichProgress
    from service.store import embedder_from, open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine:
        stale = stale_chunk_count(engine, settings.embedding_model)
        if not stale:
            console.print(f"every chunk is embedded with {settings.embedding_model}")
            return
        embedder = embedder_from(settings)
        progress = RichProgress(min_total=0) if settings.progress else NoProgress()
        with progress.task(f"embedding with {embedder.name}", stale) as advance:
            result = reembed_chunks(engine, embedder, batch_size=batch_size, on_batch=advance)
        console.print(
            f"re-embedded {result.chunks} chunks with {embedder.name} "
            f"({result.seconds_embedding:.1f} s in the model)"
        )


@app.command("sign-in-link")
def sign_in_link(
    person: Annotated[str, typer.Option(help="employee_id or email of who signs in")],
) -> None:
    """Make a one-time sign-in link for a person: it works once, for 30 minutes. The link
    goes to stdout (alone, for scripts); who it is for and until when, to stderr."""
    from service.access.links import base_url, issue_link
    from service.cli_output import plain
    from service.ingest.directory import find_person
    from service.store import open_store

    settings = get_settings()
    with user_errors(), open_store(settings) as engine, engine.begin() as conn:
        subject = find_person(conn, person)
        issued = issue_link(conn, subject.id, actor=cli_actor())
    errors.print(
        plain(
            f"one-time sign-in link for {issued.name} <{issued.email}>: works once, "
            f"until {issued.expires_at:%Y-%m-%d %H:%M} UTC"
        ),
        soft_wrap=True,
    )
    sys.stdout.write(issued.url(base_url(settings)) + "\n")


@app.command()
def demo(
    people: Annotated[int, typer.Option(min=30, max=5000, help="size of the synthetic org")] = 120,
    seed: Annotated[int, typer.Option(help="seed of the synthetic org")] = 7,
    no_serve: Annotated[
        bool,
        typer.Option(
            "--no-serve", help="set up and print the demo's people, then exit (for scripts)"
        ),
    ] = False,
) -> None:
    """Generate a synthetic org, ingest, embed and draft from it, run the cycle's bias
    report, then serve the pages and print one-time sign-in links for an employee, a
    manager, a calibration panel member and an HR admin; Ctrl-C stops it all."""
    from evals.process_clock import process_started

    started = process_started()  # before the imports below, which the total counts too
    # The generator is a benchmark tool (evals/), imported only when the demo runs.
    from evals.demo import run_demo

    with user_errors():
        run_demo(
            get_settings(), console, people=people, seed=seed, serve=not no_serve, started=started
        )
