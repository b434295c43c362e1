"""Looking people up by the references exports use: employee_id or email."""

from dataclasses import dataclass

from sqlalchemy import Connection, select

from domain.errors import NotFound
from service.db.models import Person


@dataclass(frozen=True)
class PersonRef:
    id: int
    employee_id: str


class Directory:
    """Everyone in the store, addressable by employee_id or (case-insensitive) email."""

    def __init__(self, people: list[PersonRef], emails: dict[str, PersonRef]) -> None:
        self._by_employee_id = {p.employee_id: p for p in people}
        self._by_email = emails

    @classmethod
    def load(cls, connection: Connection) -> "Directory":
        rows = connection.execute(select(Person.id, Person.employee_id, Person.email)).all()
        people = [PersonRef(row.id, row.employee_id) for row in rows]
        emails = {row.email.lower(): ref for row, ref in zip(rows, people, strict=True)}
        return cls(people, emails)

    def find(self, reference: str) -> PersonRef | None:
        return self._by_employee_id.get(reference) or self._by_email.get(reference.lower())


class UnknownPerson(NotFound):
    pass


def find_person(connection: Connection, reference: str) -> PersonRef:
    """One person by employee_id or email, or a clear error."""
    query = select(Person.id, Person.employee_id).where(
        (Person.employee_id == reference) | (Person.email == reference.lower())
    )
    row = connection.execute(query).first()
    if row is None:
        raise UnknownPerson(f"no person with employee_id or email {reference!r}")
    return PersonRef(row.id, row.employee_id)
