"""Calibration panels: who sits on one, which cohort it calibrates, and its 9-box grid.

A panel calibrates one cohort of one cycle: everyone with the panel's level and job family,
read from the HRIS data as it is now (a promotion moves a person to another cohort). Its
members are the people allowed to see that cohort (`service.access`). A placement on the
9-box grid (performance and potential, 1 to 3 each) is the panel's judgement, so it is
accepted only for a person of the cohort, and every change is audited.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Select, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import Invalid, NotFound
from domain.periods import Period
from service.audit import audit
from service.cycles.calibration_tasks import create_member_tasks
from service.cycles.store import create_cycles
from service.db.models import CalibrationPanel, PanelMember, Person, Placement

GRID = (1, 3)  # the 9-box grid's low and high on each axis


class PanelRefused(Invalid):
    """The panel change is not allowed; the message says why (an HTTP 4xx, not a 500)."""


class PanelNotFound(NotFound):
    pass


@dataclass(frozen=True)
class PanelView:
    id: int
    cycle: str
    level: str
    job_family: str
    members: tuple[int, ...]  # person ids, ascending
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class CohortPerson:
    id: int
    employee_id: str
    name: str
    manager_id: int | None
    level: str
    job_family: str


@dataclass(frozen=True)
class PlacementView:
    panel_id: int
    person_id: int
    performance: int  # 1 (low) to 3
    potential: int  # 1 (low) to 3
    placed_by: str
    updated_at: datetime


def create_panel(
    connection: Connection,
    cycle: Period,
    level: str,
    job_family: str,
    members: Sequence[int],
    *,
    actor: str,
) -> int:
    """A new panel for the cohort (level, job family) of the cycle, with its members; one
    panel per cohort and cycle, so a second one is refused and names the first."""
    level, job_family = level.strip(), job_family.strip()
    if not level or len(level) > 32:
        raise PanelRefused("level: give 1 to 32 characters")
    if not job_family or len(job_family) > 128:
        raise PanelRefused("job_family: give 1 to 128 characters")
    _require_people(connection, set(members), "members")
    create_cycles(connection, {cycle}, actor=actor)  # HR's set-up names its cycle
    panel_id = connection.execute(
        pg_insert(CalibrationPanel)
        .values(cycle=cycle.name, level=level, job_family=job_family, created_by=actor)
        .on_conflict_do_nothing()
        .returning(CalibrationPanel.id)
    ).scalar_one_or_none()
    if panel_id is None:
        existing = connection.execute(
            select(CalibrationPanel.id).where(
                CalibrationPanel.cycle == cycle.name,
                CalibrationPanel.level == level,
                CalibrationPanel.job_family == job_family,
            )
        ).scalar_one()
        raise PanelRefused(
            f"{cycle.name} already has a panel for {level} {job_family}: panel {existing}"
        )
    if members:
        connection.execute(
            pg_insert(PanelMember).on_conflict_do_nothing(),
            [{"panel_id": panel_id, "person_id": p} for p in sorted(set(members))],
        )
        create_member_tasks(connection, panel_id, set(members))  # a started cycle's
    audit(
        connection,
        actor=actor,
        action="panel.created",
        entity="calibration_panel",
        entity_id=str(panel_id),
        after={
            "cycle": cycle.name,
            "level": level,
            "job_family": job_family,
            "members": sorted(set(members)),
        },
    )
    return panel_id


def add_member(connection: Connection, panel_id: int, person_id: int, *, actor: str) -> bool:
    """Seat the person on the panel; False (and no audit event) when already seated."""
    _require_panel(connection, panel_id)
    _require_people(connection, {person_id}, "person_id")
    added = connection.execute(
        pg_insert(PanelMember)
        .values(panel_id=panel_id, person_id=person_id)
        .on_conflict_do_nothing()
        .returning(PanelMember.person_id)
    ).scalar_one_or_none()
    if added is None:
        return False
    create_member_tasks(connection, panel_id, {person_id})  # a started cycle's calibration
    audit(
        connection,
        actor=actor,
        action="panel.member_added",
        entity="calibration_panel",
        entity_id=str(panel_id),
        after={"person_id": person_id},
    )
    return True


def panel(connection: Connection, panel_id: int) -> PanelView | None:
    found = _panels(connection, _panel_query().where(CalibrationPanel.id == panel_id))
    return found[0] if found else None


def panels_of(connection: Connection, person_id: int) -> list[PanelView]:
    """The panels the person sits on, newest cycle first, in one query."""
    seated = select(PanelMember.panel_id).where(PanelMember.person_id == person_id)
    return _panels(connection, _panel_query().where(CalibrationPanel.id.in_(seated)))


def all_panels(connection: Connection, *, cycle: str | None = None) -> list[PanelView]:
    """Every panel (of one cycle, if named), newest cycle first, in one query: HR's list."""
    query = _panel_query()
    if cycle is not None:
        query = query.where(CalibrationPanel.cycle == cycle)
    return _panels(connection, query)


