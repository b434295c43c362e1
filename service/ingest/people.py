"""people.csv: the HRIS export. Demographic columns go to the restricted table."""

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

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
_REQUIRED_VALUES = ("employee_id", "name", "email", "level", "job_family", "department", "location")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_FIELD_LIMITS = {
    "employee_id": 64,
    "email": 320,
    "level": 32,
    "job_family": 128,
    "department": 128,
    "location": 128,
}
_ATTRIBUTE_LIMIT = 64


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
            tuple(sorted(self.demographics.items())),
        )


@dataclass(frozen=True)
class ExistingPerson:
    id: int
    row: PersonRow


def parse_people(
    path: Path, *, label: str | None = None
) -> tuple[list[PersonRow], list[RowError], list[str]]:
    """Rows that are valid on their own, the errors, and the demographic column names."""
    header, rows = read_csv(path, PEOPLE_COLUMNS, label=label)
    attributes = [name for name in header if name not in PEOPLE_COLUMNS]
    _check_attribute_names(attributes, label or str(path))
    parsed: list[PersonRow] = []
    errors: list[RowError] = []
    for row in rows:
        person, row_errors = _parse_row(row, attributes)
        errors.extend(row_errors)
        if person is not None:
            parsed.append(person)
    return parsed, errors, attributes


def _check_attribute_names(attributes: list[str], label: str) -> None:
    """Demographic column names are stored as values of a 64-character column."""
    errors = [
        RowError(1, name[:_ATTRIBUTE_LIMIT] + "...", f"longer than {_ATTRIBUTE_LIMIT} characters")
        for name in attributes
        if len(name) > _ATTRIBUTE_LIMIT
    ]
    if errors:
        raise IngestRefused(label, errors)


def _parse_row(row: CsvRow, attributes: list[str]) -> tuple[PersonRow | None, list[RowError]]:
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
        errors.append(RowError(row.line, "email", f"{email!r} is not an email address"))
    hire_date = None
    if values.get("hire_date"):
        try:
            hire_date = date.fromisoformat(values["hire_date"])
        except ValueError:
            reason = f"{values['hire_date']!r} is not a date (YYYY-MM-DD)"
            errors.append(RowError(row.line, "hire_date", reason))
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
        demographics={name: values[name] for name in attributes if values.get(name)},
    )
    return person, []


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
            demographics=demographics.get(row.id, {}),
        )
        existing[row.employee_id] = ExistingPerson(row.id, person)
    return existing


def check_people(
    rows: list[PersonRow], existing: dict[str, ExistingPerson]
) -> tuple[list[PersonRow], list[RowError]]:
    """Checks across rows: duplicates, email clashes, managers that exist, no loops."""
    rows, errors = _drop_duplicates(rows, existing)
    rows, manager_errors = _drop_unknown_managers(rows, existing)
    errors.extend(manager_errors)
    rows, loop_errors = _drop_manager_loops(rows, existing)
    return rows, errors + loop_errors


def _drop_duplicates(
    rows: list[PersonRow], existing: dict[str, ExistingPerson]
) -> tuple[list[PersonRow], list[RowError]]:
    first_line: dict[str, int] = {}
    email_line: dict[str, int] = {}
    owner = {e.row.email: employee_id for employee_id, e in existing.items()}
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
    rows: list[PersonRow], existing: dict[str, ExistingPerson]
) -> tuple[list[PersonRow], list[RowError]]:
    """Repeat until stable: skipping a row can orphan the people it manages."""
    errors: list[RowError] = []
    while True:
        known = set(existing) | {row.employee_id for row in rows}
        problems = {row.employee_id: _manager_problem(row, known) for row in rows}
        bad = {employee_id: problem for employee_id, problem in problems.items() if problem}
        if not bad:
            return rows, errors
        errors.extend(
            RowError(r.line, "manager_id", bad[r.employee_id]) for r in rows if r.employee_id in bad
        )
        rows = [row for row in rows if row.employee_id not in bad]


