"""The demo's four people: an employee, their manager, a calibration panel member and an
HR admin, chosen from the stored org by fixed rules, and the roles and panel they need.

Chosen by rule rather than by name so that any size and seed of the synthetic org has a
cast; the same org (the default 120 people, seed 7) always gives the same four, which the
README's examples use. The roles the reporting tree cannot tell (HR admin, a panel's
members) are granted here, audited as the demo.

- employee: someone without reports with the most evidence in the period (ties: the lowest
  employee id), so their page has the most to show;
- manager: the employee's manager;
- the panel calibrates the employee's cohort (level and job family) for the cycle; its
  members are the cohort's managers and a senior individual contributor of the same job
  family (the highest level above the cohort's, ties the lowest id) who sits in as the
  bar raiser, the member the demo signs in (without reports, their start page is the
  panels); with no such person, the first other member, or the manager;
- HR admin: the most senior person without reports in people_ops (else anyone in
  people_ops, else the first person left).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from domain.periods import Period
from service.access.principal import load_principal
from service.access.roles import grant_hr_admin
from service.calibration.panels import create_panel
from service.db.models import CalibrationPanel, Person, Record
from service.web.pages.auth import start_path

HR_FAMILY = "people_ops"


@dataclass(frozen=True)
class OrgPerson:
    id: int
    employee_id: str
    name: str
    email: str
    manager_id: int | None
    level: str
    job_family: str


@dataclass(frozen=True)
class CastMember:
    role: str  # "employee", "manager", "calibration panel", "HR admin"
    person: OrgPerson
    start: str  # the page the start route sends them to
    shows: str  # what they will find there, in a few words


@dataclass(frozen=True)
class Cast:
    employee: CastMember
    manager: CastMember
    panelist: CastMember
    hr: CastMember
    panel_id: int
    team: tuple[OrgPerson, ...]  # the manager's direct reports
    cohort: tuple[OrgPerson, ...]  # the panel's cohort

    @property
    def members(self) -> tuple[CastMember, ...]:
        return (self.employee, self.manager, self.panelist, self.hr)


@dataclass(frozen=True)
class _Picks:
    employee: OrgPerson
    manager: OrgPerson
    panelist: OrgPerson
    hr: OrgPerson
    members: tuple[OrgPerson, ...]
    team: tuple[OrgPerson, ...]
    cohort: tuple[OrgPerson, ...]


class NoCast(ValueError):
    """The org has nobody with a manager and evidence in the period: nothing to show."""


def set_up_cast(
    connection: Connection, period: Period, *, actor: str, indirect: bool = True
) -> Cast:
    """Choose the four, grant HR, set up the cohort's panel (kept when it exists)."""
    picks = _pick(connection, period)
    grant_hr_admin(connection, picks.hr.id, actor=actor)
    panel_id = _panel(connection, period, picks, actor=actor)

    def member(role: str, person: OrgPerson, shows: str) -> CastMember:
        principal = load_principal(connection, person.id, indirect=indirect)
        assert principal is not None
        return CastMember(role, person, start_path(principal), shows)

    employee = picks.employee
    return Cast(
        employee=member("employee", employee, "own evidence, self-reflection"),
        manager=member("manager", picks.manager, f"{len(picks.team)} reports' drafts"),
        panelist=member(
            "calibration panel", picks.panelist, f"{employee.level} {employee.job_family} cohort"
        ),
        hr=member("HR admin", picks.hr, f"{period.name} bias report"),
        panel_id=panel_id,
        team=picks.team,
        cohort=picks.cohort,
    )


def _pick(connection: Connection, period: Period) -> _Picks:
    people = org_people(connection)
    by_id = {p.id: p for p in people}
    managers = {p.manager_id for p in people if p.manager_id is not None}  # people with reports
    evidence = _evidence_counts(connection, period)
    candidates = [p for p in people if p.id not in managers and p.manager_id in by_id]
    if not any(evidence.get(p.id) for p in candidates):
        raise NoCast(f"nobody with a manager has evidence in {period.name}")
    employee = min(candidates, key=lambda p: (-evidence.get(p.id, 0), p.employee_id))
    manager = by_id[employee.manager_id]  # type: ignore[index]
    cohort = tuple(
        p for p in people if (p.level, p.job_family) == (employee.level, employee.job_family)
    )
    cohort_managers = sorted(
        {by_id[p.manager_id] for p in cohort if p.manager_id in by_id},
        key=lambda p: p.employee_id,
    )
    raiser = _bar_raiser(people, managers, employee, {p.id for p in cohort})
    members = tuple(cohort_managers) + ((raiser,) if raiser else ())
    panelist = raiser or next((m for m in members if m.id != manager.id), manager)
    chosen = {employee.id, manager.id, panelist.id}
    hr = _hr(people, managers, chosen)
    team = tuple(p for p in people if p.manager_id == manager.id)
    return _Picks(employee, manager, panelist, hr, members, team, cohort)


def org_people(connection: Connection) -> list[OrgPerson]:
    """Everyone stored, by employee id."""
    rows = connection.execute(
        select(
            Person.id,
            Person.employee_id,
            Person.name,
            Person.email,
            Person.manager_id,
            Person.level,
            Person.job_family,
        ).order_by(Person.employee_id)
    ).all()
    return [OrgPerson(*row) for row in rows]


def _evidence_counts(connection: Connection, period: Period) -> dict[int, int]:
    rows = connection.execute(
        select(Record.subject_id, func.count())
        .where(Record.occurred_at >= period.starts_at, Record.occurred_at < period.ends_before)
        .group_by(Record.subject_id)
    ).all()
    return {int(subject): int(count) for subject, count in rows}


def _rank(level: str) -> int:
    """L1 < L2 < ... by the number in the level's name; a level without one ranks lowest."""
    found = re.search(r"\d+", level)
    return int(found.group()) if found else -1


def _bar_raiser(
    people: Sequence[OrgPerson], managers: set[int], employee: OrgPerson, cohort: set[int]
) -> OrgPerson | None:
    senior = [
        p
        for p in people
        if p.id not in managers
        and p.id not in cohort
        and p.job_family == employee.job_family
        and _rank(p.level) > _rank(employee.level)
    ]
    return min(senior, key=lambda p: (-_rank(p.level), p.employee_id), default=None)


def _hr(people: Sequence[OrgPerson], managers: set[int], chosen: set[int]) -> OrgPerson:
    left = [p for p in people if p.id not in chosen]
    family = [p for p in left if p.job_family == HR_FAMILY]
    ics = [p for p in family if p.id not in managers]
    pool = ics or family or left
    return min(pool, key=lambda p: (-_rank(p.level), p.employee_id))


def _panel(connection: Connection, period: Period, picks: _Picks, *, actor: str) -> int:
    """The cohort's panel for the cycle: the one stored (a second demo run), or a new one."""
    level, family = picks.employee.level, picks.employee.job_family
    existing = connection.execute(
        select(CalibrationPanel.id).where(
            CalibrationPanel.cycle == period.name,
            CalibrationPanel.level == level,
            CalibrationPanel.job_family == family,
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    members = [p.id for p in picks.members]
    return create_panel(connection, period, level, family, members, actor=actor)
