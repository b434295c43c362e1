"""Review cycles at the command line: `fairdraft cycle create|show|start|move|copy` and
`fairdraft tasks --person ...`.

A set-up is a TOML file with the API body's fields (README, "Review cycles"); the same
checks run on it as on the API's body, and a refusal names the file's key and the reason.
`--json` prints the same facts as one JSON document. Like every command module, this one
imports the database layer only inside the commands (tests/test_cli_startup.py).
"""

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from domain.periods import Period
from domain.phases import PHASES, TASK_STATUSES
from service.cli_errors import refuse_option, user_errors
from service.cli_lists import CycleFilter, JsonOption, LimitOption, OffsetOption, show
from service.cli_output import Column, Listing, plain, print_json
from service.cli_service import ACTOR, period_option
from service.settings import get_settings

if TYPE_CHECKING:
    from service.cycles.setup_store import StartSummary, StoredSetup
    from service.cycles.tasks import TaskLine

cycle_app = typer.Typer(help="Review cycles: set up, show, start and copy a period's cycle.")
out = Console(width=None if sys.stdout.isatty() else 4096)

CycleOption = Annotated[
    Period,
    typer.Option(
        "--period", help="the cycle, e.g. 2026-H2", parser=period_option, metavar="PERIOD"
    ),
]


def status_option(status: str | None) -> str | None:
    if status is not None and status not in TASK_STATUSES:
        refuse_option(
            f"--status: {status!r} is not a task status; use one of {', '.join(TASK_STATUSES)}"
        )
    return status


@cycle_app.command("create")
def cycle_create(
    period: CycleOption,
    setup: Annotated[
        Path,
        typer.Option(help="the set-up, a TOML file", exists=True, dir_okay=False, readable=True),
    ],
    as_json: JsonOption = False,
) -> None:
    """Set up the cycle of a period as a draft, from a TOML file (title, time_zone,
    participants, reviews, scale, questions or questions_file, phases)."""
    from service.cycles.setup import read_setup_file
    from service.cycles.setup_store import create_cycle
    from service.store import open_store

    with user_errors():
        body = read_setup_file(setup)
        with open_store(get_settings()) as engine, engine.begin() as conn:
            stored = create_cycle(conn, period, body, actor=ACTOR)
    _show_setup(stored, as_json)


@cycle_app.command("show")
def cycle_show(period: CycleOption, as_json: JsonOption = False) -> None:
    """Show a cycle's set-up, where it stands, and its tasks by kind."""
    from service.cycles.setup_store import cycle_setup
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        stored = cycle_setup(conn, period.name)
    _show_setup(stored, as_json)


@cycle_app.command("start")
def cycle_start(period: CycleOption, as_json: JsonOption = False) -> None:
    """Start a draft cycle: every participant's tasks are created; after this only the
    phase dates may change."""
    from service.cycles.setup_store import start_cycle
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        summary = start_cycle(conn, period.name, actor=ACTOR)
    _show_start(summary, as_json)


@cycle_app.command("copy")
def cycle_copy(
    source: Annotated[
        Period,
        typer.Option(
            "--from", help="the cycle to copy, e.g. 2026-H1", parser=period_option, metavar="PERIOD"
        ),
    ],
    period: CycleOption,
    as_json: JsonOption = False,
) -> None:
    """Set up a period's cycle as a copy of another, its dates moved by the distance
    between the two periods."""
    from service.cycles.setup_store import copy_cycle
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        stored = copy_cycle(conn, source.name, period, actor=ACTOR)
    _show_setup(stored, as_json)


def phase_option(phase: str) -> str:
    if phase not in PHASES:
        refuse_option(f"--phase: {phase!r} is not a phase; use one of {', '.join(PHASES)}")
    return phase


DayOption = Annotated[datetime, typer.Option(formats=["%Y-%m-%d"], metavar="YYYY-MM-DD")]


@cycle_app.command("move")
def cycle_move(
    period: CycleOption,
    phase: Annotated[str, typer.Option(help=f"one of {', '.join(PHASES)}", callback=phase_option)],
    opens: DayOption,
    due: DayOption,
    as_json: JsonOption = False,
) -> None:
    """Change a phase's dates (a started cycle's too): its open tasks move to the new due
    day; done and declined ones keep theirs."""
    from service.cycles.setup import CycleSetupPatch
    from service.cycles.setup_store import update_setup
    from service.store import open_store

    with user_errors():
        patch = CycleSetupPatch.model_validate(
            {"phases": {phase: {"opens": opens.date(), "due": due.date()}}}
        )
        with open_store(get_settings()) as engine, engine.begin() as conn:
            stored = update_setup(conn, period.name, patch, actor=ACTOR)
    _show_setup(stored, as_json)


