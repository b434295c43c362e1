"""Calibration tasks (issue 16): each member of a calibration panel of a started cycle that
asks for calibration has a calibrate_cohort task, due with the calibration phase.

One task per member and cycle, its subject the member themselves: a task says "calibrate
your cohorts in this cycle", and a member on two panels of one cycle (two cohorts) does
both in the same phase, so the task is done for both when HR closes calibration (the my-tasks
page links a member of one panel to it, of several to the panel list). Tasks are created in
one INSERT ... SELECT over the panels' members: when the cycle starts (rows of the start's
one statement, service.cycles.tasks.create_tasks), and when members are seated on a panel
of a started cycle whose calibration is still open. HR's close of the
calibration phase (service.cycles.release.close_phase) marks them done in one UPDATE.
"""

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    cast,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.phases import TASK_PHASE, CycleReview, CycleStatus, TaskKind, TaskStatus
from service.db.models import CalibrationPanel, CyclePhase, CycleTask, PanelMember, ReviewCycle

KIND = TaskKind.CALIBRATE_COHORT


def _rows(*where: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """The calibrate_cohort task rows (cycle_tasks' columns, as tasks.create_tasks inserts
    them) of the panel members the conditions select, in a cycle asking for calibration
    whose calibration phase is open: one row per member and cycle."""
    phase = str(TASK_PHASE[KIND])
    return (
        select(
            ReviewCycle.id,
            cast(literal(str(KIND)), String(32)),
            PanelMember.person_id,
            PanelMember.person_id,
            cast(literal(phase), String(32)),
            CyclePhase.due_on,
        )
        .select_from(PanelMember)
        .join(CalibrationPanel, CalibrationPanel.id == PanelMember.panel_id)
        .join(ReviewCycle, ReviewCycle.name == CalibrationPanel.cycle)
        .join(CyclePhase, (CyclePhase.cycle_id == ReviewCycle.id) & (CyclePhase.phase == phase))
        .where(
            literal(str(CycleReview.CALIBRATION)) == func.any(ReviewCycle.reviews),
            CyclePhase.closed_at.is_(None),
            *where,
        )
        .distinct()
    )


def start_rows(cycle_id: int) -> Select[*tuple[Any, ...]]:
    """Every panel member's task row of the cycle being started: part of the start's one
    INSERT ... SELECT (service.cycles.tasks.create_tasks)."""
    return _rows(ReviewCycle.id == cycle_id)


def create_member_tasks(connection: Connection, panel_id: int, members: Collection[int]) -> int:
    """The tasks of members just seated on a panel (none unless its cycle is under way)."""
    if not members:
        return 0
    rows = _rows(
        ReviewCycle.status == CycleStatus.STARTED,
        PanelMember.panel_id == cast(literal(panel_id), Integer),
        PanelMember.person_id.in_(list(members)),
    )
    inserted = connection.execute(
        pg_insert(CycleTask)
        .from_select(["cycle_id", "kind", "assignee_id", "subject_id", "phase", "due_on"], rows)
        .on_conflict_do_nothing()
        .returning(CycleTask.id)
    )
    return len(inserted.all())


def complete_calibration_tasks(connection: Connection, cycle_id: int) -> int:
    """Mark the cycle's open calibrate_cohort tasks done (HR closed calibration)."""
    result = connection.execute(
        update(CycleTask)
        .where(
            CycleTask.cycle_id == cycle_id,
            CycleTask.kind == KIND,
            CycleTask.status == TaskStatus.OPEN,
        )
        .values(status=TaskStatus.DONE, done_at=func.now())
    )
    return int(result.rowcount)


def member_panels(
    connection: Connection, person_id: int, cycles: Collection[str]
) -> dict[str, list[int]]:
    """The panels the person sits on in each of these cycles, by cycle (the my-tasks page
    links a calibrate_cohort task to them)."""
    if not cycles:
        return {}
    rows = connection.execute(
        select(CalibrationPanel.cycle, CalibrationPanel.id)
        .join(PanelMember, PanelMember.panel_id == CalibrationPanel.id)
        .where(PanelMember.person_id == person_id, CalibrationPanel.cycle.in_(list(cycles)))
        .order_by(CalibrationPanel.cycle, CalibrationPanel.id)
    )
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row.cycle, []).append(int(row.id))
    return found
