"""The errors a user can cause at the command line, said in one line each: every command
runs inside `user_errors()`, so none ends in a traceback for a mistake in its input.

The error classes live in the modules that raise them, some of which import the database
layer or LangChain. Naming them here by module and class name, and looking them up only
among the modules already imported, keeps `fairdraft --help` and a refused option free of
those imports: an exception whose module was never imported cannot have been raised.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from service.cli_output import print_row_errors

# Messages are printed with soft_wrap: one line each, however long the path in them, so
# the output does not depend on where the files live or how wide the terminal is.
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

# (module, class names): what each outcome catches; the first that matches decides.
ClassRefs = tuple[tuple[str, tuple[str, ...]], ...]
INPUT_ERRORS: ClassRefs = (
    ("service.ingest.errors", ("IngestError",)),
    ("retrieval.periods", ("PeriodError",)),
    ("retrieval.queries", ("UnknownDraftKind",)),
    ("service.ingest.directory", ("UnknownPerson",)),
)
REFUSALS: ClassRefs = (
    ("service.bias.gate", ("GateRefused",)),
    ("service.drafting.store", ("DraftNotFound", "StaleEdit")),
    ("service.drafting.text_format", ("DraftTextError",)),
    ("service.calibration.panels", ("PanelRefused",)),
)
DRAFTING_FAILED: ClassRefs = (("service.drafting.llm", ("DraftingFailed",)),)
SERVER_ERRORS: ClassRefs = (
    ("service.db.migrate", ("SchemaOutOfDate",)),
    ("service.db.embedded", ("EmbeddedDatabaseError",)),
    ("service.drafting.kind_data", ("KindDataError",)),
)
UNREACHABLE: ClassRefs = (("sqlalchemy.exc", ("OperationalError",)),)
REFUSED_FILE: ClassRefs = (("service.ingest.errors", ("IngestRefused",)),)


def say(message: str) -> None:
    """One message on stderr, on one line (rich markup allowed; values must be escaped)."""
    errors.print(message, soft_wrap=True)


def refuse_option(message: str) -> NoReturn:
    """An option's value refused as it is parsed: one line and exit 2, before anything opens.
    `message` is plain text (it quotes the user's value), never markup."""
    say(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _loaded(refs: ClassRefs) -> tuple[type[BaseException], ...]:
    """The named exception classes whose modules are imported; the others cannot be what
    was raised, so they are skipped rather than imported."""
    found: list[type[BaseException]] = []
    for module_name, names in refs:
        module = sys.modules.get(module_name)
        for name in names:
            cls = getattr(module, name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


def _report(exc: Exception) -> int | None:
    """Say what went wrong and return the exit code, or None for an error that is not the
    user's (it propagates, with its traceback, as a bug)."""
    if isinstance(exc, _loaded(REFUSED_FILE)):
        say(f"[red]{escape(str(exc))}[/red]")
        print_row_errors(errors, "invalid rows", getattr(exc, "errors", []))
        return 1
    if isinstance(exc, _loaded(INPUT_ERRORS)):
        say(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    if isinstance(exc, _loaded(REFUSALS)):
        say(f"[red]refused:[/red] {escape(str(exc))}")
        return 1
    if isinstance(exc, _loaded(DRAFTING_FAILED)):
        say(
            f"[red]drafting failed:[/red] {escape(str(exc))}. "
            "Nothing was stored; earlier drafts are kept."
        )
        return 1
    if isinstance(exc, _loaded(SERVER_ERRORS)):
        say(f"[red]error:[/red] {escape(str(exc))}")
        return 1
    if isinstance(exc, _loaded(UNREACHABLE)):
        say(
            f"[red]error:[/red] cannot reach the database: {escape(str(getattr(exc, 'orig', exc)))}"
        )
        return 1
    return None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into a message and a non-zero exit, no traceback."""
    try:
        yield
    except Exception as exc:
        code = _report(exc)
        if code is None:
            raise
        raise typer.Exit(code) from None
