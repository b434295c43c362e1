"""An HRIS export's mapping file: which columns of the export fill which of people.csv's.

TOML, read with tomllib into a small typed model (pydantic, every unknown key refused).
A field is an export column (`"Hire Date"`), or a table saying where it comes from:
`column`, `join` (several columns, e.g. first and last name) or `constant` (a value the
export lacks), with an optional `default` for an empty cell, a `values` map (e.g. "Senior
Engineer" = "L5"), a `date_format` for dates (strptime codes) and, for manager_id only,
`match = "email"` or `"name"` when the export names managers by work email or by full
name (a name two people share is refused, never guessed). Every problem is told by
line of the TOML (tomllib's own for syntax; the key's line otherwise) and key path.
"""

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime
from difflib import get_close_matches
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from domain.errors import NotFound
from service.ingest.errors import IngestError, IngestRefused, RowError

SHIPPED = ("workday", "bamboohr", "rippling", "hibob", "personio")
DATE_FIELDS = ("hire_date", "termination_date")
MAX_MAPPING_BYTES = 64 * 1024
_PROBE = date(2001, 2, 3)  # day, month and year all differ: a format must name each
_ATTRIBUTE_LIMIT = 64
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ColumnName = Annotated[str, Field(min_length=1, max_length=256)]


class ColumnRule(_Strict):
    """Where one field's value comes from, and what is done to it on the way."""

    column: ColumnName | None = None
    join: list[ColumnName] | None = Field(default=None, min_length=2, max_length=6)
    separator: str = Field(default=" ", max_length=8)
    constant: str | None = Field(default=None, max_length=256)
    default: str | None = Field(default=None, max_length=256)
    values: dict[str, str] = Field(default_factory=dict, max_length=1000)
    date_format: str | None = Field(default=None, max_length=64)
    match: Literal["employee_id", "email", "name"] = "employee_id"

    def sources(self) -> list[str]:
        """The export columns this field reads."""
        if self.column is not None:
            return [self.column]
        return list(self.join or [])

    def label(self) -> str:
        """How an error about this field names it: as the export does."""
        if self.constant is not None:
            return "(constant in the mapping)"
        return " + ".join(self.sources())

    def read(self, row: dict[str, str]) -> str:
        """The raw value for one export row: column, joined columns or constant, then the
        default for an empty one, then the value map."""
        if self.constant is not None:
            value = self.constant
        elif self.join is not None:
            value = self.separator.join(row.get(name, "") for name in self.join if row.get(name))
        else:
            value = row.get(self.column or "", "")
        if not value and self.default is not None:
            value = self.default
        return self.values.get(value, value)


def _as_rule(value: object) -> object:
    """A bare string is the export column's name."""
    return {"column": value} if isinstance(value, str) else value


Rule = Annotated[ColumnRule, BeforeValidator(_as_rule)]


class Columns(_Strict):
    """people.csv's columns; the optional ones may be left out of a mapping."""

    employee_id: Rule
    name: Rule
    email: Rule
    manager_id: Rule | None = None
    level: Rule
    job_family: Rule
    department: Rule
    location: Rule
    hire_date: Rule | None = None
    termination_date: Rule | None = None

    def rules(self) -> list[tuple[str, ColumnRule]]:
        found = [(name, getattr(self, name)) for name in type(self).model_fields]
        return [(name, rule) for name, rule in found if rule is not None]


class StatusRule(_Strict):
    """An employment-status column whose listed values mark a leaver even without a
    termination date (e.g. BambooHR's Status "Inactive")."""

    column: ColumnName
    inactive: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, max_length=50)


