"""CSV a spreadsheet opens safely: every export (HR's dashboard, the cycle's decisions) is
written here, once.

A cell whose text starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula (OWASP "CSV injection"): a name or a
comment an employee typed could then run on HR's machine. Such a cell is written with a
leading apostrophe, which every one of them shows as text. Numbers are written as numbers
(a negative number is not text someone typed); everything else is text.
"""

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
Cell = str | int | float | bool | date | datetime | None


def safe_cell(value: Cell) -> str:
    """One cell's text: empty for None, ISO for dates, numbers as they are, and text that a
    spreadsheet would read as a formula neutralised with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """A whole CSV document (RFC 4180 quoting, CRLF line ends) with every cell made safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([safe_cell(h) for h in header])
    writer.writerows([safe_cell(c) for c in row] for row in rows)
    return out.getvalue()
