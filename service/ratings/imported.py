"""Ratings from HR's ratings.csv, stored: the rows ingest read and checked, upserted on
(cycle, person, rater) in one statement, each change audited with its value before and
after (entity ids read cycle/employee/rater, like the workflow's)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.periods import Period
from service.audit import audit_rows
from service.db.models import Rating

Key = tuple[str, int, int]  # (cycle name, person id, rater id)


@dataclass(frozen=True)
class RatingRow:
    line: int
    cycle: Period
    person_id: int
    rater_id: int
    employee_id: str
    rater_employee_id: str
    rating: int
    calibrated_rating: int | None

    @property
    def key(self) -> Key:
        return (self.cycle.name, self.person_id, self.rater_id)


def store_imported(
    connection: Connection, rows: Sequence[RatingRow], cycles: Mapping[str, int], *, actor: str
) -> tuple[int, int, int]:
    """Store the rows whose values changed; (inserted, updated, unchanged)."""
    before = _stored(connection, cycles)
    changed = [r for r in rows if before.get(r.key) != (r.rating, r.calibrated_rating)]
    inserted = sum(r.key not in before for r in changed)
    _upsert(connection, changed, cycles)
    audit_rows(
        connection,
        actor=actor,
        action="rating.imported",
        entity="rating",
        changes=[
            (
                f"{r.cycle.name}/{r.employee_id}/{r.rater_employee_id}",
                _as_dict(before[r.key]) if r.key in before else None,
                _as_dict((r.rating, r.calibrated_rating)),
            )
            for r in changed
        ],
    )
    return inserted, len(changed) - inserted, len(rows) - len(changed)


def _as_dict(values: tuple[int, int | None]) -> dict[str, int | None]:
    return {"rating": values[0], "calibrated_rating": values[1]}


def _stored(connection: Connection, cycles: Mapping[str, int]) -> dict[Key, tuple[int, int | None]]:
    names = {cycle_id: name for name, cycle_id in cycles.items()}
    query = select(
        Rating.cycle_id, Rating.person_id, Rating.rater_id, Rating.rating, Rating.calibrated_rating
    ).where(Rating.cycle_id.in_(cycles.values()))
    return {
        (names[r.cycle_id], r.person_id, r.rater_id): (r.rating, r.calibrated_rating)
        for r in connection.execute(query)
    }


def _upsert(connection: Connection, rows: Sequence[RatingRow], cycles: Mapping[str, int]) -> None:
    if not rows:
        return
    values = [
        {
            "cycle_id": cycles[r.cycle.name],
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