class Mapping(_Strict):
    """One mapping file."""

    vendor: str = Field(min_length=1, max_length=64)
    date_format: str = Field(default="%Y-%m-%d", max_length=64)
    delimiter: Literal[",", ";", "\t"] = ","  # ";" in CSV saved by a German or French Excel
    columns: Columns
    status: StatusRule | None = None
    demographics: dict[Annotated[str, Field(min_length=1)], Rule] = Field(
        default_factory=dict, max_length=50
    )

    def date_format_of(self, rule: ColumnRule) -> str:
        return rule.date_format or self.date_format

    def reads(self) -> list[str]:
        """Every export column the mapping reads, each once, in mapping order: the
        columns the export's header must have."""
        names = [col for _, rule in self.columns.rules() for col in rule.sources()]
        names += [col for rule in self.demographics.values() for col in rule.sources()]
        if self.status is not None:
            names.append(self.status.column)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class LoadedMapping:
    name: str  # the vendor name of a shipped one, else the file's stem
    label: str  # how errors name the mapping file
    mapping: Mapping


def shipped_path(name: str) -> Path:
    return Path(str(files("service.ingest.hris.vendors").joinpath(f"{name}.toml")))


def shipped_sample(name: str) -> Path:
    """The synthetic sample export shipped beside a vendor's mapping."""
    return Path(str(files("service.ingest.hris.vendors").joinpath(f"{name}.csv")))


class UnknownMapping(NotFound):
    pass


def load_shipped(name: str) -> LoadedMapping:
    """A shipped mapping by vendor name only (what a page may choose)."""
    if name.lower() not in SHIPPED:
        raise UnknownMapping(
            f"{name!r} is not a shipped mapping; choose one of {', '.join(SHIPPED)}",
            field="mapping",
        )
    return load_mapping(name.lower())


def load_mapping(name_or_path: str) -> LoadedMapping:
    """A shipped mapping by vendor name (workday, bamboohr, ...) or a mapping file."""
    if name_or_path.lower() in SHIPPED:
        name = name_or_path.lower()
        path = shipped_path(name)
        return LoadedMapping(name, f"{name} mapping ({path.name})", parse_mapping_file(path))
    path = Path(name_or_path)
    if not path.is_file():
        raise UnknownMapping(
            f"{name_or_path!r} is neither a shipped mapping ({', '.join(SHIPPED)}) "
            "nor a mapping file",
            field="mapping",
        )
    return LoadedMapping(path.stem, str(path), parse_mapping_file(path))


