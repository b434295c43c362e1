"""How ingest reports what is wrong with a file: every problem named by line, field, reason."""

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class RowError:
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.field}: {self.reason}"


class IngestRefused(Exception):
    """The file was refused whole and nothing was written."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        self.path = path
        self.errors = sorted(errors)
        rows = len({error.line for error in self.errors})
        super().__init__(
            f"{path}: refused, {rows} invalid row{'s' if rows != 1 else ''} "
            f"({len(self.errors)} problem{'s' if len(self.errors) != 1 else ''}); "
            "nothing was written"
        )


class IngestError(Exception):
    """A problem with the request rather than a row: unknown format, unreadable file."""
