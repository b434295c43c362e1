"""ratings.csv: ratings proposed by raters, with an optional calibrated value.

Reading and checking the file is ingest's; the rows are stored by the ratings room
(service/ratings/imported.py). A cycle is named by its period (2026-H1), checked like every
other period (`domain.periods`). A cycle named in the file and not yet stored is created
(service/cycles) with the default 1-5 scale and the dates its period spans: this import,
run by HR, and HR's panel set-up are the only ways a cycle comes to exist.
"""

from pathlib import Path

from sqlalchemy import Connection, Engine

from domain.periods import PeriodError, parse_period
from service.cycles.store import DEFAULT_SCALE, CycleScale, create_cycles, cycle_scales
from service.ingest.audited import audit_ingest
from service.ingest.csv_rows import CsvRow, read_csv
from service.ingest.directory import Directory
from service.ingest.errors import IngestRefused, RowError
from service.ingest.locks import hold_ingest_lock
from service.ingest.summary import IngestSummary
from service.ratings.imported import RatingRow, store_imported

RATING_COLUMNS = ("cycle", "employee_id", "rater_id", "rating")


def parse_ratings(
    path: Path, directory: Directory, scales: dict[str, CycleScale], *, label: str | None = None
) -> tuple[list[RatingRow], list[RowError]]:
    _, rows = read_csv(path, RATING_COLUMNS, label=label)
    parsed: list[RatingRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, int, int], int] = {}
    for row in rows:
        rating, row_errors = _parse_row(row, directory, scales)
        if rating is not None and rating.key in seen:
            reason = f"this cycle, employee and rater already appear on line {seen[rating.key]}"
            row_errors.append(RowError(row.line, "rater_id", reason))
            rating = None
        errors.extend(row_errors)
        if rating is not None:
            seen[rating.key] = row.line
            parsed.append(rating)
    return parsed, errors


def _parse_row(
    row: CsvRow, directory: Directory, scales: dict[str, CycleScale]
) -> tuple[RatingRow | None, list[RowError]]:
    values = row.values
    errors = [
        RowError(row.line, name, "is required") for name in RATING_COLUMNS if not values[name]
    ]
    person = directory.find(values["employee_id"]) if values["employee_id"] else None
    rater = directory.find(values["rater_id"]) if values["rater_id"] else None
    if values["employee_id"] and person is None:
        reason = f"unknown employee {values['employee_id']!r}"
        errors.append(RowError(row.line, "employee_id", reason))
    if values["rater_id"] and rater is None:
        errors.append(RowError(row.line, "rater_id", f"unknown employee {values['rater_id']!r}"))
    found = scales.get(values["cycle"])
    scale = (found.low, found.high) if found is not None else DEFAULT_SCALE
    rating = _score(row.line, "rating", values["rating"], scale, errors)
    calibrated = _score(
        row.line, "calibrated_rating", values.get("calibrated_rating", ""), scale, errors
    )
    cycle = None
    if values["cycle"]:
        try:
            cycle = parse_period(values["cycle"])
        except PeriodError as exc:
            errors.append(RowError(row.line, "cycle", str(exc)))
    if errors or cycle is None or person is None or rater is None or rating is None:
        return None, errors
    return (
        RatingRow(
            row.line,
            cycle,
            person.id,
            rater.id,
            person.employee_id,
            rater.employee_id,
            rating,
            calibrated,
        ),
        [],
    )


def _score(
    line: int, field: str, text: str, scale: tuple[int, int], errors: list[RowError]
) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        errors.append(RowError(line, field, f"{text!r} is not a whole number"))
        return None
    low, high = scale
    if not low <= value <= high:
        reason = f"{value} is outside the cycle's scale {low}-{high}"
        errors.append(RowError(line, field, reason))
        return None
    return value


def ingest_ratings(
    engine: Engine, path: Path, *, actor: str, skip_invalid: bool, label: str | None = None
) -> IngestSummary:
    """One transaction under the ingest lock (see ingest_people)."""
    with engine.begin() as connection:
        hold_ingest_lock(connection)
        summary = _ingest(connection, path, actor=actor, skip_invalid=skip_invalid, label=label)
        audit_ingest(connection, summary, actor)
    return summary


def _ingest(
    connection: Connection, path: Path, *, actor: str, skip_invalid: bool, label: str | None
) -> IngestSummary:
    summary = IngestSummary(path=label or str(path), format="ratings")
    scales = cycle_scales(connection)
    rows, errors = parse_ratings(path, Directory.load(connection), scales, label=summary.path)
    if errors and not skip_invalid:
        raise IngestRefused(summary.path, errors)
    summary.refused = sorted(errors)
    if not rows:
        return summary
    cycles = create_cycles(connection, {r.cycle for r in rows}, actor=actor)
    counts = store_imported(connection, rows, cycles, actor=actor)
    summary.inserted, summary.updated, summary.unchanged = counts
    return summary
