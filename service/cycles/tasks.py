"""A cycle's tasks: created for every participant in one statement when the cycle starts,
moved with their phase's dates, and read as a person's "my tasks".

Participants are chosen inside the statement from the cycle's own row (its cut-off day and
department, level and job family lists), so starting a cycle for thousands of people is one
INSERT ... SELECT and no query per person. A task is overdue when it is still open and its
due day has passed in the cycle's time zone: a task due on the 1st is overdue in Auckland
hours before it is in Los Angeles.
"""

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    CTE,
    ColumnElement,
    Connection,
    Date,
    Integer,
    Row,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

from domain.phases import (
    TASK_PHASE,
    CycleReview,
    Phase,
    TaskKind,
    TaskStatus,
)
from service.cycles.calibration_tasks import start_rows  # panel members' calibrate_cohort
from service.db.models import CyclePhase, CycleTask, Person, ReviewCycle

# What each review asked gives every participant to do: (kind, done by the manager).
# Promotion packets (nominated people) and calibration (panels) come with their own steps.
TASKS_OF_REVIEW: dict[CycleReview, tuple[tuple[TaskKind, bool], ...]] = {
    CycleReview.SELF_REFLECTION: ((TaskKind.WRITE_SELF_REFLECTION, False),),
    CycleReview.PEER_FEEDBACK: (
        (TaskKind.NOMINATE_PEERS, False),
        (TaskKind.APPROVE_NOMINATIONS, True),
    ),
    CycleReview.MANAGER_FEEDBACK: ((TaskKind.WRITE_MANAGER_FEEDBACK, True),),
}
# A list of peers is approved by the subject's manager: a participant without one (the top
# of the tree) has nobody to approve it, so is not asked to nominate, and their peer
# feedback is not collected (their self-reflection and upward feedback still are).
NEEDS_A_MANAGER: frozenset[TaskKind] = frozenset({TaskKind.NOMINATE_PEERS})
# Everyone reviewed acknowledges their released review.
ALWAYS: tuple[tuple[TaskKind, bool], ...] = ((TaskKind.ACKNOWLEDGE_REVIEW, False),)


def task_plan(reviews: frozenset[CycleReview]) -> list[tuple[TaskKind, bool]]:
    """The tasks a cycle asking for these reviews gives each participant, in task order."""
    plan = [t for r in CycleReview if r in reviews for t in TASKS_OF_REVIEW.get(r, ())]
    return plan + list(ALWAYS)


def participants(cycle_id: int) -> CTE:
    """The cycle's participants (id, manager id), by the rule on the cycle's row: hired on
    or before the cut-off (or with no hire date on file), and in the listed departments,
    levels and job families where a list is not empty."""
    cycle = select(ReviewCycle.__table__).where(ReviewCycle.id == cycle_id).subquery()

    def within(column: Any, values: Any) -> ColumnElement[bool]:
        return or_(func.cardinality(values) == 0, column == func.any(values))

    return (
        select(Person.id.label("person_id"), Person.manager_id)
        .select_from(Person)
        .join(cycle, true())
        .where(
            Person.active,
            or_(Person.hire_date.is_(None), Person.hire_date <= cycle.c.cutoff_on),
            within(Person.department, cycle.c.departments),
            within(Person.level, cycle.c.levels),
            within(Person.job_family, cycle.c.job_families),
        )
        .cte("participants")
    )


def _rows_of(cycle_id: int, who: CTE, kind: TaskKind, by_manager: bool) -> Select[Any]:
    """The rows of one task kind: assignee the participant (or their manager, where they
    have one), subject the participant, due on the phase's due day."""
    phase = TASK_PHASE[kind]
    assignee = who.c.manager_id if by_manager else who.c.person_id
    statement = (
        select(
            cast(literal(cycle_id), Integer).label("cycle_id"),
            cast(literal(str(kind)), String(32)).label("kind"),
            assignee.label("assignee_id"),
            who.c.person_id.label("subject_id"),
            cast(literal(str(phase)), String(32)).label("phase"),
            CyclePhase.due_on,
        )
        .select_from(who)
        .join(CyclePhase, and_(CyclePhase.cycle_id == cycle_id, CyclePhase.phase == str(phase)))
    )
    if by_manager or kind in NEEDS_A_MANAGER:
        return statement.where(who.c.manager_id.is_not(None))
    return statement


def create_tasks(
    connection: Connection, cycle_id: int, reviews: frozenset[CycleReview]
) -> dict[TaskKind, int]:
    """Every participant's tasks, in ONE statement (INSERT ... SELECT over the
    participants, and over the panel members for calibration, a task already there left
    alone); how many were created, by kind."""
    who = participants(cycle_id)
    calibration = [start_rows(cycle_id)] if CycleReview.CALIBRATION in reviews else []
    plan = [_rows_of(cycle_id, who, k, m) for k, m in task_plan(reviews)]
    rows = union_all(*plan, *calibration)
    columns = ["cycle_id", "kind", "assignee_id", "subject_id", "phase", "due_on"]
    inserted = (
        pg_insert(CycleTask)
        .from_select(columns, rows)
        .on_conflict_do_nothing()
        .returning(CycleTask.kind)
        .cte("inserted")
    )
    counted = select(inserted.c.kind, func.count()).group_by(inserted.c.kind)
    found = {TaskKind(kind): int(n) for kind, n in connection.execute(counted)}
    return {k: found[k] for k in TaskKind if k in found}


