"""How the CLI shows ingest results and refusals."""

from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from retrieval.evidence import EvidencePack
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
            Text(Path(s.path).name),
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
    """One line per problem; fields and reasons quote the file, so they are shown as plain
    text (a "[/x]" in a value is not rich markup, and cannot break the output)."""
    table = Table(title=Text(title))
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("reason")
    for error in errors[:MAX_ERRORS_SHOWN]:
        table.add_row(str(error.line), Text(error.field), Text(error.reason))
    console.print(table)
    if len(errors) > MAX_ERRORS_SHOWN:
        console.print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")


def evidence_table(pack: EvidencePack, *, title: str) -> Table:
    table = Table(title=Text(title), show_lines=True, expand=True)
    for column in ("id", "date", "kind", "source", "vec / text / fused"):
        table.add_column(column, no_wrap=column != "source", ratio=None)
    table.add_column("text", ratio=1, min_width=50)
    for item in pack.items:
        scores = item.scores
        table.add_row(  # evidence as plain text: a "[/]" in it is not rich markup
            Text(item.id),
            item.occurred_at.date().isoformat(),
            Text(item.kind),
            Text(f"{item.source}/{item.external_id}"),
            f"{scores.vector:.2f} / {scores.text:.2f} / {scores.fused:.3f}",
            Text(item.text),
        )
    table.caption = (
        f"{len(pack.items)} items, {pack.tokens}/{pack.token_budget} tokens, "
        f"from {pack.candidates} candidate chunks ({pack.ranking} ranking)"
    )
    return table
