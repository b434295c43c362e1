"""The person a request speaks for, with what their place in the company lets them see.

Roles: everyone is an employee (their own records and drafts); a manager has reports
(direct, and by setting indirect, from the reporting tree); a calibration panel member sits
on panels (`panel_members`); an HR admin holds the `hr_admin` role (`person_roles`). Loaded
once per request in three small queries, then every scope check is a set lookup.
"""

from dataclasses import dataclass

from sqlalchemy import Connection, func, literal, select

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


def load_principal(connection: Connection, person_id: int, *, indirect: bool) -> Principal | None:
    person = connection.execute(
        select(Person.id, Person.email, Person.name).where(Person.id == person_id)
    ).one_or_none()
    if person is None:
        return None
    hr = connection.execute(
        select(literal(True)).where(
            PersonRole.person_id == person_id, PersonRole.role == "hr_admin"
        )
    ).scalar_one_or_none()
    panels = connection.execute(
        select(PanelMember.panel_id).where(PanelMember.person_id == person_id)
    ).scalars()
    return Principal(
        person_id=person.id,
        email=person.email,
        name=person.name,
        reports=reports_of(connection, person_id, indirect=indirect),
        panels=frozenset(panels),
        hr_admin=bool(hr),
    )


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
