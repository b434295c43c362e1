"""Who a source's people are: each identity a connector names is kept (external_identities)
and matched to an employee by work email where the source gives one, by the identities
CSV, or by hand on the HR page. A record whose subject is not matched is skipped and
counted against the identity, so HR sees whom to match and how much evidence waits."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    String,
    TableValuedAlias,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import NotFound
from retrieval.schema import Record
from service.audit import audit, audit_rows
from service.connectors.model import Identity
from service.connectors.runs import ask_full_pass
from service.db.models import ExternalIdentity, Person
from service.ingest.csv_rows import read_csv
from service.ingest.errors import IngestRefused, RowError
from service.ingest.people import ids_by_employee_id

IdentityKey = tuple[str, str]  # (system, external_id)
IDENTITY_KEY = "identity"  # in a record's metadata: "<system>:<external_id>" of its subject
REFUSED = "refused"  # matched_by of an identity HR unmatched by hand


def identity_key(system: str, external_id: str) -> str:
    return f"{system}:{external_id}"


@dataclass(frozen=True)
class PersonKey:
    """The employee an identity is matched to: our id, and the HRIS id content hashes use."""

    id: int
    employee_id: str


IDENTITY_COLUMNS = ("system", "external_id", "employee_id")
_LIMITS = {"system": 32, "external_id": 256, "email": 320}


def _bounded(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else None


def _lower(email: str | None) -> str | None:
    return email.strip().lower() if email else None


def resolve(connection: Connection, identities: Iterable[Identity]) -> dict[IdentityKey, PersonKey]:
    """Keep every identity (new ones listed, known ones' names and emails refreshed), match
    the unmatched ones whose email is an employee's, and return who each matched one is.
    Three statements whatever the number of identities."""
    unique = {
        (i.system, i.external_id): i
        for i in identities
        if 0 < len(i.system) <= _LIMITS["system"]
        and 0 < len(i.external_id) <= _LIMITS["external_id"]
    }  # an id too long to store cannot be matched: its records wait as unmatched
    if not unique:
        return {}
    pairs = sorted(unique)
    values = [
        {
            "system": system,
            "external_id": external_id,
            "display_name": _bounded(unique[system, external_id].display_name, 200),
            "email": _bounded(_lower(unique[system, external_id].email), _LIMITS["email"]),
        }
        for system, external_id in pairs
    ]
    statement = pg_insert(ExternalIdentity).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["system", "external_id"],
            set_={
                "display_name": func.coalesce(
                    statement.excluded.display_name, ExternalIdentity.display_name
                ),
                "email": func.coalesce(statement.excluded.email, ExternalIdentity.email),
                "last_seen": func.now(),
            },
        )
    )
    keys = _keys(pairs)
    connection.execute(
        update(ExternalIdentity)
        .where(
            ExternalIdentity.person_id.is_(None),
            ExternalIdentity.matched_by.is_(None),  # not one HR unmatched by hand
            ExternalIdentity.email.is_not(None),
            func.lower(Person.email) == ExternalIdentity.email,
            Person.active,
            ExternalIdentity.system == keys.c.system,
            ExternalIdentity.external_id == keys.c.external_id,
        )
        .values(person_id=Person.id, matched_by="email")
    )
    matched = (
        select(ExternalIdentity.system, ExternalIdentity.external_id, Person.id, Person.employee_id)
        .join(
            keys,
            (ExternalIdentity.system == keys.c.system)
            & (ExternalIdentity.external_id == keys.c.external_id),
        )
        .join(Person, Person.id == ExternalIdentity.person_id)
    )
    return {
        (row.system, row.external_id): PersonKey(row.id, row.employee_id)
        for row in connection.execute(matched)
    }


def _keys(pairs: Sequence[IdentityKey]) -> TableValuedAlias:
    """A derived table of (system, external_id) pairs from two bound arrays."""
    return (
        func.unnest(
            bindparam("id_systems", [p[0] for p in pairs], type_=ARRAY(String)),
            bindparam("id_external_ids", [p[1] for p in pairs], type_=ARRAY(String)),
        )
        .table_valued("system", "external_id")
        .render_derived()
    )


def count_waiting(
    connection: Connection, waiting: Mapping[IdentityKey, int], *, replace: bool
) -> None:
    """Record how many records each unmatched identity held back: added to what earlier
    incremental runs counted, or `replace`d by a full run's count (which saw them all)."""
    if not waiting:
        return
    value = bindparam("n") if replace else ExternalIdentity.records_waiting + bindparam("n")
    connection.execute(
        update(ExternalIdentity)
        .where(
            ExternalIdentity.system == bindparam("s"),
            ExternalIdentity.external_id == bindparam("e"),
        )
        .values(records_waiting=value)
        .execution_options(synchronize_session=False),
        [{"s": s, "e": e, "n": n} for (s, e), n in waiting.items()],
    )


class IdentityLine(BaseModel):
    """An identity as the HR page and the API list it."""

    system: str
    external_id: str
    display_name: str | None
    email: str | None
    employee_id: str | None
    person_name: str | None
    matched_by: str | None
    records_waiting: int
    last_seen: datetime


def list_identities(
    connection: Connection, *, unmatched_only: bool, limit: int, offset: int = 0
) -> list[IdentityLine]:
    """Identities, unmatched first and those holding back most records first."""
    query = (
        select(
            ExternalIdentity.system,
            ExternalIdentity.external_id,
            ExternalIdentity.display_name,
            ExternalIdentity.email,
            Person.employee_id,
            Person.name.label("person_name"),
            ExternalIdentity.matched_by,
            ExternalIdentity.records_waiting,
            ExternalIdentity.last_seen,
        )
        .outerjoin(Person, Person.id == ExternalIdentity.person_id)
        .order_by(
            ExternalIdentity.person_id.is_not(None),
            ExternalIdentity.records_waiting.desc(),
            ExternalIdentity.system,
            ExternalIdentity.external_id,
        )
        .limit(limit)
        .offset(offset)
    )
    if unmatched_only:
        query = query.where(_to_match())
    return [
        IdentityLine.model_validate(row, from_attributes=True) for row in connection.execute(query)
    ]


def _to_match() -> ColumnElement[bool]:
    """Unmatched and not unmatched on purpose: HR's to-do."""
    return ExternalIdentity.person_id.is_(None) & ExternalIdentity.matched_by.is_(None)


def count_unmatched(connection: Connection) -> dict[str, int]:
    """Unmatched identities per system (for /metrics and the HR page)."""
    query = (
        select(ExternalIdentity.system, func.count())
        .where(_to_match())
        .group_by(ExternalIdentity.system)
    )
    return {system: int(count) for system, count in connection.execute(query)}


@dataclass(frozen=True)
class Match:
    system: str
    external_id: str
    employee_id: str | None  # None: unmatch


def match(connection: Connection, matches: Sequence[Match], *, actor: str, by: str) -> int:
    """Match identities to employees by hand (`by` "hand") or from the identities CSV
    ("csv"), or unmatch them (kept unmatched: no email match takes them again); each
    audited. The records of an identity whose person changed are deleted at once, and a
    matched identity's connector makes a full pass next, so its records arrive under the
    right person. NotFound for an identity or an employee that does not exist (nothing is
    changed then)."""
    people = ids_by_employee_id(connection, {m.employee_id for m in matches if m.employee_id})
    before = _current(connection, matches)
    for m in matches:
        if (m.system, m.external_id) not in before:
            raise NotFound(f"no {m.system} identity {m.external_id!r}", field="external_id")
        if m.employee_id is not None and m.employee_id not in people:
            raise NotFound(f"no employee {m.employee_id!r}", field="employee_id")
    for m in matches:
        connection.execute(
            update(ExternalIdentity)
            .where(
                ExternalIdentity.system == m.system,
                ExternalIdentity.external_id == m.external_id,
            )
            .values(
                person_id=people[m.employee_id] if m.employee_id else None,
                matched_by=by if m.employee_id else REFUSED,
            )
        )
    moved = [m for m in matches if before[(m.system, m.external_id)] != m.employee_id]
    _forget_records_of(connection, moved)
    audit_rows(
        connection,
        actor=actor,
        action=f"identity.match.{by}",
        entity="external_identity",
        changes=[
            (
                f"{m.system}:{m.external_id}",
                {"employee_id": before[(m.system, m.external_id)]},
                {"employee_id": m.employee_id},
            )
            for m in matches
        ],
    )
    ask_full_pass(connection, {m.system for m in moved if m.employee_id})
    return len(matches)


def _forget_records_of(connection: Connection, matches: Sequence[Match]) -> None:
    """The records stored for identities now matched to someone else, or to nobody: they
    were about the person the identity was matched to before, and must not stay there.
    The full pass a new match asks for brings them back under the right person."""
    if not matches:
        return
    keys = [identity_key(m.system, m.external_id) for m in matches]
    connection.execute(
        delete(Record).where(
            Record.meta[IDENTITY_KEY].astext
            == func.any(bindparam("identity_keys", keys, type_=ARRAY(String)))
        )
    )


def _current(connection: Connection, matches: Sequence[Match]) -> dict[IdentityKey, str | None]:
    if not matches:
        return {}
    keys = _keys([(m.system, m.external_id) for m in matches])
    query = (
        select(ExternalIdentity.system, ExternalIdentity.external_id, Person.employee_id)
        .join(
            keys,
            (ExternalIdentity.system == keys.c.system)
            & (ExternalIdentity.external_id == keys.c.external_id),
        )
        .outerjoin(Person, Person.id == ExternalIdentity.person_id)
    )
    return {(r.system, r.external_id): r.employee_id for r in connection.execute(query)}


def read_identities_csv(path: Path, *, label: str | None = None) -> list[tuple[int, Match]]:
    """identities.csv: system,external_id,employee_id (an empty employee_id unmatches),
    each match with its line. Refused whole, each bad line named, like every import."""
    _, rows = read_csv(path, IDENTITY_COLUMNS, label=label)
    matches: list[tuple[int, Match]] = []
    errors: list[RowError] = []
    for row in rows:
        values = row.values
        missing = [name for name in ("system", "external_id") if not values.get(name)]
        errors.extend(RowError(row.line, name, "is required") for name in missing)
        for name in ("system", "external_id"):
            if len(values.get(name, "")) > _LIMITS[name]:
                errors.append(RowError(row.line, name, f"longer than {_LIMITS[name]} characters"))
        if not errors:
            found = Match(
                values["system"], values["external_id"], values.get("employee_id") or None
            )
            matches.append((row.line, found))
    if errors:
        raise IngestRefused(label or str(path), errors)
    return matches


def import_identities(
    connection: Connection, path: Path, *, actor: str, label: str | None = None
) -> int:
    """Match identities from a CSV: every employee must exist (else refused by line,
    nothing changed); identities no connector has seen yet are created (HR may match
    people before the first run), then all are matched as one audited change."""
    name = label or path.name
    lines = read_identities_csv(path, label=name)
    known = ids_by_employee_id(connection, {m.employee_id for _, m in lines if m.employee_id})
    errors = [
        RowError(line, "employee_id", f"no employee {m.employee_id!r}")
        for line, m in lines
        if m.employee_id is not None and m.employee_id not in known
    ]
    if errors:
        raise IngestRefused(name, errors)
    matches = [m for _, m in lines]
    if not matches:
        return 0
    resolve(connection, [Identity(m.system, m.external_id) for m in matches])
    count = match(connection, matches, actor=actor, by="csv")
    audit(
        connection,
        actor=actor,
        action="identity.import",
        entity="file",
        entity_id=name,
        after={"rows": count},
    )
    return count