def task_counts(connection: Connection, cycle_id: int) -> dict[TaskKind, int]:
    rows = connection.execute(
        select(CycleTask.kind, func.count())
        .where(CycleTask.cycle_id == cycle_id)
        .group_by(CycleTask.kind)
    )
    found = {TaskKind(kind): int(n) for kind, n in rows}
    return {k: found[k] for k in TaskKind if k in found}


def move_due_dates(connection: Connection, cycle_id: int) -> int:
    """Open tasks follow their phase's due day (one UPDATE); done and declined tasks keep
    the day they had. How many moved."""
    result = connection.execute(
        update(CycleTask)
        .where(
            CycleTask.cycle_id == cycle_id,
            CycleTask.status == TaskStatus.OPEN,
            CyclePhase.cycle_id == CycleTask.cycle_id,
            CyclePhase.phase == CycleTask.phase,
            CycleTask.due_on != CyclePhase.due_on,
        )
        .values(due_on=CyclePhase.due_on)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)


# --- my tasks -----------------------------------------------------------------------------


class TaskLine(BaseModel):
    """One task as its assignee sees it."""

    id: int
    cycle: str = Field(examples=["2026-H2"])
    cycle_title: str | None
    kind: TaskKind
    phase: Phase
    subject_id: int | None = Field(
        description="Whose review it serves; null where the caller may no longer see them."
    )
    subject_name: str | None = Field(
        description="The subject's name where it is someone else (a report)."
    )
    due_on: date
    status: TaskStatus
    done_at: datetime | None
    overdue: bool = Field(description="Open, and its due day has passed in the cycle's zone.")


_SUBJECT = aliased(Person)
_NOW = bindparam("now", type_=ReviewCycle.started_at.type)
_OVERDUE = and_(
    CycleTask.status == TaskStatus.OPEN,
    CycleTask.due_on < cast(func.timezone(ReviewCycle.time_zone, _NOW), Date),
)
# The same rule for the reminders' query (service/cycles/reminders.py): a statement over
# cycle_tasks joined to review_cycles, with the bound parameter "now".
OVERDUE = _OVERDUE
CYCLE_TODAY = cast(func.timezone(ReviewCycle.time_zone, _NOW), Date)


def tasks_of(
    connection: Connection,
    assignee_id: int,
    *,
    now: datetime,
    may_see: Callable[[int], bool],
    cycle: str | None = None,
    status: TaskStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[TaskLine], int]:
    """A page of one person's tasks, soonest due first, and how many there are. A subject
    is named only where `may_see` allows (a report moved to another manager since the
    cycle started is no longer this person's to see)."""
    where = [CycleTask.assignee_id == assignee_id]
    if cycle is not None:
        where.append(ReviewCycle.name == cycle)
    if status is not None:
        where.append(CycleTask.status == status)
    base = (
        select(
            CycleTask.id,
            ReviewCycle.name.label("cycle"),
            ReviewCycle.title.label("cycle_title"),
            CycleTask.kind,
            CycleTask.phase,
            CycleTask.subject_id,
            _SUBJECT.name.label("subject_name"),
            CycleTask.due_on,
            CycleTask.status,
            CycleTask.done_at,
            case((_OVERDUE, True), else_=False).label("overdue"),
        )
        .join(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .join(_SUBJECT, _SUBJECT.id == CycleTask.subject_id)
        .where(*where)
    )
    total = connection.execute(
        select(func.count()).select_from(CycleTask).join(ReviewCycle).where(*where)
    ).scalar_one()
    rows = connection.execute(
        base.order_by(CycleTask.due_on, CycleTask.id).limit(limit).offset(offset),
        {"now": now},
    ).all()
    return [_line(r, assignee_id, may_see) for r in rows], int(total)


def _line(row: Row[*tuple[Any, ...]], assignee_id: int, may_see: Callable[[int], bool]) -> TaskLine:
    subject_id: int = row.subject_id
    visible = may_see(subject_id)
    own = subject_id == assignee_id
    return TaskLine(
        id=row.id,
        cycle=row.cycle,
        cycle_title=row.cycle_title,
        kind=TaskKind(row.kind),
        phase=Phase(row.phase),
        subject_id=subject_id if visible else None,
        subject_name=row.subject_name if visible and not own else None,
        due_on=row.due_on,
        status=TaskStatus(row.status),
        done_at=row.done_at,
        overdue=bool(row.overdue),
    )
