"""An HRIS export's rows turned into the PersonRow values people.csv's rows become.

Each row is read through its mapping into people.csv's columns (dates converted from the
export's format to ISO), then checked by people.csv's own row check, so both paths accept
and refuse the same values. Errors name the export's own columns ("Hire Date", "First
Name + Last Name"), never ours, with the row's line in the export.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from difflib import get_close_matches
from pathlib import Path

from service.ingest.csv_rows import CsvRow, read_csv
from service.ingest.errors import IngestRefused, RowError
from service.ingest.hris.mapping import DATE_FIELDS, ColumnRule, LoadedMapping, parse_date
from service.ingest.people import (
    ExistingPerson,
    PeopleBatch,
    PersonRow,
    check_attribute_names,
    parse_person,
    shown,
)


@dataclass(frozen=True)
class MappedRow:
    person: PersonRow | None
    errors: list[RowError]
    manager_key: str | None  # manager_id by email or name, resolved once all rows are read
    # (employee_id, email or name) as the row gives them, valid or not: a report names its
    # manager whether or not the manager's own row is valid (that is told on its line)
    identity: tuple[str, str] | None
    employee_id: str  # as the row gives it


class ExportReader:
    """One export read through one mapping."""

    def __init__(self, loaded: LoadedMapping, label: str, today: date) -> None:
        self.mapping = loaded.mapping
        self.loaded = loaded
        self.label = label
        self.today = today
        self.rules = self.mapping.columns.rules()
        self.attributes = list(self.mapping.demographics)
        self.labels = {name: rule.label() for name, rule in self.rules}
        self.labels.update({n: r.label() for n, r in self.mapping.demographics.items()})
        manager = self.mapping.columns.manager_id
        self.match = "employee_id" if manager is None else manager.match

    def named(self, error: RowError) -> RowError:
        """An error about one of people.csv's columns, told with the export's column."""
        return replace(error, field=self.labels.get(error.field, error.field))

    def read(self, path: Path, existing: dict[str, ExistingPerson]) -> PeopleBatch:
        header, rows = read_csv(path, (), label=self.label, delimiter=self.mapping.delimiter)
        self._check_header(header)
        check_attribute_names(self.attributes, self.loaded.label)
        mapped = [self._row(row) for row in rows]
        if self.match != "employee_id":
            mapped = self._resolve_managers(mapped, existing)
        return PeopleBatch(
            rows=[m.person for m in mapped if m.person is not None],
            errors=[error for m in mapped for error in m.errors],
            attributes=self.attributes,
            leaving=self.mapping.columns.termination_date is not None
            or self.mapping.status is not None,
            refused_ids=frozenset(
                m.employee_id for m in mapped if m.person is None and m.employee_id
            ),
        )

    def _check_header(self, header: list[str]) -> None:
        """Every column the mapping reads must be in the export's header (line 1)."""
        present = set(header)
        missing = [name for name in self.mapping.reads() if name not in present]
        if not missing:
            return
        if len(header) == 1:
            reason = (
                f"one column only: is the export delimited by something other than "
                f"{self.mapping.delimiter!r}? (set delimiter in the mapping)"
            )
            raise IngestRefused(self.label, [RowError(1, "(header)", reason)])
        errors = [RowError(1, name, self._missing(name, header)) for name in missing]
        raise IngestRefused(self.label, errors)

    def _missing(self, name: str, header: list[str]) -> str:
        reason = f"column is missing from the header (the {self.loaded.name} mapping reads it)"
        near = get_close_matches(name, header, n=1, cutoff=0.8)
        return f"{reason}; the header has {near[0]!r}" if near else reason

    def _row(self, row: CsvRow) -> MappedRow:
        values: dict[str, str] = {}
        errors: list[RowError] = []
        for name, rule in self.rules:
            values[name] = self._value(row, name, rule, errors)
        for name, rule in self.mapping.demographics.items():
            values[name] = rule.read(row.values)
        if "__extra__" in row.values:
            values["__extra__"] = row.values["__extra__"]
        manager_key, identity = None, None
        if self.match != "employee_id":
            identity = (values.get("employee_id", ""), _key(self.match, values.get(self.match, "")))
            if values.get("manager_id"):
                manager_key = _key(self.match, values["manager_id"])
                values["manager_id"] = ""  # an employee_id once all rows are read
        person, row_errors = parse_person(CsvRow(row.line, values), self.attributes, self.today)
        errors.extend(self.named(error) for error in row_errors)
        if person is not None and self._inactive(row):
            person = replace(person, active=False)
        employee_id = values.get("employee_id", "")
        return MappedRow(None if errors else person, errors, manager_key, identity, employee_id)

    def _value(self, row: CsvRow, name: str, rule: ColumnRule, errors: list[RowError]) -> str:
        value = rule.read(row.values)
        if name not in DATE_FIELDS or not value:
            return value
        fmt = self.mapping.date_format_of(rule)
        day = parse_date(value, fmt)
        if day is None:
            errors.append(RowError(row.line, rule.label(), f"{shown(value)} is not a date ({fmt})"))
            return ""
        return day.isoformat()

    def _inactive(self, row: CsvRow) -> bool:
        status = self.mapping.status
        return status is not None and row.values.get(status.column, "") in status.inactive

    def _identity(self, person: PersonRow) -> str:
        return person.email if self.match == "email" else person.name

    def _resolve_managers(
        self, mapped: list[MappedRow], existing: dict[str, ExistingPerson]
    ) -> list[MappedRow]:
        """Managers named by work email or full name become employee_ids: this export's
        people first, then those already stored; a name two people share is refused."""
        here = _owners([m.identity for m in mapped if m.identity is not None])
        rows = [e.row for e in existing.values()]
        stored = _owners([(r.employee_id, _key(self.match, self._identity(r))) for r in rows])
        label = self.labels["manager_id"]
        resolved: list[MappedRow] = []
        for item in mapped:
            if item.person is None or item.manager_key is None:
                resolved.append(item)
                continue
            owners = here.get(item.manager_key) or stored.get(item.manager_key, set())
            if len(owners) == 1:
                manager = next(iter(owners))
                resolved.append(
                    replace(item, person=replace(item.person, manager_employee_id=manager))
                )
                continue
            reason = (
                f"no person with {self.match} {shown(item.manager_key)} in this export or stored"
                if not owners
                else f"{len(owners)} people have the {self.match} {shown(item.manager_key)}; "
                "map the manager's employee id instead"
            )
            error = RowError(item.person.line, label, reason)
            resolved.append(MappedRow(None, [error], None, item.identity, item.employee_id))
        return resolved


def _key(match: str, value: str) -> str:
    """Emails compare case-blind (they are stored lower-case); names as written, spaces
    collapsed."""
    return value.lower() if match == "email" else " ".join(value.split())


def _owners(identities: list[tuple[str, str]]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for employee_id, key in identities:
        if employee_id and key:
            found.setdefault(key, set()).add(employee_id)
    return found


def read_export(
    path: Path,
    loaded: LoadedMapping,
    existing: dict[str, ExistingPerson],
    *,
    label: str,
    today: date,
) -> tuple[PeopleBatch, Callable[[RowError], RowError]]:
    """The export's people as a batch for store_people, and how to name the store's own
    errors (duplicates, managers) with the export's columns."""
    reader = ExportReader(loaded, label, today)
    return reader.read(path, existing), reader.named
