"""Closing a cycle's phases and releasing its reviews to employees (issue 16).

HR closes a phase once its work is done. Calibration closes only while the cycle's bias
report is current (the rule `service.ratings.workflow.current_report_at` keeps for
finalising ratings too): the ratings employees are about to see are the ones the report
checked. HR then releases the cycle, to everyone or department by department; a cycle with
a calibration phase only after calibration closed.

Until its release reaches a person's department, nothing of a set-up cycle's manager review
(manager feedback, promotion packet, calibration summary, approved or not) nor their rating
is theirs to see: `withheld_clause` is that condition as SQL, computed with the row it
guards so every reader (the API, the pages, the sign-off) applies the same rule in the
same query (service.access.scope takes its answer). A cycle without a set-up keeps the
older rule (approved drafts and final ratings are the subject's to read).
Every close and release is an audit event.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    and_,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from domain.errors import Conflict, Invalid, NotFound
from domain.phases import PHASES, CycleStatus, Phase
from service.audit import audit
from service.cycles.calibration_tasks import complete_calibration_tasks
from service.cycles.tasks import participants
from service.db.models import CyclePhase, CycleRelease, Person, ReviewCycle
from service.ratings.workflow import current_report_at


class CycleNotReleasable(Conflict):
    """The cycle cannot be released or its phase closed yet; the message says what to do."""


class ReleaseIn(BaseModel):
    department: str | None = Field(
        default=None,
        max_length=128,
        description="A department of the cycle's participants; none: release everyone.",
    )


class PhaseClosed(BaseModel):
    period: str = Field(examples=["2026-H1"])
    phase: Phase
    closed_at: datetime
    closed_by: str
    report_at: datetime | None = Field(
        description="Calibration: when the bias report it closed on ran."
    )


class ReleaseLine(BaseModel):
    period: str = Field(examples=["2026-H1"])
    department: str | None = Field(description="The department released; null: everyone.")
    released_by: str
    released_at: datetime


# --- the visibility rule, as SQL -----------------------------------------------------------


def withheld_clause(
    cycle_id: Any, subject_id: Any, period: Any | None = None
) -> ColumnElement[bool]:
    """True where the row (a draft of `period`/`cycle_id`, a rating of `cycle_id`) belongs
    to a cycle with a set-up that is not yet released to the subject's department. A draft
    written before its cycle was set up has no cycle id but its period names the cycle."""
    return _set_up_cycle(cycle_id, subject_id, period, released=False)


def released_clause(
    cycle_id: Any, subject_id: Any, period: Any | None = None
) -> ColumnElement[bool]:
    """True where the row belongs to a set-up cycle already released to the subject's
    department: what the employee read and acknowledged no longer changes."""
    return _set_up_cycle(cycle_id, subject_id, period, released=True)


def _set_up_cycle(
    cycle_id: Any, subject_id: Any, period: Any | None, *, released: bool
) -> ColumnElement[bool]:
    cycle = aliased(ReviewCycle)
    subject = aliased(Person)
    is_released = exists().where(
        CycleRelease.cycle_id == cycle.id,
        or_(CycleRelease.department.is_(None), CycleRelease.department == subject.department),
    )
    same_cycle = cycle.id == cycle_id
    if period is not None:
        same_cycle = or_(same_cycle, and_(cycle_id.is_(None), cycle.name == period))
    return (
        select(literal(1))
        .select_from(cycle)
        .join(subject, subject.id == subject_id)  # one row each: the join says so
        .where(same_cycle, cycle.status.is_not(None), is_released if released else ~is_released)
        .exists()
    )


def rating_withheld(connection: Connection, cycle: str, person_id: int) -> bool:
    """The person's rating of this cycle is not theirs to see yet (see withheld_clause)."""
    cycle_id = select(ReviewCycle.id).where(ReviewCycle.name == cycle).scalar_subquery()
    return bool(connection.execute(select(withheld_clause(cycle_id, literal(person_id)))).scalar())


# --- closing a phase -----------------------------------------------------------------------


def _started(connection: Connection, name: str, *, lock: bool = False) -> Row[*tuple[Any, ...]]:
    """The started cycle of this name (locked when asked), or NotFound / Conflict."""
    statement = select(ReviewCycle.id, ReviewCycle.status, ReviewCycle.name).where(
        ReviewCycle.name == name
    )
    row = connection.execute(statement.with_for_update() if lock else statement).one_or_none()
    if row is None or row.status is None:
        raise NotFound(f"cycle {name} has no set-up", field="cycle")
    if row.status != CycleStatus.STARTED:
        raise CycleNotReleasable(f"cycle {name} has not started: start it first", field="cycle")
    return row


