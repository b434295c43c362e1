"""CSV exports never hand a spreadsheet a formula (domain/spreadsheet.py)."""

import csv
import io
from datetime import date

import pytest

from domain.spreadsheet import csv_text, safe_cell


@pytest.mark.parametrize(
    "typed", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_text_a_spreadsheet_would_run_is_written_as_text(typed: str) -> None:
    assert safe_cell(typed) == "'" + typed


def test_numbers_dates_and_ordinary_text_are_written_as_they_are() -> None:
    assert [safe_cell(v) for v in (-3, 2.5, date(2026, 12, 3), "Ana Lima", None, True)] == [
        "-3",
        "2.5",
        "2026-12-03",
        "Ana Lima",
        "",
        "true",
    ]


def test_a_document_quotes_commas_quotes_and_newlines_and_round_trips() -> None:
    text = csv_text(["name", "comment"], [["Lima, Ana", 'said "hi"\nthen =1+1'], ["=cmd", 4]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [
        ["name", "comment"],
        ["Lima, Ana", 'said "hi"\nthen =1+1'],
        ["'=cmd", "4"],
    ]
