"""How the CLI shows ingest results and refusals."""

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from service.ingest.errors import RowError
from service.ingest.summary import IngestSummary

MAX_ERRORS_SHOWN = 200


def summary_table(summaries: Sequence[IngestSummary]) -> Table:
    table = Table(title="ingest")
    for column in ("file", "format", "new", "updated", "same", "refused", "chunks"):
        table.add_column(column, justify="left" if column in ("file", "format") else "right")
    for column in ("embed s", "db s", "total s"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            Path(s.path).name,
            s.format,
            str(s.inserted),
            str(s.updated),
            str(s.unchanged),
            str(len(s.refused)),
            str(s.chunks_written),
            f"{s.embed_seconds:.2f}",
            f"{s.db_seconds:.2f}",
            f"{s.seconds:.2f}",
        )
    return table


def print_row_errors(console: Console, title: str, errors: Sequence[RowError]) -> None:
    table = Table(title=title)
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("reason")
    for error in errors[:MAX_ERRORS_SHOWN]:
        table.add_row(str(error.line), error.field, error.reason)
    console.print(table)
    if len(errors) > MAX_ERRORS_SHOWN:
        console.print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")
