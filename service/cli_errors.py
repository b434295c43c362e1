"""The errors a user can cause at the command line, said in one line each: every command
runs inside `user_errors()`, so none ends in a traceback for a mistake in its input."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.exc import OperationalError

from retrieval.periods import PeriodError
from retrieval.queries import UnknownDraftKind
from service.bias.gate import GateRefused
from service.calibration.panels import PanelRefused
from service.cli_output import print_row_errors
from service.db.embedded import EmbeddedDatabaseError
from service.db.migrate import SchemaOutOfDate
from service.drafting.llm import DraftingFailed
from service.drafting.store import DraftNotFound, StaleEdit
from service.drafting.text_format import DraftTextError
from service.ingest.directory import UnknownPerson
from service.ingest.errors import IngestError, IngestRefused

errors = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can cause into a message and a non-zero exit, no traceback."""
    try:
        yield
    except IngestRefused as exc:
        errors.print(f"[red]{escape(str(exc))}[/red]", soft_wrap=True)
        print_row_errors(errors, "invalid rows", exc.errors)
        raise typer.Exit(1) from None
    except (IngestError, PeriodError, UnknownDraftKind, UnknownPerson) as exc:
        errors.print(f"[red]error:[/red] {escape(str(exc))}")
        raise typer.Exit(2) from None
    except (GateRefused, DraftNotFound, StaleEdit, DraftTextError, PanelRefused) as exc:
        errors.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(1) from None
    except DraftingFailed as exc:
        errors.print(
            f"[red]drafting failed:[/red] {exc}. Nothing was stored; earlier drafts are kept."
        )
        raise typer.Exit(1) from None
    except (SchemaOutOfDate, EmbeddedDatabaseError) as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except OperationalError as exc:
        errors.print(f"[red]error:[/red] cannot reach the database: {exc.orig}")
        raise typer.Exit(1) from None
