"""people.csv: the HRIS export. Demographic columns go to the restricted table.

The one home of people's writes: people.csv and every mapped HRIS export (service/ingest/
hris/) turn their rows into PersonRow values and store them through `store_people`, with
the same checks, the same upsert, and the same answer to "what changed".

Leavers: an optional `termination_date` column. A date today or past makes the person
inactive (people.active false, people.left_on that date), a future one sets left_on and
keeps them active, an empty one makes them active again (re-hired, corrected). A file
without the column leaves active and left_on as they are (SCIM may have set them).
Nobody is ever deleted: a leaver keeps their evidence and reviews.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

from service.audit import audit_rows
from service.db.models import Demographic, Person
from service.ingest.audited import audit_ingest
from service.ingest.csv_rows import CsvRow, read_csv
from service.ingest.errors import IngestRefused, RowError
from service.ingest.locks import hold_ingest_lock
from service.ingest.summary import IngestSummary

PEOPLE_COLUMNS = (
    "employee_id",
    "name",
    "email",
    "manager_id",
    "level",
    "job_family",
    "department",
    "location",
    "hire_date",
)
LEAVING_COLUMN = "termination_date"  # optional; not a demographic attribute
_REQUIRED_VALUES = ("employee_id", "name", "email", "level", "job_family", "department", "location")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELD_LIMITS = {
    "employee_id": 64,
    "manager_id": 64,  # another row's employee_id
    "email": 320,
    "level": 32,
    "job_family": 128,
    "department": 128,
    "location": 128,
}
_ATTRIBUTE_LIMIT = 64
_SHOWN = 60  # characters of a value quoted in an error: the messages travel in cookies too


@dataclass(frozen=True)
class PersonRow:
    line: int
    employee_id: str
    name: str
    email: str
    manager_employee_id: str | None
    level: str
    job_family: str
    department: str
    location: str
    hire_date: date | None
    termination_date: date | None = None  # stored as people.left_on
    active: bool = True
    demographics: dict[str, str] = field(default_factory=dict)

    def facts(self) -> tuple[object, ...]:
        """What must differ for the row to count as an update."""
        return (
            self.name,
            self.email,
            self.manager_employee_id,
            self.level,
            self.job_family,
            self.department,
            self.location,
            self.hire_date,
            self.termination_date,
            self.active,
            tuple(sorted(self.demographics.items())),
        )


@dataclass
class PeopleBatch:
    """Parsed rows on their way to the store, from people.csv or a mapped export.
    `attributes`: the demographic columns the file carries (only those are replaced);
    `leaving`: whether it says who left (a termination_date column or its mapping)."""

    rows: list[PersonRow]
    errors: list[RowError]
    attributes: list[str]
    leaving: bool
    refused_ids: frozenset[str] = frozenset()  # employee_ids of rows refused on their own


def shown(value: str) -> str:
    """A value quoted in an error, cut short: a 5,000-character cell is named, not echoed."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "...")


def today_utc() -> date:
    """The day a termination date is compared with."""
    return datetime.now(UTC).date()


def is_active(termination_date: date | None, today: date) -> bool:
    """Active until the termination date: a date today or past means gone."""
    return termination_date is None or termination_date > today


@dataclass(frozen=True)
class ExistingPerson:
    id: int
    row: PersonRow


def parse_people(
    path: Path, *, label: str | None = None, today: date | None = None
) -> tuple[list[PersonRow], list[RowError], list[str]]:
    """Rows that are valid on their own, the errors, and the demographic column names."""
    batch = read_people(path, label=label, today=today)
    return batch.rows, batch.errors, batch.attributes