def tasks(
    person: Annotated[str, typer.Option(help="employee_id or email of the person")],
    cycle: CycleFilter = None,
    status: Annotated[
        str | None,
        typer.Option(help=f"one of {', '.join(TASK_STATUSES)}", callback=status_option),
    ] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List a person's review-cycle tasks, soonest due first, overdue marked."""
    from datetime import UTC, datetime

    from domain.phases import TaskStatus
    from service.cycles.tasks import TaskLine, tasks_of
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        found = find_person(conn, person)
        items, total = tasks_of(
            conn,
            found.id,
            now=datetime.now(UTC),
            may_see=lambda _: True,  # the operator sees everyone
            cycle=None if cycle is None else cycle.name,
            status=None if status is None else TaskStatus(status),
            limit=limit,
            offset=offset,
        )
    listing = Listing[TaskLine](total=total, offset=offset, limit=limit, items=items)
    show(f"tasks of {person}", listing, TASK_COLUMNS, as_json)


TASK_COLUMNS: "tuple[Column[TaskLine], ...]" = (
    Column("cycle", lambda t: t.cycle),
    Column("task", lambda t: t.kind),
    Column("subject", lambda t: t.subject_name or ""),
    Column("phase", lambda t: t.phase),
    Column("due", lambda t: t.due_on.isoformat()),
    Column("status", lambda t: t.status),
    Column("overdue", lambda t: "overdue" if t.overdue else ""),
)


def _show_setup(stored: "StoredSetup", as_json: bool) -> None:
    if as_json:
        print_json(stored)
        return
    table = Table(title=plain(f"cycle {stored.period}"), show_header=False)
    table.add_column("field")
    table.add_column("value")
    who = stored.participants
    rows = [
        ("title", stored.title),
        ("status", stored.status),
        ("time zone", stored.time_zone),
        ("participants", f"hired on or before {who.cutoff}"),
        ("departments", ", ".join(who.departments) or "all"),
        ("levels", ", ".join(who.levels) or "all"),
        ("job families", ", ".join(who.job_families) or "all"),
        ("reviews", ", ".join(stored.reviews)),
        (
            "scale",
            "; ".join(
                f"{stored.scale.min + i} {label}" for i, label in enumerate(stored.scale.labels)
            ),
        ),
        *((f"phase {p}", f"{d.opens} to {d.due}") for p, d in stored.phases.items()),
        *((f"questions {kind}", " | ".join(texts)) for kind, texts in stored.questions.items()),
        ("copied from", stored.copied_from or ""),
        ("tasks", ", ".join(f"{k} {n}" for k, n in stored.tasks.items()) or "none yet"),
    ]
    for field, value in rows:
        table.add_row(field, plain(str(value)))
    out.print(table)


def _show_start(summary: "StartSummary", as_json: bool) -> None:
    if as_json:
        print_json(summary)
        return
    table = Table(title=plain(f"cycle {summary.period} started"))
    table.add_column("task")
    table.add_column("created", justify="right")
    for kind, count in summary.tasks.items():
        table.add_row(str(kind), str(count))
    table.caption = f"{summary.participants} participants"
    out.print(table)


# --- release and sign-off (issue 16) ------------------------------------------------------


@cycle_app.command("close")
def cycle_close(
    period: CycleOption,
    phase: Annotated[str, typer.Option(help=f"one of {', '.join(PHASES)}", callback=phase_option)],
    as_json: JsonOption = False,
) -> None:
    """Close a phase of a started cycle; calibration only once the cycle's bias report is
    current."""
    from domain.phases import Phase
    from service.cycles.release import close_phase
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        closed = close_phase(conn, period.name, Phase(phase), actor=ACTOR)
    if as_json:
        print_json(closed)
        return
    out.print(plain(f"{closed.phase} of {closed.period} closed by {closed.closed_by}"))


@cycle_app.command("release")
def cycle_release(
    period: CycleOption,
    department: Annotated[
        str | None, typer.Option(help="one department of the participants; none: everyone")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Release the cycle's reviews to its employees, all or one department, after
    calibration closed."""
    from service.cycles.release import release_cycle
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.begin() as conn:
        released = release_cycle(conn, period.name, department, actor=ACTOR)
    if as_json:
        print_json(released)
        return
    whom = "everyone" if released.department is None else f"department {released.department}"
    out.print(plain(f"{released.period} released to {whom}"))


def format_option(value: str) -> str:
    if value not in ("csv", "json"):
        refuse_option(f"--format: {value!r} is not a format; use csv or json")
    return value


@cycle_app.command("export")
def cycle_export_command(
    period: CycleOption,
    to: Annotated[
        str, typer.Option("--format", help="csv or json", callback=format_option)
    ] = "csv",
) -> None:
    """Print the cycle's decisions for pay and promotion: final ratings with labels,
    promotion recommendations, the bias report version (CSV: formula-looking cells
    neutralised)."""
    from service.cycles.export import cycle_export, export_csv
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        export = cycle_export(conn, period.name)
    if to == "json":
        print_json(export)
    else:
        sys.stdout.write(export_csv(export))