def cohort_people(connection: Connection, panel: PanelView) -> list[CohortPerson]:
    """Everyone the panel calibrates: the people with its level and job family, by id (an
    order that says nothing about them; a view sorts by label or name itself)."""
    rows = connection.execute(
        select(
            Person.id,
            Person.employee_id,
            Person.name,
            Person.manager_id,
            Person.level,
            Person.job_family,
        )
        .where(Person.level == panel.level, Person.job_family == panel.job_family)
        .order_by(Person.id)
    )
    return [CohortPerson(**row._mapping) for row in rows]


def place(
    connection: Connection,
    panel_id: int,
    person_id: int,
    performance: int,
    potential: int,
    *,
    actor: str,
) -> PlacementView:
    """Put the person on the panel's 9-box grid (or move them); refused for a value off
    the grid or a person outside the panel's cohort."""
    for field, value in (("performance", performance), ("potential", potential)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise PanelRefused(f"{field}: {value!r} is not a whole number")
        if not GRID[0] <= value <= GRID[1]:
            raise PanelRefused(f"{field}: {value} is off the grid, {GRID[0]} to {GRID[1]}")
    found = _require_panel(connection, panel_id)
    in_cohort = connection.execute(
        select(Person.id).where(
            Person.id == person_id,
            Person.level == found.level,
            Person.job_family == found.job_family,
        )
    ).scalar_one_or_none()
    if in_cohort is None:
        raise PanelRefused(
            f"person {person_id} is not in the cohort of panel {panel_id} "
            f"({found.level} {found.job_family})"
        )
    before = _placement(connection, panel_id, person_id)
    if before is not None and (before.performance, before.potential) == (performance, potential):
        return before
    statement = pg_insert(Placement).values(
        panel_id=panel_id,
        person_id=person_id,
        performance=performance,
        potential=potential,
        placed_by=actor,
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["panel_id", "person_id"],
            set_={
                "performance": statement.excluded.performance,
                "potential": statement.excluded.potential,
                "placed_by": statement.excluded.placed_by,
                "updated_at": func.now(),
            },
        )
    )
    after = _placement(connection, panel_id, person_id)
    assert after is not None
    audit(
        connection,
        actor=actor,
        action="placement.set",
        entity="placement",
        entity_id=f"{panel_id}/{person_id}",
        before=None if before is None else _grid(before),
        after=_grid(after),
    )
    return after


def placements(connection: Connection, panel_id: int) -> list[PlacementView]:
    """The panel's grid, by person id."""
    rows = connection.execute(
        _placement_query().where(Placement.panel_id == panel_id).order_by(Placement.person_id)
    )
    return [PlacementView(**row._mapping) for row in rows]


def _placement(connection: Connection, panel_id: int, person_id: int) -> PlacementView | None:
    row = connection.execute(
        _placement_query().where(Placement.panel_id == panel_id, Placement.person_id == person_id)
    ).one_or_none()
    return None if row is None else PlacementView(**row._mapping)


def _placement_query() -> Select[*tuple[Any, ...]]:
    return select(
        Placement.panel_id,
        Placement.person_id,
        Placement.performance,
        Placement.potential,
        Placement.placed_by,
        Placement.updated_at,
    )


def _grid(view: PlacementView) -> dict[str, int]:
    return {"performance": view.performance, "potential": view.potential}


def _require_panel(connection: Connection, panel_id: int) -> PanelView:
    found = panel(connection, panel_id)
    if found is None:
        raise PanelNotFound(f"no calibration panel {panel_id}")
    return found


