"""The person a request speaks for, with what their place in the company lets them see.

Roles: everyone is an employee (their own records and drafts); a manager has reports
(direct, and by setting indirect, from the reporting tree); a calibration panel member sits
on panels (`panel_members`); an HR admin holds the `hr_admin` role (`person_roles`). Loaded
once per request in ONE query (`principal_statement`: the credential's lookup, the person,
the role, the panels and the reporting tree together), then every scope check is a set
lookup.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, Connection, Row, Select, bindparam, exists, func, select
from sqlalchemy.orm import aliased

from service.access.roles import HR_ADMIN
from service.db.models import PanelMember, Person, PersonRole


@dataclass(frozen=True)
class Principal:
    person_id: int
    email: str
    name: str
    reports: frozenset[int]  # people this person manages (per the indirect setting)
    panels: frozenset[int]  # calibration panels they sit on
    hr_admin: bool

    @property
    def roles(self) -> list[str]:
        roles = ["employee"]
        if self.reports:
            roles.append("manager")
        if self.panels:
            roles.append("calibration_panel")
        if self.hr_admin:
            roles.append("hr_admin")
        return roles

    @property
    def actor(self) -> str:
        """How the audit trail names this person."""
        return self.email

    def manages(self, person_id: int) -> bool:
        return person_id in self.reports

    def can_read_person(self, person_id: int) -> bool:
        """Records, evidence and drafts of a person: their own, their reports', or HR."""
        return person_id == self.person_id or self.manages(person_id) or self.hr_admin


def principal_statement(caller: CTE, *, indirect: bool) -> Select[*tuple[Any, ...]]:
    """One statement for the caller's Principal. `caller` is a CTE with a `person_id`
    column (a token's, a session's, an id given) and at most one row; its other columns
    come back too, after the Principal's (a session's id, to touch it). Built once and run
    with bound parameters: the statement's construction is most of a query's Python cost.
    The reporting tree is a recursive CTE (UNION, so a cycle in the data ends it)."""
    below = aliased(Person)
    tree = select(below.id).join(caller, below.manager_id == caller.c.person_id)
    if indirect:
        tree_cte = tree.cte("tree", recursive=True)
        deeper = aliased(Person)
        tree_cte = tree_cte.union(
            select(deeper.id).join(tree_cte, deeper.manager_id == tree_cte.c.id)
        )
    else:
        tree_cte = tree.cte("tree")
    hr = exists().where(PersonRole.person_id == Person.id, PersonRole.role == HR_ADMIN)
    panels = (
        select(func.array_agg(PanelMember.panel_id))
        .where(PanelMember.person_id == Person.id)
        .scalar_subquery()
    )
    reports = select(func.array_agg(tree_cte.c.id)).scalar_subquery()
    extra = [column for column in caller.c if column.name != "person_id"]
    return select(
        Person.id,
        Person.email,
        Person.name,
        hr.label("hr_admin"),
        panels.label("panels"),
        reports.label("reports"),
        *extra,
    ).join(caller, (Person.id == caller.c.person_id) & Person.active)


def principal_from_row(row: Row[Any]) -> Principal:
    """The Principal of a `principal_statement` row."""
    return Principal(
        person_id=row.id,
        email=row.email,
        name=row.name,
        reports=_ids(row.reports),
        panels=_ids(row.panels),
        hr_admin=bool(row.hr_admin),
    )


def _ids(values: Sequence[int] | None) -> frozenset[int]:
    return frozenset(values) if values else frozenset()


_BY_ID = {
    indirect: principal_statement(
        select(Person.id.label("person_id"))
        .where(Person.id == bindparam("person_id"))
        .cte("caller"),
        indirect=indirect,
    )
    for indirect in (False, True)
}


def load_principal(connection: Connection, person_id: int, *, indirect: bool) -> Principal | None:
    """The person's Principal (one query), or None when nobody has that id."""
    row = connection.execute(_BY_ID[indirect], {"person_id": person_id}).one_or_none()
    return principal_from_row(row) if row is not None else None


def reports_of(connection: Connection, manager_id: int, *, indirect: bool) -> frozenset[int]:
    """Direct reports, or the whole subtree below the manager in one recursive query."""
    direct = select(Person.id).where(Person.manager_id == manager_id)
    if not indirect:
        return frozenset(connection.execute(direct).scalars())
    tree = direct.cte("tree", recursive=True)
    below = select(Person.id).join(tree, Person.manager_id == tree.c.id)
    tree = tree.union(below)
    return frozenset(connection.execute(select(tree.c.id)).scalars())


def person_by_email(connection: Connection, email: str) -> int | None:
    return connection.execute(
        select(Person.id).where(func.lower(Person.email) == email.lower())
    ).scalar_one_or_none()