def read_people(path: Path, *, label: str | None = None, today: date | None = None) -> PeopleBatch:
    """people.csv parsed: the rows valid on their own, every row's errors, the columns."""
    header, rows = read_csv(path, PEOPLE_COLUMNS, label=label)
    attributes = [name for name in header if name not in (*PEOPLE_COLUMNS, LEAVING_COLUMN)]
    check_attribute_names(attributes, label or str(path))
    day = today or today_utc()
    parsed: list[PersonRow] = []
    errors: list[RowError] = []
    refused: set[str] = set()
    for row in rows:
        person, row_errors = parse_person(row, attributes, day)
        errors.extend(row_errors)
        if person is not None:
            parsed.append(person)
        elif row.values.get("employee_id"):
            refused.add(row.values["employee_id"])
    leaving = LEAVING_COLUMN in header
    return PeopleBatch(parsed, errors, attributes, leaving, frozenset(refused))


def check_attribute_names(attributes: list[str], label: str) -> None:
    """Demographic column names are stored as values of a 64-character column."""
    errors = [
        RowError(1, name[:_ATTRIBUTE_LIMIT] + "...", f"longer than {_ATTRIBUTE_LIMIT} characters")
        for name in attributes
        if len(name) > _ATTRIBUTE_LIMIT
    ]
    if errors:
        raise IngestRefused(label, errors)


def parse_person(
    row: CsvRow, attributes: list[str], today: date
) -> tuple[PersonRow | None, list[RowError]]:
    """One row in people.csv's columns (dates as YYYY-MM-DD) checked on its own."""
    values = row.values
    errors = [
        RowError(row.line, name, "is required") for name in _REQUIRED_VALUES if not values.get(name)
    ]
    if "__extra__" in values:
        errors.append(RowError(row.line, "(row)", "more values than header columns"))
    errors.extend(
        RowError(row.line, name, f"longer than {limit} characters")
        for name, limit in _FIELD_LIMITS.items()
        if len(values.get(name, "")) > limit
    )
    email = values.get("email", "").lower()
    if email and not _EMAIL.match(email):
        errors.append(RowError(row.line, "email", f"{shown(email)} is not an email address"))
    hire_date = _iso_date(row, "hire_date", errors)
    termination_date = _iso_date(row, LEAVING_COLUMN, errors)
    if errors:
        return None, errors
    person = PersonRow(
        line=row.line,
        employee_id=values["employee_id"],
        name=values["name"],
        email=email,
        manager_employee_id=values.get("manager_id") or None,
        level=values["level"],
        job_family=values["job_family"],
        department=values["department"],
        location=values["location"],
        hire_date=hire_date,
        termination_date=termination_date,
        active=is_active(termination_date, today),
        demographics={name: values[name] for name in attributes if values.get(name)},
    )
    return person, []


def _iso_date(row: CsvRow, name: str, errors: list[RowError]) -> date | None:
    """The column's date, None when empty; a value that is not one adds an error."""
    value = row.values.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(RowError(row.line, name, f"{shown(value)} is not a date (YYYY-MM-DD)"))
        return None


def load_existing_people(connection: Connection) -> dict[str, ExistingPerson]:
    """Everyone already stored, keyed by employee_id, with manager and demographics."""
    manager = aliased(Person)
    query = select(
        Person.id,
        Person.employee_id,
        Person.name,
        Person.email,
        manager.employee_id.label("manager_employee_id"),
        Person.level,
        Person.job_family,
        Person.department,
        Person.location,
        Person.hire_date,
        Person.left_on,
        Person.active,
    ).outerjoin(manager, Person.manager_id == manager.id)
    demographics: dict[int, dict[str, str]] = {}
    for demo in connection.execute(
        select(Demographic.person_id, Demographic.attribute, Demographic.value)
    ):
        demographics.setdefault(demo.person_id, {})[demo.attribute] = demo.value
    existing: dict[str, ExistingPerson] = {}
    for row in connection.execute(query):
        person = PersonRow(
            line=0,
            employee_id=row.employee_id,
            name=row.name,
            email=row.email,
            manager_employee_id=row.manager_employee_id,
            level=row.level,
            job_family=row.job_family,
            department=row.department,
            location=row.location,
            hire_date=row.hire_date,
            termination_date=row.left_on,
            active=row.active,
            demographics=demographics.get(row.id, {}),
        )
        existing[row.employee_id] = ExistingPerson(row.id, person)
    return existing