def _phase(connection: Connection, cycle_id: int, name: str, phase: Phase) -> Row[*tuple[Any, ...]]:
    row = connection.execute(
        select(CyclePhase.phase, CyclePhase.closed_at, CyclePhase.closed_by)
        .where(CyclePhase.cycle_id == cycle_id, CyclePhase.phase == str(phase))
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFound(f"cycle {name} has no {phase} phase", field="phase")
    return row


def close_phase(connection: Connection, cycle: str, phase: Phase, *, actor: str) -> PhaseClosed:
    """Close the phase (once). Calibration closes only while the cycle's bias report is
    current, so the ratings released are the ones it checked."""
    row = _started(connection, cycle, lock=True)
    current = _phase(connection, row.id, cycle, phase)
    if current.closed_at is not None:
        raise CycleNotReleasable(
            f"the {phase} phase of {cycle} was closed by {current.closed_by} on "
            f"{current.closed_at:%Y-%m-%d}",
            field="phase",
        )
    report_at = None
    if phase == Phase.CALIBRATION:
        report_at = current_report_at(connection, cycle)
        if report_at is None:
            raise CycleNotReleasable(
                f"run the bias report for {cycle} first: calibration closes only once the "
                "cycle's report has seen the ratings as they are now",
                field="phase",
            )
    closed_at = connection.execute(
        update(CyclePhase)
        .where(CyclePhase.cycle_id == row.id, CyclePhase.phase == str(phase))
        .values(closed_at=func.now(), closed_by=actor)
        .returning(CyclePhase.closed_at)
    ).scalar_one()
    if phase == Phase.CALIBRATION:
        complete_calibration_tasks(connection, row.id)  # the panel members' tasks
    audit(
        connection,
        actor=actor,
        action="cycle.phase_closed",
        entity="cycle",
        entity_id=cycle,
        after={"phase": str(phase), "report_at": None if report_at is None else str(report_at)},
    )
    return PhaseClosed(
        period=cycle, phase=phase, closed_at=closed_at, closed_by=actor, report_at=report_at
    )


# --- releasing -----------------------------------------------------------------------------


def release_cycle(
    connection: Connection, cycle: str, department: str | None, *, actor: str
) -> ReleaseLine:
    """Release the cycle to one department of its participants, or to everyone (None).
    A cycle with a calibration phase is released only after calibration closed. Releasing
    what is already released is a Conflict that says when it was."""
    row = _started(connection, cycle, lock=True)
    calibration = connection.execute(
        select(CyclePhase.closed_at).where(
            CyclePhase.cycle_id == row.id, CyclePhase.phase == Phase.CALIBRATION
        )
    ).one_or_none()
    if calibration is not None and calibration.closed_at is None:
        raise CycleNotReleasable(
            f"close the calibration phase of {cycle} first: a cycle is released after calibration",
            field="cycle",
        )
    if department is not None:
        department = _participant_department(connection, row.id, cycle, department)
    done = _released(connection, row.id, department)
    if done is not None:
        whom = "everyone" if done.department is None else f"department {done.department}"
        raise CycleNotReleasable(
            f"cycle {cycle} was already released to {whom} by {done.released_by} on "
            f"{done.released_at:%Y-%m-%d}",
            field="department",
        )
    released_at = connection.execute(
        insert(CycleRelease)
        .values(cycle_id=row.id, department=department, released_by=actor)
        .returning(CycleRelease.released_at)
    ).scalar_one()
    audit(
        connection,
        actor=actor,
        action="cycle.released",
        entity="cycle",
        entity_id=cycle,
        after={"department": department},
    )
    return ReleaseLine(
        period=cycle, department=department, released_by=actor, released_at=released_at
    )


def _participant_department(
    connection: Connection, cycle_id: int, cycle: str, department: str
) -> str:
    """The department as one of the cycle's participants' (so a typo releases nothing and
    says so), or Invalid naming the field."""
    department = department.strip()
    if not department:
        raise Invalid(
            "department: give a department, or none to release everyone", field="department"
        )
    who = participants(cycle_id)
    found = connection.execute(
        select(Person.department)
        .join(who, who.c.person_id == Person.id)
        .where(Person.department == department)
        .limit(1)
    ).scalar_one_or_none()
    if found is None:
        raise Invalid(
            f"department: no participant of cycle {cycle} is in department {department[:128]!r}",
            field="department",
        )
    return department


def _released(
    connection: Connection, cycle_id: int, department: str | None
) -> Row[*tuple[Any, ...]] | None:
    """The release that already covers this one: a whole release covers everything."""
    covers: ColumnElement[bool] = CycleRelease.department.is_(None)
    if department is not None:
        covers = or_(covers, CycleRelease.department == department)
    return connection.execute(
        select(CycleRelease.department, CycleRelease.released_by, CycleRelease.released_at)
        .where(CycleRelease.cycle_id == cycle_id, covers)
        .order_by(CycleRelease.id)
        .limit(1)
    ).one_or_none()


class PhaseClosure(BaseModel):
    phase: Phase
    closed_at: datetime
    closed_by: str


def closures(connection: Connection, cycle: str) -> list[PhaseClosure]:
    """The cycle's closed phases, in the order phases run (the dashboard shows them)."""
    rows = connection.execute(
        select(CyclePhase.phase, CyclePhase.closed_at, CyclePhase.closed_by)
        .join(ReviewCycle, ReviewCycle.id == CyclePhase.cycle_id)
        .where(ReviewCycle.name == cycle, CyclePhase.closed_at.is_not(None))
    ).all()
    closed = [PhaseClosure.model_validate(r, from_attributes=True) for r in rows]
    return sorted(closed, key=lambda c: PHASES.index(c.phase))


def releases(connection: Connection, cycle: str) -> list[ReleaseLine]:
    """The cycle's releases, oldest first (the dashboard shows them)."""
    rows = connection.execute(
        select(CycleRelease.department, CycleRelease.released_by, CycleRelease.released_at)
        .join(ReviewCycle, ReviewCycle.id == CycleRelease.cycle_id)
        .where(ReviewCycle.name == cycle)
        .order_by(CycleRelease.id)
    ).all()
    return [ReleaseLine(period=cycle, **r._mapping) for r in rows]
