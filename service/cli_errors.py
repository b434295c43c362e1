"""The errors a user can cause at the command line, said in one line each: every command
runs inside `user_errors()`, so none ends in a traceback for a mistake in its input.

Errors are told by their class in domain.errors (standard library only, so importing it
keeps `fairdraft --help` fast); the database's own connection error is looked up only if
SQLAlchemy was imported, since otherwise it cannot have been raised.
"""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from domain.errors import Conflict, FairdraftError, Invalid, NotFound, Refused, Unavailable
from service.cli_output import print_row_errors

# Messages are printed with soft_wrap: one line each, however long the path in them, so
# the output does not depend on where the files live or how wide the terminal is.
errors = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def say(message: str) -> None:
    """One message on stderr, on one line (rich markup allowed; values must be escaped)."""
    errors.print(message, soft_wrap=True)


def refuse_option(message: str) -> NoReturn:
    """An option's value refused as it is parsed: one line and exit 2, before anything opens.
    `message` is plain text (it quotes the user's value), never markup."""
    say(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(2)


def _report(exc: Exception) -> int | None:
    """Say what went wrong and return the exit code, or None for an error that is not the
    user's (it propagates, with its traceback, as a bug). Exit 2: the command's input is
    wrong (a value, a name that matches nothing); exit 1: refused, failed, or a file
    refused whole, its rows listed."""
    if isinstance(exc, FairdraftError):
        problems = exc.details().get("problems")
        if problems:
            say(f"[red]{escape(str(exc))}[/red]")
            print_row_errors(errors, "invalid rows", getattr(exc, "errors", []))
            return 1
        say(f"[red]{_heading(exc)}:[/red] {escape(str(exc))}")
        return 2 if isinstance(exc, (Invalid, NotFound)) else 1
    database = sys.modules.get("sqlalchemy.exc")
    if database is not None and isinstance(exc, database.OperationalError):
        say(f"[red]error:[/red] cannot reach the database: {escape(str(exc.orig or exc))}")
        return 1
    return None


def _heading(exc: FairdraftError) -> str:
    if isinstance(exc, (Refused, Conflict)):
        return "refused"
    if isinstance(exc, Unavailable):
        return "failed, nothing was stored (try again later)"
    return "error"


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