def check_people(
    rows: list[PersonRow],
    existing: dict[str, ExistingPerson],
    refused: frozenset[str] = frozenset(),
) -> tuple[list[PersonRow], list[RowError]]:
    """Checks across rows: duplicates, email clashes, managers that exist, no loops.
    `refused`: employee_ids of the file's rows already refused on their own, so that the
    people they manage are told why their manager is missing."""
    given = {row.employee_id for row in rows}
    rows, errors = _drop_duplicates(rows, existing)
    dropped = given - {row.employee_id for row in rows}
    rows, manager_errors = _drop_unknown_managers(rows, existing, set(refused) | dropped)
    errors.extend(manager_errors)
    rows, loop_errors = _drop_manager_loops(rows, existing)
    return rows, errors + loop_errors


def _drop_duplicates(
    rows: list[PersonRow], existing: dict[str, ExistingPerson]
) -> tuple[list[PersonRow], list[RowError]]:
    first_line: dict[str, int] = {}
    email_line: dict[str, int] = {}
    owner = {e.row.email.lower(): employee_id for employee_id, e in existing.items()}
    new_email = {row.employee_id: row.email for row in rows}
    kept: list[PersonRow] = []
    errors: list[RowError] = []
    for row in rows:
        if row.employee_id in first_line:
            reason = f"{row.employee_id} already appears on line {first_line[row.employee_id]}"
            errors.append(RowError(row.line, "employee_id", reason))
            continue
        if row.email in email_line:
            reason = f"{row.email} already used on line {email_line[row.email]}"
            errors.append(RowError(row.line, "email", reason))
            continue
        holder = owner.get(row.email)
        if holder and holder != row.employee_id and new_email.get(holder, row.email) == row.email:
            reason = f"{row.email} already belongs to employee {holder}"
            errors.append(RowError(row.line, "email", reason))
            continue
        first_line[row.employee_id] = row.line
        email_line[row.email] = row.line
        kept.append(row)
    return kept, errors


def _drop_unknown_managers(
    rows: list[PersonRow], existing: dict[str, ExistingPerson], refused: set[str]
) -> tuple[list[PersonRow], list[RowError]]:
    """Repeat until stable: skipping a row can orphan the people it manages."""
    errors: list[RowError] = []
    while True:
        known = set(existing) | {row.employee_id for row in rows}
        problems = {row.employee_id: _manager_problem(row, known, refused) for row in rows}
        bad = {employee_id: problem for employee_id, problem in problems.items() if problem}
        if not bad:
            return rows, errors
        errors.extend(
            RowError(r.line, "manager_id", bad[r.employee_id]) for r in rows if r.employee_id in bad
        )
        rows = [row for row in rows if row.employee_id not in bad]
        refused = refused | set(bad)


def _manager_problem(row: PersonRow, known: set[str], refused: set[str]) -> str:
    manager = row.manager_employee_id
    if manager is None:
        return ""
    if manager == row.employee_id:
        return "a person cannot be their own manager"
    if manager not in known and manager in refused:
        return f"manager {manager} is in this file, but their row is refused"
    if manager not in known:
        return f"manager {manager} is not in this file or the database"
    return ""


def _drop_manager_loops(
    rows: list[PersonRow], existing: dict[str, ExistingPerson]
) -> tuple[list[PersonRow], list[RowError]]:
    manager_of = {eid: e.row.manager_employee_id for eid, e in existing.items()}
    manager_of.update({row.employee_id: row.manager_employee_id for row in rows})
    errors: list[RowError] = []
    kept: list[PersonRow] = []
    for row in rows:
        seen = {row.employee_id}
        current = row.manager_employee_id
        while current is not None and current not in seen:
            seen.add(current)
            current = manager_of.get(current)
        if current is not None:
            reason = f"the management chain from {row.manager_employee_id} loops back to {current}"
            errors.append(RowError(row.line, "manager_id", reason))
        else:
            kept.append(row)
    return kept, errors


