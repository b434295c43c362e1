"""ratings.csv: ratings proposed by raters, with an optional calibrated value.

A cycle is named by its period (2026-H1), checked like every other period
(`retrieval.periods`). A cycle named in the file and not yet stored is created with the
default 1-5 scale and the dates its name spells: this import, run by HR, and HR's panel
set-up are the only ways a cycle comes to exist. Every rating that changes leaves an
audit event with its value before and after.
"""

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from retrieval.periods import PeriodError, parse_period
from service.audit import audit_rows
from service.db.models import Rating, ReviewCycle
from service.ingest.audited import audit_ingest
from service.ingest.csv_rows import CsvRow, read_csv
from service.ingest.directory import Directory
from service.ingest.errors import IngestRefused, RowError
from service.ingest.locks import hold_ingest_lock
from service.ingest.summary import IngestSummary

RATING_COLUMNS = ("cycle", "employee_id", "rater_id", "rating")
DEFAULT_SCALE = (1, 5)


@dataclass(frozen=True)
class Scale:
    low: int
    high: int


@dataclass(frozen=True)
class RatingRow:
    line: int
    cycle: str
    person_id: int
    rater_id: int
    employee_id: str
    rater_employee_id: str
    rating: int
    calibrated_rating: int | None

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.cycle, self.person_id, self.rater_id)


def load_scales(connection: Connection) -> dict[str, Scale]:
    query = select(ReviewCycle.name, ReviewCycle.scale_min, ReviewCycle.scale_max)
    return {r.name: Scale(r.scale_min, r.scale_max) for r in connection.execute(query)}


def parse_ratings(
    path: Path, directory: Directory, scales: dict[str, Scale], *, label: str | None = None
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
    row: CsvRow, directory: Directory, scales: dict[str, Scale]
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
    scale = scales.get(values["cycle"], Scale(*DEFAULT_SCALE))
    rating = _score(row.line, "rating", values["rating"], scale, errors)
    calibrated = _score(
        row.line, "calibrated_rating", values.get("calibrated_rating", ""), scale, errors
    )
    if values["cycle"]:
        try:
            parse_period(values["cycle"])
        except PeriodError as exc:
            errors.append(RowError(row.line, "cycle", str(exc)))
    if errors or person is None or rater is None or rating is None:
        return None, errors
    return (
        RatingRow(
            row.line,
            values["cycle"],
            person.id,
            rater.id,
            person.employee_id,
            rater.employee_id,
            rating,
            calibrated,
        ),
        [],
    )


def _score(line: int, field: str, text: str, scale: Scale, errors: list[RowError]) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        errors.append(RowError(line, field, f"{text!r} is not a whole number"))
        return None
    if not scale.low <= value <= scale.high:
        reason = f"{value} is outside the cycle's scale {scale.low}-{scale.high}"
        errors.append(RowError(line, field, reason))
        return None
    return value


def ensure_cycles(connection: Connection, names: set[str]) -> dict[str, int]:
    """Ids of the named cycles, creating the missing ones with the dates their names spell.
    Only HR's paths call it (this import, panel set-up): a manager's or a panel's request
    never creates a cycle. PeriodError for a name that is not a period."""
    if not names:
        return {}
    periods = [parse_period(name) for name in sorted(names)]
    values = [{"name": p.name, "starts_on": p.start, "ends_on": p.end} for p in periods]
    connection.execute(pg_insert(ReviewCycle).values(values).on_conflict_do_nothing())
    query = select(ReviewCycle.name, ReviewCycle.id).where(ReviewCycle.name.in_(names))
    return {r.name: r.id for r in connection.execute(query)}


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
    scales = load_scales(connection)
    rows, errors = parse_ratings(path, Directory.load(connection), scales, label=summary.path)
    if errors and not skip_invalid:
        raise IngestRefused(summary.path, errors)
    summary.refused = sorted(errors)
    if not rows:
        return summary
    cycles = ensure_cycles(connection, {r.cycle for r in rows})
    before = _stored_ratings(connection, rows, cycles)
    changed = [r for r in rows if before.get(r.key) != (r.rating, r.calibrated_rating)]
    summary.unchanged = len(rows) - len(changed)
    summary.inserted = sum(r.key not in before for r in changed)
    summary.updated = len(changed) - summary.inserted
    _upsert(connection, changed, cycles)
    audit_rows(
        connection,
        actor=actor,
        action="rating.imported",
        entity="rating",
        changes=[
            (
                f"{r.cycle}/{r.employee_id}/{r.rater_employee_id}",
                _as_dict(before[r.key]) if r.key in before else None,
                _as_dict((r.rating, r.calibrated_rating)),
            )
            for r in changed
        ],
    )
    return summary


def _as_dict(values: tuple[int, int | None]) -> dict[str, int | None]:
    return {"rating": values[0], "calibrated_rating": values[1]}


def _stored_ratings(
    connection: Connection, rows: list[RatingRow], cycles: dict[str, int]
) -> dict[tuple[str, int, int], tuple[int, int | None]]:
    names = {cycle_id: name for name, cycle_id in cycles.items()}
    query = select(
        Rating.cycle_id, Rating.person_id, Rating.rater_id, Rating.rating, Rating.calibrated_rating
    ).where(Rating.cycle_id.in_(cycles.values()))
    stored = {}
    for r in connection.execute(query):
        stored[(names[r.cycle_id], r.person_id, r.rater_id)] = (r.rating, r.calibrated_rating)
    return stored


def _upsert(connection: Connection, rows: list[RatingRow], cycles: dict[str, int]) -> None:
    if not rows:
        return
    values = [
        {
            "cycle_id": cycles[r.cycle],
            "person_id": r.person_id,
            "rater_id": r.rater_id,
            "rating": r.rating,
            "calibrated_rating": r.calibrated_rating,
        }
        for r in rows
    ]
    statement = pg_insert(Rating)
    statement = statement.on_conflict_do_update(
        index_elements=["cycle_id", "person_id", "rater_id"],
        set_={
            "rating": statement.excluded.rating,
            "calibrated_rating": statement.excluded.calibrated_rating,
            "updated_at": func.now(),
        },
    )
    connection.execute(statement, values)
