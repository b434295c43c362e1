"""Approving a review's text completes the task that asked for it: a subject's approved
self-reflection their write_self_reflection task, an approved manager's feedback the
manager's write_manager_feedback task of that subject, an approved promotion packet its
writer's write_promotion_packet task (a nominated person's). Called by the approval gate
(service.bias.gate.approve_draft) in the approval's transaction, so the two cannot part.
"""

from sqlalchemy import Connection, and_, case, func, or_, update

from domain.kinds import DraftKind
from domain.phases import TaskKind, TaskStatus
from service.db.models import CycleTask, Draft, ReviewCycle

TASK_OF_DRAFT: dict[DraftKind, TaskKind] = {
    DraftKind.SELF_REFLECTION: TaskKind.WRITE_SELF_REFLECTION,
    DraftKind.MANAGER_FEEDBACK: TaskKind.WRITE_MANAGER_FEEDBACK,
    DraftKind.PROMOTION_PACKET: TaskKind.WRITE_PROMOTION_PACKET,  # a nominated person's
}


def complete_review_task(connection: Connection, draft_id: int) -> int:
    """Mark the open task the approved draft answers done, in ONE statement (the draft's
    cycle by its id, or by its period's name for a draft written before the set-up); how
    many tasks it marked (0 for a kind no task asks for, or outside any started cycle)."""
    task_kind = case(
        *((Draft.kind == str(d), str(t)) for d, t in TASK_OF_DRAFT.items()), else_=None
    )
    result = connection.execute(
        update(CycleTask)
        .where(
            Draft.id == draft_id,
            or_(
                ReviewCycle.id == Draft.cycle_id,
                and_(Draft.cycle_id.is_(None), ReviewCycle.name == Draft.period),
            ),
            CycleTask.cycle_id == ReviewCycle.id,
            CycleTask.subject_id == Draft.subject_id,
            CycleTask.kind == task_kind,
            CycleTask.status == TaskStatus.OPEN,
        )
        .values(status=TaskStatus.DONE, done_at=func.now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)