def classify(
    rows: list[PersonRow],
    existing: dict[str, ExistingPerson],
    attributes: list[str],
    *,
    leaving: bool = True,
) -> tuple[list[PersonRow], list[PersonRow], int]:
    """New rows, changed rows and the number unchanged; demographics are compared only on
    the attribute columns this file carries, and leaving only if the file says it."""
    new: list[PersonRow] = []
    changed: list[PersonRow] = []
    unchanged = 0
    for row in rows:
        before = existing.get(row.employee_id)
        if before is None:
            new.append(row)
            continue
        stored = {k: v for k, v in before.row.demographics.items() if k in attributes}
        stored_row = replace(before.row, line=row.line, demographics=stored)
        if not leaving:
            stored_row = replace(stored_row, termination_date=None, active=True)
        if stored_row.facts() == row.facts():
            unchanged += 1
        else:
            changed.append(row)
    return new, changed, unchanged


def write_people(
    connection: Connection,
    rows: list[PersonRow],
    attributes: list[str],
    batch_rows: int,
    *,
    leaving: bool = False,
) -> None:
    """Upsert people with their managers, then replace the demographic attributes this
    file carries. `leaving`: also write active and left_on (the file says who left)."""
    if not rows:
        return
    ids = _upsert_in_rounds(connection, rows, batch_rows, leaving)
    _replace_demographics(connection, rows, attributes, ids)


def _upsert_in_rounds(
    connection: Connection, rows: list[PersonRow], batch_rows: int, leaving: bool
) -> dict[str, int]:
    """Each person is written with their manager in the same statement, so the manager
    history trigger (migration 0017) sees one change, never a spell without a manager in
    between: people whose manager is already stored first, then the people they manage.
    check_people has refused loops and unknown managers, so every round makes progress."""
    ids = ids_by_employee_id(connection, _managers(rows))
    pending = rows
    while pending:
        ready = [r for r in pending if r.manager_employee_id in ids or not r.manager_employee_id]
        if not ready:
            raise RuntimeError("people left unwritten: a manager loop passed check_people")
        for start in range(0, len(ready), batch_rows):
            batch = ready[start : start + batch_rows]
            ids.update(_upsert(connection, [_values(r, ids, leaving) for r in batch]))
        written = {r.employee_id for r in ready}
        pending = [r for r in pending if r.employee_id not in written]
    return ids


def _values(row: PersonRow, ids: dict[str, int], leaving: bool) -> dict[str, object]:
    values: dict[str, object] = {
        "employee_id": row.employee_id,
        "name": row.name,
        "email": row.email,
        "manager_id": ids[row.manager_employee_id] if row.manager_employee_id else None,
        "level": row.level,
        "job_family": row.job_family,
        "department": row.department,
        "location": row.location,
        "hire_date": row.hire_date,
    }
    if leaving:
        values["active"] = row.active
        values["left_on"] = row.termination_date
    return values


def _upsert(connection: Connection, values: list[dict[str, object]]) -> dict[str, int]:
    statement = pg_insert(Person).values(values)
    updates: dict[str, Any] = {
        name: statement.excluded[name] for name in values[0] if name != "employee_id"
    }
    updates["updated_at"] = func.now()
    written = connection.execute(
        statement.on_conflict_do_update(index_elements=["employee_id"], set_=updates).returning(
            Person.employee_id, Person.id
        )
    )
    return {row.employee_id: row.id for row in written}


def _managers(rows: list[PersonRow]) -> set[str]:
    return {row.manager_employee_id for row in rows if row.manager_employee_id}


def ids_by_employee_id(connection: Connection, employee_ids: set[str]) -> dict[str, int]:
    """Our ids of the people with these HRIS ids (those that exist)."""
    query = select(Person.employee_id, Person.id).where(Person.employee_id.in_(employee_ids))
    return {row.employee_id: row.id for row in connection.execute(query)}


