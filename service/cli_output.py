"""How the CLI shows what it found: ingest results and refusals, evidence, and the
operator's lists (people, drafts, tokens, panels), as tables or, with --json, as one JSON
document holding the same facts.

Every value from the data (names, emails, labels, evidence) goes into a table as
`rich.text.Text`, never as markup: a name like "[bold]x[/]" is printed as typed. The list
models are the rooms' own (imported only for type checking: this module loads at start-up,
before any command runs, and must not pull the database layer in).
"""

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table
from rich.text import Text

from retrieval.evidence import EvidencePack
from service.ingest.errors import RowError
from service.ingest.summary import IngestSummary

if TYPE_CHECKING:
    from service.access.people import PersonLine
    from service.access.tokens import TokenLine
    from service.calibration.panels import PanelLine
    from service.drafting.store import DraftLine

MAX_ERRORS_SHOWN = 200
T = TypeVar("T", bound=BaseModel)
# What a terminal would act on rather than show: C0 controls but tab and newline (ESC
# starts colour, cursor, title and OSC 8 hyperlink sequences), DEL, the C1 controls (0x9b
# is a one-byte CSI) and the bidirectional overrides that reorder what is shown. Rich
# keeps ESC in a Text; these are shown as escapes instead.
_TERMINAL_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_JSON_CONTROLS = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def plain(value: str) -> Text:
    """Text from the data as a terminal shows it: no rich markup read in it, and no control
    sequence passed through (shown as \\x1b, \\u202e, ...)."""
    return Text(_TERMINAL_CONTROLS.sub(_escaped, value))