def _manager_problem(row: PersonRow, known: set[str]) -> str:
    manager = row.manager_employee_id
    if manager is None:
        return ""
    if manager == row.employee_id:
        return "a person cannot be their own manager"
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
    rows: list[PersonRow], existing: dict[str, ExistingPerson], attributes: list[str]
) -> tuple[list[PersonRow], list[PersonRow], int]:
    """New rows, changed rows and the number unchanged; demographics are compared only on
    the attribute columns this file carries."""
    new: list[PersonRow] = []
    changed: list[PersonRow] = []
    unchanged = 0
    for row in rows:
        before = existing.get(row.employee_id)
        if before is None:
            new.append(row)
            continue
        stored = {k: v for k, v in before.row.demographics.items() if k in attributes}
        stored_row = PersonRow(**{**before.row.__dict__, "demographics": stored})
        if stored_row.facts() == row.facts():
            unchanged += 1
        else:
            changed.append(row)
    return new, changed, unchanged


def write_people(
    connection: Connection, rows: list[PersonRow], attributes: list[str], batch_rows: int
) -> None:
    """Upsert people, then link managers (which may be new too), then replace the
    demographic attributes this file carries."""
    if not rows:
        return
    values = [
        {
            "employee_id": row.employee_id,
            "name": row.name,
            "email": row.email,
            "level": row.level,
            "job_family": row.job_family,
            "department": row.department,
            "location": row.location,
            "hire_date": row.hire_date,
        }
        for row in rows
    ]
    for start in range(0, len(values), batch_rows):
        statement = pg_insert(Person).values(values[start : start + batch_rows])
        updates: dict[str, Any] = {
            name: statement.excluded[name] for name in values[0] if name != "employee_id"
        }
        updates["updated_at"] = func.now()
        connection.execute(
            statement.on_conflict_do_update(index_elements=["employee_id"], set_=updates)
        )
    ids = _ids_by_employee_id(connection, {r.employee_id for r in rows} | _managers(rows))
    _link_managers(connection, rows, ids)
    _replace_demographics(connection, rows, attributes, ids)


def _managers(rows: list[PersonRow]) -> set[str]:
    return {row.manager_employee_id for row in rows if row.manager_employee_id}


def _ids_by_employee_id(connection: Connection, employee_ids: set[str]) -> dict[str, int]:
    query = select(Person.employee_id, Person.id).where(Person.employee_id.in_(employee_ids))
    return {row.employee_id: row.id for row in connection.execute(query)}


def _link_managers(connection: Connection, rows: list[PersonRow], ids: dict[str, int]) -> None:
    links = [
        {
            "pid": ids[row.employee_id],
            "mid": ids[row.manager_employee_id] if row.manager_employee_id else None,
        }
        for row in rows
    ]
    statement = (
        update(Person)
        .where(Person.id == bindparam("pid"))
        .values(manager_id=bindparam("mid"))
        .execution_options(synchronize_session=False)
    )
    connection.execute(statement, links)


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
) -> IngestSummary:
    """Validate the whole file, then write it in one transaction; under the ingest lock,
    so a second ingest of the same file waits and then finds it all stored."""
    with engine.begin() as connection:
        hold_ingest_lock(connection)
        summary = _ingest(
            connection, path, skip_invalid=skip_invalid, batch_rows=batch_rows, label=label
        )
        audit_ingest(connection, summary, actor)
    return summary


def _ingest(
    connection: Connection, path: Path, *, skip_invalid: bool, batch_rows: int, label: str | None
) -> IngestSummary:
    summary = IngestSummary(path=label or str(path), format="people")
    rows, errors, attributes = parse_people(path, label=summary.path)
    existing = load_existing_people(connection)
    rows, check_errors = check_people(rows, existing)
    errors.extend(check_errors)
    if errors and not skip_invalid:
        raise IngestRefused(summary.path, errors)
    new, changed, summary.unchanged = classify(rows, existing, attributes)
    write_people(connection, new + changed, attributes, batch_rows)
    summary.inserted, summary.updated = len(new), len(changed)
    summary.refused = sorted(errors)
    return summary