def _require_people(connection: Connection, ids: set[int], field: str) -> None:
    if not ids:
        return
    found = set(connection.execute(select(Person.id).where(Person.id.in_(ids))).scalars())
    missing = sorted(ids - found)
    if missing:
        raise PanelRefused(f"{field}: no person with id {', '.join(map(str, missing))}")


def _panel_query() -> Select[*tuple[Any, ...]]:
    members = (
        select(func.array_agg(PanelMember.person_id.distinct()))
        .where(PanelMember.panel_id == CalibrationPanel.id)
        .scalar_subquery()
    )
    return select(
        CalibrationPanel.id,
        CalibrationPanel.cycle,
        CalibrationPanel.level,
        CalibrationPanel.job_family,
        members.label("members"),
        CalibrationPanel.created_by,
        CalibrationPanel.created_at,
    ).order_by(CalibrationPanel.cycle.desc(), CalibrationPanel.id)


def _panels(connection: Connection, query: Select[*tuple[Any, ...]]) -> list[PanelView]:
    return [
        PanelView(
            id=row.id,
            cycle=row.cycle,
            level=row.level,
            job_family=row.job_family,
            members=tuple(sorted(row.members or ())),
            created_by=row.created_by,
            created_at=row.created_at,
        )
        for row in connection.execute(query)
    ]


class PanelMemberLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    employee_id: str
    name: str


class PanelLine(BaseModel):
    """A panel as the operator's list shows it: its cohort, who sits on it, how big the
    cohort is now and how many of it the panel has placed on its grid."""

    model_config = ConfigDict(frozen=True)

    id: int
    cycle: str
    level: str
    job_family: str
    members: list[PanelMemberLine]  # by name
    cohort: int  # people with the panel's level and job family today
    placed: int  # of them on the panel's 9-box grid
    created_by: str
    created_at: datetime


def list_panels(
    connection: Connection, *, cycle: str | None, limit: int, offset: int
) -> tuple[list[PanelLine], int]:
    """A page of panels (of one cycle, if named), newest cycle first, and how many there
    are: the operator's view (HR's list). Three queries: the count, the page with its
    cohort sizes, and the members of the page's panels."""
    chosen = select(CalibrationPanel.id)
    if cycle is not None:
        chosen = chosen.where(CalibrationPanel.cycle == cycle)
    total = connection.execute(select(func.count()).select_from(chosen.subquery())).scalar_one()
    cohort = (
        select(func.count())
        .where(
            Person.level == CalibrationPanel.level,
            Person.job_family == CalibrationPanel.job_family,
        )
        .scalar_subquery()
    )
    placed = (
        select(func.count())
        .select_from(Placement)
        .join(Person, Person.id == Placement.person_id)
        .where(
            Placement.panel_id == CalibrationPanel.id,
            Person.level == CalibrationPanel.level,
            Person.job_family == CalibrationPanel.job_family,
        )
        .scalar_subquery()
    )
    rows = connection.execute(
        select(
            CalibrationPanel.id,
            CalibrationPanel.cycle,
            CalibrationPanel.level,
            CalibrationPanel.job_family,
            cohort.label("cohort"),
            placed.label("placed"),
            CalibrationPanel.created_by,
            CalibrationPanel.created_at,
        )
        .where(CalibrationPanel.id.in_(chosen))
        .order_by(CalibrationPanel.cycle.desc(), CalibrationPanel.id)
        .limit(limit)
        .offset(offset)
    ).all()
    members = _members(connection, [row.id for row in rows])
    return [PanelLine(**row._mapping, members=members.get(row.id, [])) for row in rows], int(total)


def _members(connection: Connection, panel_ids: Sequence[int]) -> dict[int, list[PanelMemberLine]]:
    found: dict[int, list[PanelMemberLine]] = {}
    if not panel_ids:
        return found
    rows = connection.execute(
        select(PanelMember.panel_id, Person.employee_id, Person.name)
        .join(Person, Person.id == PanelMember.person_id)
        .where(PanelMember.panel_id.in_(panel_ids))
        .order_by(PanelMember.panel_id, Person.name, Person.id)
    )
    for row in rows:
        found.setdefault(row.panel_id, []).append(
            PanelMemberLine(employee_id=row.employee_id, name=row.name)
        )
    return found
