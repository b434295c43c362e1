"""Looking a person up within the caller's scope, for the API and the pages alike."""

from typing import Any

from sqlalchemy import Connection, Row, select

from domain.errors import NotFound
from service.access.principal import Principal
from service.db.models import Person


def person_in_scope(connection: Connection, principal: Principal, person_id: int) -> Row[Any]:
    """The person's row, or 404 for one that does not exist or is outside the caller's
    scope: the same answer for both, so ids cannot be probed."""
    if not principal.can_read_person(person_id):
        raise NotFound("person not found")
    row = connection.execute(select(Person).where(Person.id == person_id)).one_or_none()
    if row is None:
        raise NotFound("person not found")
    return row
