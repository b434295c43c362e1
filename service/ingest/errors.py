"""How ingest reports what is wrong with a file: every problem named by line, field, reason."""

from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import Invalid

PROBLEMS_IN_REASON = 3  # the first problems in a one-line reason; the rest in details()
PROBLEMS_LISTED = 100


@dataclass(frozen=True, order=True)
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.reason}"


class IngestRefused(Invalid):
    """The file was refused whole and nothing was written."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        self.path = path
        self.errors = sorted(errors)
        rows = len({error.line for error in self.errors})
        super().__init__(
            f"{path}: refused, {rows} invalid row{'s' if rows != 1 else ''} "
            f"({len(self.errors)} problem{'s' if len(self.errors) != 1 else ''}); "
            "nothing was written",
            field="file",
        )

    @property
    def reason(self) -> str:
        """The refusal with its first problems, for answers that show one line."""
        shown = "; ".join(str(error) for error in self.errors[:PROBLEMS_IN_REASON])
        more = len(self.errors) - PROBLEMS_IN_REASON
        return f"{self}: {shown}" + (f"; and {more} more" if more > 0 else "")

    def details(self) -> Mapping[str, object]:
        problems = [
            {"line": e.line, "field": e.field, "reason": e.reason}
            for e in self.errors[:PROBLEMS_LISTED]
        ]
        return {"problems": problems}


class IngestError(Invalid):
    """A problem with the request rather than a row: unknown format, unreadable file."""
