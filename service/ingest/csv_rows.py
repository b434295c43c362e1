"""Reading a CSV export with its header checked and each row's line number kept."""

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.ingest.errors import IngestRefused, RowError


@dataclass(frozen=True)
class CsvRow:
    line: int
    values: dict[str, str]


def read_csv(
    path: Path, required: tuple[str, ...], *, label: str | None = None, delimiter: str = ","
) -> tuple[list[str], list[CsvRow]]:
    """The header and the rows; a header lacking required columns refuses the file, and so
    does CSV the reader cannot follow (a field over its size limit, a stray quote at the
    end), with the line it stopped at. `delimiter`: a mapped HRIS export may use ";"."""
    name = label or str(path)
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [column.strip() for column in next(reader, [])]
            _check_header(name, header, required)
            return header, list(_rows(reader, header))
        except csv.Error as exc:
            reason = f"unreadable CSV: {exc}"
            raise IngestRefused(
                name, [RowError(max(reader.line_num, 1), "(csv)", reason)]
            ) from None


def _check_header(path: str, header: list[str], required: tuple[str, ...]) -> None:
    errors = [
        RowError(1, name, "required column is missing from the header")
        for name in required
        if name not in header
    ]
    seen: set[str] = set()
    for name in header:
        if not name:
            errors.append(RowError(1, "(header)", "a column has no name"))
        elif name in seen:
            errors.append(RowError(1, name, "column appears twice in the header"))
        seen.add(name)
    if errors:
        expected = ",".join(required)
        errors.append(RowError(1, "(header)", f"expected at least: {expected}"))
        raise IngestRefused(path, errors)


def _rows(reader: Any, header: list[str]) -> Iterator[CsvRow]:
    """`reader` is a csv reader; its line_num gives the physical line of quoted multi-line rows."""
    for values in reader:
        line = reader.line_num
        if not any(v.strip() for v in values):
            continue
        padded = values + [""] * (len(header) - len(values))
        row = {name: value.strip() for name, value in zip(header, padded, strict=False)}
        if len(values) > len(header):
            row["__extra__"] = str(len(values) - len(header))
        yield CsvRow(line, row)