def parse_mapping_file(path: Path, label: str | None = None) -> Mapping:
    name = label or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(
            f"{name}: cannot read the mapping ({exc.strerror or exc})", field="mapping"
        ) from None
    if len(data) > MAX_MAPPING_BYTES:
        reason = f"larger than {MAX_MAPPING_BYTES} bytes; a mapping is a short text file"
        raise MappingRefused(name, [RowError(1, "(file)", reason)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MappingRefused(name, [RowError(1, "(file)", "not UTF-8 text")]) from None
    return parse_mapping(text, name)


def parse_mapping(text: str, label: str) -> Mapping:
    """The mapping, or MappingRefused naming each problem by line and key path."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))
        line = int(found.group(1)) if found else 1
        raise MappingRefused(label, [RowError(line, "(toml)", str(exc))]) from None
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as exc:
        errors = [
            _located(text, tuple(str(part) for part in problem["loc"]), _reason(problem))
            for problem in exc.errors()
        ]
        raise MappingRefused(label, errors) from None
    problems = [_located(text, path, reason) for path, reason in cross_check(mapping)]
    if problems:
        raise MappingRefused(label, problems)
    return mapping


def _reason(problem: ErrorDetails) -> str:
    kind, loc = problem["type"], problem["loc"]
    if kind == "extra_forbidden":
        near = get_close_matches(str(loc[-1]), list(_model_at(loc).model_fields), n=1)
        return "unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
    if kind == "missing" and len(loc) == 2 and loc[0] == "columns":
        return "is required: map it to an export column, or give a constant"
    if kind == "missing":
        return "is required"
    if kind in ("model_type", "dict_type") and loc and loc[0] in ("columns", "demographics"):
        return "give the export column's name, or a table with column, join or constant"
    return problem["msg"].removeprefix("Value error, ")


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel]:
    """The model whose keys are valid where an unknown key `loc` was found."""
    if len(loc) == 1:
        return Mapping
    if loc[0] == "status":
        return StatusRule
    if loc[0] == "columns" and len(loc) == 2:
        return Columns
    return ColumnRule


class MappingRefused(IngestRefused):
    """The mapping file was refused: each problem by line of the TOML and key path."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        super().__init__(path, errors)
        count = len(self.errors)
        self.args = (
            f"{path}: mapping refused, {count} problem{'s' if count != 1 else ''}; "
            "nothing was imported",
        )
        self.field = "mapping"


def cross_check(mapping: Mapping) -> list[tuple[tuple[str, ...], str]]:
    """What the model alone cannot say: one source per field, options where they mean
    something, real date formats, and no export column read by two fields."""
    problems: list[tuple[tuple[str, ...], str]] = []
    rules: list[tuple[tuple[str, ...], ColumnRule]] = [
        (("columns", name), rule) for name, rule in mapping.columns.rules()
    ]
    rules += [(("demographics", name), rule) for name, rule in mapping.demographics.items()]
    for path, rule in rules:
        problems.extend(((*path, key), reason) for key, reason in _rule_problems(path, rule))
    for name in mapping.demographics:
        if len(name) > _ATTRIBUTE_LIMIT:
            problems.append((("demographics", name), f"longer than {_ATTRIBUTE_LIMIT} characters"))
        if name in Columns.model_fields:
            problems.append((("demographics", name), "is one of people.csv's own columns"))
    problem = date_format_problem(mapping.date_format)
    if problem:
        problems.append((("date_format",), problem))
    problems.extend(_read_twice(mapping, rules))
    return problems


def _rule_problems(path: tuple[str, ...], rule: ColumnRule) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    given = [key for key in ("column", "join", "constant") if getattr(rule, key) is not None]
    if len(given) != 1:
        problems.append(("column", "give exactly one of column, join or constant"))
    if rule.date_format is not None:
        if path[-1] not in DATE_FIELDS:
            problems.append(("date_format", f"only {' and '.join(DATE_FIELDS)} are dates"))
        elif problem := date_format_problem(rule.date_format):
            problems.append(("date_format", problem))
    if rule.match != "employee_id" and path != ("columns", "manager_id"):
        problems.append(("match", "only manager_id can be matched by email or name"))
    return problems


def _read_twice(
    mapping: Mapping, rules: list[tuple[tuple[str, ...], ColumnRule]]
) -> list[tuple[tuple[str, ...], str]]:
    readers = [(path, column) for path, rule in rules for column in set(rule.sources())]
    if mapping.status is not None:
        readers.append((("status", "column"), mapping.status.column))
    first: dict[str, tuple[str, ...]] = {}
    problems: list[tuple[tuple[str, ...], str]] = []
    for path, column in readers:
        if column in first:
            reason = f"column {column!r} is already mapped by {'.'.join(first[column])}"
            problems.append((path, reason))
        else:
            first[column] = path
    return problems


def date_format_problem(fmt: str) -> str | None:
    """Why `fmt` is not a date format (strptime codes naming day, month and year), or None."""
    try:
        back = datetime.strptime(_PROBE.strftime(fmt), fmt).date()
    except ValueError as exc:
        return f"{fmt!r} is not a date format ({exc})"
    if back != _PROBE:
        return f"{fmt!r} is not a date format: it must give the day, the month and the year"
    return None


def parse_date(value: str, fmt: str) -> date | None:
    try:
        return datetime.strptime(value, fmt).date()
    except ValueError:
        return None


def _located(text: str, path: tuple[str, ...], reason: str) -> RowError:
    return RowError(key_line(text, path), ".".join(path) or "(mapping)", reason)


def key_line(text: str, path: tuple[str, ...]) -> int:
    """The line of the TOML that comes closest to `path`: the key itself, else the
    deepest table or key on its way (the table header of a missing key), else line 1."""
    best, best_depth = 1, 0
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("["):
            table = _dotted(line.strip("[]"))
            here = table
        elif "=" in line and not line.startswith("#"):
            here = table + _dotted(line.split("=", 1)[0])
        else:
            continue
        depth = _common(here, path)
        if depth > best_depth and depth == len(here):
            best, best_depth = number, depth
    return best


def _dotted(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    depth = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        depth += 1
    return depth