def _replace_demographics(
    connection: Connection, rows: list[PersonRow], attributes: list[str], ids: dict[str, int]
) -> None:
    if not attributes:
        return
    person_ids = [ids[row.employee_id] for row in rows]
    connection.execute(
        delete(Demographic).where(
            Demographic.person_id.in_(person_ids), Demographic.attribute.in_(attributes)
        )
    )
    values = [
        {"person_id": ids[row.employee_id], "attribute": name, "value": value}
        for row in rows
        for name, value in row.demographics.items()
    ]
    if values:
        connection.execute(insert(Demographic), values)


def ingest_people(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    skip_invalid: bool,
    batch_rows: int,
    label: str | None = None,
    today: date | None = None,
) -> IngestSummary:
    """Validate the whole file, then write it in one transaction; under the ingest lock,
    so a second ingest of the same file waits and then finds it all stored."""
    with engine.begin() as connection:
        hold_ingest_lock(connection)
        summary = IngestSummary(path=label or str(path), format="people")
        batch = read_people(path, label=summary.path, today=today)
        store_people(
            connection,
            batch,
            summary,
            existing=load_existing_people(connection),
            skip_invalid=skip_invalid,
            batch_rows=batch_rows,
        )
        audit_ingest(connection, summary, actor)
    return summary


@dataclass(frozen=True)
class Leavers:
    """People a batch made inactive (their termination date has come, or their status says
    so) and people it made active again, by employee_id."""

    deactivated: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)


def leavers_of(written: list[PersonRow], existing: dict[str, ExistingPerson]) -> Leavers:
    def was_active(row: PersonRow) -> bool:
        before = existing.get(row.employee_id)
        return before is None or before.row.active

    return Leavers(
        deactivated=sorted(r.employee_id for r in written if was_active(r) and not r.active),
        reactivated=sorted(r.employee_id for r in written if r.active and not was_active(r)),
    )


def store_people(
    connection: Connection,
    batch: PeopleBatch,
    summary: IngestSummary,
    *,
    existing: dict[str, ExistingPerson],
    skip_invalid: bool,
    batch_rows: int,
    named: Callable[[RowError], RowError] = lambda error: error,
) -> Leavers:
    """Check the rows across the file and against what is stored, then write what is new
    or changed and count it in `summary`. Any invalid row refuses the whole batch unless
    `skip_invalid`. `named` renames the cross-row checks' fields as the file names them
    (a mapped export's own columns; the batch's errors come named). The caller holds the
    ingest lock and audits. Returns who this batch made inactive or active again."""
    rows, check_errors = check_people(batch.rows, existing, batch.refused_ids)
    errors = [*batch.errors, *(named(error) for error in check_errors)]
    if errors and not skip_invalid:
        raise IngestRefused(summary.path, errors)
    new, changed, summary.unchanged = classify(
        rows, existing, batch.attributes, leaving=batch.leaving
    )
    write_people(connection, new + changed, batch.attributes, batch_rows, leaving=batch.leaving)
    summary.inserted, summary.updated = len(new), len(changed)
    summary.refused = sorted(errors)
    return leavers_of(new + changed, existing) if batch.leaving else Leavers()


def deactivate_leavers(connection: Connection, *, today: date, actor: str) -> list[str]:
    """Everyone whose termination date has come, made inactive now rather than at the next
    import (a periodic task's job; one audit event each). Their employee_ids."""
    statement = (
        update(Person)
        .where(Person.active, Person.left_on <= today)
        .values(active=False, updated_at=func.now())
        .returning(Person.employee_id, Person.left_on)
    )
    gone = connection.execute(statement).all()
    audit_rows(
        connection,
        actor=actor,
        action="person.deactivated",
        entity="person",
        changes=[
            (row.employee_id, {"active": True}, {"active": False, "left_on": str(row.left_on)})
            for row in gone
        ],
    )
    return sorted(row.employee_id for row in gone)