def summary_table(summaries: Sequence[IngestSummary]) -> Table:
    table = Table(title="ingest")
    for column in ("file", "format", "new", "updated", "same", "refused", "chunks"):
        table.add_column(column, justify="left" if column in ("file", "format") else "right")
    for column in ("embed s", "db s", "total s"):
        table.add_column(column, justify="right")
    for s in summaries:
        table.add_row(
            plain(Path(s.path).name),
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
        table.add_row(str(error.line), plain(error.field), plain(error.reason))
    console.print(table)
    if len(errors) > MAX_ERRORS_SHOWN:
        console.print(f"... and {len(errors) - MAX_ERRORS_SHOWN} more")


def evidence_table(pack: EvidencePack, *, title: str) -> Table:
    table = Table(title=plain(title), show_lines=True, expand=True)
    for column in ("id", "date", "kind", "source", "vec / text / fused"):
        table.add_column(column, no_wrap=column != "source", ratio=None)
    table.add_column("text", ratio=1, min_width=50)
    for item in pack.items:
        scores = item.scores
        table.add_row(  # evidence as plain text: a "[/]" in it is not rich markup
            plain(item.id),
            item.occurred_at.date().isoformat(),
            plain(item.kind),
            plain(f"{item.source}/{item.external_id}"),
            f"{scores.vector:.2f} / {scores.text:.2f} / {scores.fused:.3f}",
            plain(item.text),
        )
    table.caption = (
        f"{len(pack.items)} items, {pack.tokens}/{pack.token_budget} tokens, "
        f"from {pack.candidates} candidate chunks ({pack.ranking} ranking)"
    )
    return table


def print_json(document: BaseModel) -> None:
    """One JSON document on stdout, written as is: never through rich, which would wrap a
    long string at the console's width and read brackets in it as markup."""
    text = document.model_dump_json(indent=2)  # C0 controls come out as \\u00XX already
    text = _JSON_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class RowProblem(BaseModel):
    line: int
    field: str
    reason: str


class IngestedFile(BaseModel):
    """One file's ingest, as the summary table and the list of skipped rows show it."""

    path: str
    format: str
    inserted: int
    updated: int
    unchanged: int
    refused: int  # rows skipped as invalid (--skip-invalid)
    chunks_written: int
    embed_seconds: float
    db_seconds: float
    seconds: float
    refused_rows: list[RowProblem]


class IngestReport(BaseModel):
    files: list[IngestedFile]


def ingest_report(summaries: Sequence[IngestSummary]) -> IngestReport:
    return IngestReport(
        files=[
            IngestedFile(
                path=s.path,
                format=s.format,
                inserted=s.inserted,
                updated=s.updated,
                unchanged=s.unchanged,
                refused=len(s.refused),
                chunks_written=s.chunks_written,
                embed_seconds=s.embed_seconds,
                db_seconds=s.db_seconds,
                seconds=s.seconds,
                refused_rows=[
                    RowProblem(line=e.line, field=e.field, reason=e.reason) for e in s.refused
                ],
            )
            for s in summaries
        ]
    )


class Listing(BaseModel, Generic[T]):
    """A page of a list: the items shown, where they start, and how many there are."""

    model_config = ConfigDict(frozen=True)

    total: int
    offset: int
    limit: int
    items: list[T]


@dataclass(frozen=True)
class Column(Generic[T]):
    header: str
    cell: Callable[[T], str]
    justify: Literal["left", "right"] = "left"


def listing_table(title: str, listing: Listing[T], columns: Sequence[Column[T]]) -> Table:
    """The page as a table of plain text, with where it is in the whole as its caption."""
    table = Table(title=plain(title))
    for column in columns:
        table.add_column(column.header, justify=column.justify)
    for item in listing.items:
        table.add_row(*(plain(column.cell(item)) for column in columns))
    table.caption = Text(page_caption(listing))
    return table


def page_caption(listing: Listing[T]) -> str:
    shown = len(listing.items)
    if not shown:
        return f"none of {listing.total}" if listing.total else "none"
    caption = f"{listing.offset + 1} to {listing.offset + shown} of {listing.total}"
    if listing.offset + shown < listing.total:
        caption += f"; next page: --offset {listing.offset + shown}"
    return caption


def when(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


PEOPLE_COLUMNS: "Sequence[Column[PersonLine]]" = (
    Column("employee id", lambda p: p.employee_id),
    Column("name", lambda p: p.name),
    Column("email", lambda p: p.email),
    Column("roles", lambda p: ", ".join(p.roles)),
    Column("manager", lambda p: p.manager or ""),
    Column("level", lambda p: p.level),
    Column("department", lambda p: p.department),
    Column("active", lambda p: "yes" if p.active else "no"),
)
DRAFT_COLUMNS: "Sequence[Column[DraftLine]]" = (
    Column("id", lambda d: str(d.id), "right"),
    Column("subject", lambda d: d.subject),
    Column("employee id", lambda d: d.employee_id),
    Column("kind", lambda d: d.kind),
    Column("period", lambda d: d.period),
    Column("status", lambda d: d.status),
    Column("version", lambda d: str(d.version), "right"),
    Column("supported", lambda d: f"{d.supported_share:.0%}", "right"),
    Column("open flags", lambda d: "not checked" if d.open_flags is None else str(d.open_flags)),
    Column("updated", lambda d: when(d.updated_at)),
)
TOKEN_COLUMNS: "Sequence[Column[TokenLine]]" = (
    Column("id", lambda t: str(t.id), "right"),
    Column("owner", lambda t: t.owner),
    Column("label", lambda t: t.label),
    Column("state", lambda t: t.state),
    Column("created", lambda t: when(t.created_at)),
    Column("created by", lambda t: t.created_by),
    Column("expires", lambda t: when(t.expires_at)),
    Column("last used", lambda t: when(t.last_used_at)),
    Column("revoked", lambda t: when(t.revoked_at)),
)
PANEL_COLUMNS: "Sequence[Column[PanelLine]]" = (
    Column("id", lambda p: str(p.id), "right"),
    Column("cycle", lambda p: p.cycle),
    Column("level", lambda p: p.level),
    Column("job family", lambda p: p.job_family),
    Column("members", lambda p: ", ".join(f"{m.name} ({m.employee_id})" for m in p.members)),
    Column("cohort", lambda p: str(p.cohort), "right"),
    Column("placed", lambda p: str(p.placed), "right"),
    Column("created by", lambda p: p.created_by),
    Column("created", lambda p: when(p.created_at)),
)
