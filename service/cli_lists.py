"""The operator's lists: `fairdraft people`, `drafts list`, `token list`, `panel list`.

Each is a page (`--limit`, `--offset`) of what the room's query returns, shown as a table of
plain text or, with `--json`, as one JSON document with the same facts (service.cli_output).
The operator at the command line sees everyone, as every other command does; the queries
are the rooms' own, so a person-facing surface that lists the same things narrows them to
its caller's scope first.

`token list` and `panel list` join their groups' other commands (service.cli_service);
service.cli imports this module to register them. Like every command module, it imports the
database layer only inside the commands (tests/test_cli_startup.py).
"""

import sys
from typing import Annotated

import typer
from rich.console import Console

from domain.kinds import DRAFT_KINDS
from domain.periods import Period
from service.cli_errors import refuse_option, user_errors
from service.cli_output import (
    DRAFT_COLUMNS,
    PANEL_COLUMNS,
    PEOPLE_COLUMNS,
    TOKEN_COLUMNS,
    Column,
    Listing,
    T,
    listing_table,
    print_json,
)
from service.cli_service import panel_app, period_option, token_app
from service.settings import get_settings

drafts_app = typer.Typer(help="Drafts: find them by person, cycle, kind or status.")
# Piped (into grep, a file, a CI log), a row stays on one line however long a name is: the
# table is as wide as its content, never wrapped at a terminal's width that is not there.
out = Console(width=None if sys.stdout.isatty() else 4096)

MAX_LIMIT = 500
MAX_OFFSET = 10_000_000
MAX_SEARCH = 200
# The draft statuses, as service.drafting.store.DRAFT_STATUSES has them (a test holds the
# two equal): spelled here so that a wrong --status is refused before anything loads.
STATUSES = ("draft", "checked", "approved")


def limit_option(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        refuse_option(f"--limit: {limit} is not a page size; give 1 to {MAX_LIMIT}")
    return limit


def offset_option(offset: int) -> int:
    if not 0 <= offset <= MAX_OFFSET:
        refuse_option(f"--offset: {offset} is not a position; give 0 to {MAX_OFFSET}")
    return offset


def search_option(search: str | None) -> str | None:
    """Any text a name can hold, within a length; a NUL (which no name holds, and the
    database refuses) is refused here rather than as a database error."""
    if search is None:
        return None
    if len(search) > MAX_SEARCH:
        refuse_option(f"--search: {len(search)} characters; give at most {MAX_SEARCH}")
    if "\x00" in search:
        refuse_option("--search: a NUL character cannot be in a name, email or employee id")
    return search.strip() or None


def status_option(status: str | None) -> str | None:
    if status is not None and status not in STATUSES:
        refuse_option(f"--status: {status!r} is not a status; use one of {', '.join(STATUSES)}")
    return status


def kind_filter_option(kind: str | None) -> str | None:
    if kind is not None and kind not in DRAFT_KINDS:
        refuse_option(f"--kind: unknown draft kind {kind!r}; use one of {', '.join(DRAFT_KINDS)}")
    return kind


def cycle_filter_option(value: str | Period | None) -> Period | None:
    return None if value is None else period_option(value)


LimitOption = Annotated[
    int, typer.Option(help=f"rows per page, 1 to {MAX_LIMIT}", callback=limit_option)
]
OffsetOption = Annotated[
    int, typer.Option(help="rows to skip (the caption names the next page)", callback=offset_option)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="the same page as one JSON document on stdout")
]
PersonFilter = Annotated[str | None, typer.Option(help="employee_id or email of the person")]
CycleFilter = Annotated[
    Period | None,
    typer.Option(help="the cycle, e.g. 2026-H1", parser=cycle_filter_option, metavar="PERIOD"),
]


def show(title: str, listing: Listing[T], columns: tuple[Column[T], ...], as_json: bool) -> None:
    if as_json:
        print_json(listing)
    else:
        out.print(listing_table(title, listing, columns))


def people(
    search: Annotated[
        str | None,
        typer.Option(
            help="part of a name, email or employee id (any case)", callback=search_option
        ),
    ] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List people: employee id, name, email, roles, manager, level, department, and
    whether they can act now (a live API token or an open page session)."""
    from datetime import timedelta

    from service.access.people import PersonLine, list_people
    from service.store import open_store

    settings = get_settings()
    idle = timedelta(minutes=settings.session_idle_minutes)
    with user_errors(), open_store(settings) as engine, engine.connect() as conn:
        items, total = list_people(conn, search=search, limit=limit, offset=offset, idle=idle)
    listing = Listing[PersonLine](total=total, offset=offset, limit=limit, items=items)
    title = f"people matching {search!r}" if search else "people"
    show(title, listing, tuple(PEOPLE_COLUMNS), as_json)


@drafts_app.command("list")
def drafts_list(
    person: PersonFilter = None,
    cycle: CycleFilter = None,
    kind: Annotated[
        str | None,
        typer.Option(help=f"one of {', '.join(DRAFT_KINDS)}", callback=kind_filter_option),
    ] = None,
    status: Annotated[
        str | None, typer.Option(help=f"one of {', '.join(STATUSES)}", callback=status_option)
    ] = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List drafts, most recently changed first: subject, kind, period, status, current
    version, its supported share, the open flags of its check, and when it changed."""
    from service.drafting.store import DraftFilter, DraftLine, list_drafts
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        where = DraftFilter(
            subject_id=None if person is None else find_person(conn, person).id,
            period=None if cycle is None else cycle.name,
            kind=kind,
            status=status,
        )
        items, total = list_drafts(conn, where, limit=limit, offset=offset)
    listing = Listing[DraftLine](total=total, offset=offset, limit=limit, items=items)
    show("drafts", listing, tuple(DRAFT_COLUMNS), as_json)


@token_app.command("list")
def token_list(
    person: PersonFilter = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List tokens, newest first: owner, label, state, when made and by whom, expiry, last
    use, revocation. Never the token itself: it is shown once, when it is made."""
    from service.access.tokens import TokenLine, list_tokens
    from service.ingest.directory import find_person
    from service.store import open_store

    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        owner = None if person is None else find_person(conn, person).id
        items, total = list_tokens(conn, person_id=owner, limit=limit, offset=offset)
    listing = Listing[TokenLine](total=total, offset=offset, limit=limit, items=items)
    show("API tokens", listing, tuple(TOKEN_COLUMNS), as_json)


@panel_app.command("list")
def panel_list(
    cycle: CycleFilter = None,
    limit: LimitOption = 50,
    offset: OffsetOption = 0,
    as_json: JsonOption = False,
) -> None:
    """List calibration panels, newest cycle first: cohort, members, cohort size and how
    many of it are placed on the grid."""
    from service.calibration.panels import PanelLine, list_panels
    from service.store import open_store

    name = None if cycle is None else cycle.name
    with user_errors(), open_store(get_settings()) as engine, engine.connect() as conn:
        items, total = list_panels(conn, cycle=name, limit=limit, offset=offset)
    listing = Listing[PanelLine](total=total, offset=offset, limit=limit, items=items)
    show("calibration panels", listing, tuple(PANEL_COLUMNS), as_json)
