"""Looking a person up within the caller's scope, for the API and the pages alike; and
the operator's list of people (`fairdraft people`)."""

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Connection, Exists, Row, exists, func, or_, select
from sqlalchemy.orm import aliased

from domain.errors import NotFound
from service.access.principal import Principal
from service.access.roles import HR_ADMIN
from service.db.models import ApiToken, PanelMember, Person, PersonRole, WebSession


def person_in_scope(connection: Connection, principal: Principal, person_id: int) -> Row[Any]:
    """The person's row, or 404 for one that does not exist or is outside the caller's
    scope: the same answer for both, so ids cannot be probed."""
    if not principal.can_read_person(person_id):
        raise NotFound("person not found")
    row = connection.execute(select(Person).where(Person.id == person_id)).one_or_none()
    if row is None:
        raise NotFound("person not found")
    return row


def require_in_scope(connection: Connection, principal: Principal, person_id: int) -> None:
    """`person_in_scope` for a read that needs no more than the answer: the caller and
    their reports were read from the people table by this request's authentication, so
    only another person (an HR admin's read) costs a query to tell that they exist."""
    if person_id == principal.person_id or principal.manages(person_id):
        return
    person_in_scope(connection, principal, person_id)


class PersonLine(BaseModel):
    """One person as the operator's list shows them: who they are, where they sit, which
    roles they hold and whether they can act in fairdraft now. No demographic attribute:
    those are read by the bias check and HR roles alone."""

    model_config = ConfigDict(frozen=True)

    employee_id: str
    name: str
    email: str
    roles: list[str]
    manager: str | None  # the manager's employee_id
    level: str
    department: str
    active: bool  # holds a live API token or an open page session


def list_people(
    connection: Connection,
    *,
    search: str | None,
    limit: int,
    offset: int,
    idle: timedelta,
    now: datetime | None = None,
) -> tuple[list[PersonLine], int]:
    """A page of everyone (the operator's view, unscoped: a person-facing surface must
    narrow it to the caller's scope first) by name, whose name, email or employee_id
    contains `search` (any case; % and _ are plain characters), and how many match.
    Two queries: the page, with roles and access as EXISTS subqueries, and the count."""
    now = now or datetime.now(UTC)
    manager = aliased(Person)
    matching = select(Person.id)
    if search:
        matching = matching.where(
            or_(
                Person.name.icontains(search, autoescape=True),
                Person.email.icontains(search, autoescape=True),
                Person.employee_id.icontains(search, autoescape=True),
            )
        )
    total = connection.execute(select(func.count()).select_from(matching.subquery())).scalar_one()
    rows = connection.execute(
        select(
            Person.employee_id,
            Person.name,
            Person.email,
            manager.employee_id.label("manager"),
            Person.level,
            Person.department,
            _has_reports().label("is_manager"),
            exists().where(PanelMember.person_id == Person.id).label("on_panel"),
            exists()
            .where(PersonRole.person_id == Person.id, PersonRole.role == HR_ADMIN)
            .label("hr_admin"),
            _can_act(now, idle).label("active"),
        )
        .outerjoin(manager, manager.id == Person.manager_id)
        .where(Person.id.in_(matching))
        .order_by(Person.name, Person.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [_person_line(row) for row in rows], int(total)


def _has_reports() -> Exists:
    report = aliased(Person)
    return exists().where(report.manager_id == Person.id)


def _can_act(now: datetime, idle: timedelta) -> ColumnElement[bool]:
    """A live API token, or a page session that a request could still use (the tests
    `person_for_session` makes, without the token's own state: a revoked token ends its
    sessions)."""
    token = exists().where(
        ApiToken.person_id == Person.id,
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > now,
    )
    session = exists().where(
        WebSession.person_id == Person.id,
        WebSession.ended_at.is_(None),
        WebSession.expires_at > now,
        WebSession.last_seen_at > now - idle,
    )
    return or_(token, session)


def _person_line(row: Row[*tuple[Any, ...]]) -> PersonLine:
    roles = ["employee"]
    for role, held in (
        ("manager", row.is_manager),
        ("calibration_panel", row.on_panel),
        ("hr_admin", row.hr_admin),
    ):
        if held:
            roles.append(role)
    return PersonLine(
        employee_id=row.employee_id,
        name=row.name,
        email=row.email,
        roles=roles,
        manager=row.manager,
        level=row.level,
        department=row.department,
        active=bool(row.active),
    )
