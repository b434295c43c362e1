"""Looking people up by the references exports use: employee_id or email."""

from dataclasses import dataclass

from sqlalchemy import Connection, select

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
