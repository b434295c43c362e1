"""Upward feedback: when a cycle asks for it, starting the cycle asks every participant
whose manager also participates for feedback about that manager (a give_upward_feedback
task due with the peer-feedback phase, and a feedback request of kind `upward` with the
cycle's upward-feedback questions). Answered, declined and shown like peer feedback
(peer_feedback.py): the manager sees the answers only from 3 on, each as "a report".

Two INSERT ... SELECT statements over the participants, so a start for thousands of people
makes no query per person.
"""

from sqlalchemy import Connection, Integer, String, and_, cast, func, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.phases import TASK_PHASE, FeedbackKind, TaskKind
from service.cycles.tasks import participants
from service.db.models import CyclePhase, CycleTask, FeedbackRequest


def send_upward_requests(connection: Connection, cycle_id: int, questions: list[str]) -> int:
    """Each participant's task and request about their manager, where the manager is a
    participant too (a request already there left alone); how many requests were made."""
    who = participants(cycle_id)
    kind = TaskKind.GIVE_UPWARD_FEEDBACK
    phase = TASK_PHASE[kind]
    tasks = (
        select(
            cast(literal(cycle_id), Integer),
            cast(literal(str(kind)), String(32)),
            who.c.person_id,
            who.c.manager_id,
            cast(literal(str(phase)), String(32)),
            CyclePhase.due_on,
        )
        .select_from(who)
        .join(CyclePhase, and_(CyclePhase.cycle_id == cycle_id, CyclePhase.phase == str(phase)))
        # IN, not a join of the CTE with itself: a hashed subplan, where the join was a
        # nested loop over every pair of participants (0.29 s at 2,400 people)
        .where(who.c.manager_id.in_(select(who.c.person_id)))
    )
    columns = ["cycle_id", "kind", "assignee_id", "subject_id", "phase", "due_on"]
    connection.execute(pg_insert(CycleTask).from_select(columns, tasks).on_conflict_do_nothing())
    requests = select(
        CycleTask.cycle_id,
        cast(literal(str(FeedbackKind.UPWARD)), String(16)),
        CycleTask.subject_id,
        CycleTask.assignee_id,
        CycleTask.id,
        cast(literal(questions, type_=JSONB), JSONB),
    ).where(CycleTask.cycle_id == cycle_id, CycleTask.kind == kind)
    inserted = (
        pg_insert(FeedbackRequest)
        .from_select(
            ["cycle_id", "kind", "subject_id", "peer_id", "task_id", "questions"], requests
        )
        .on_conflict_do_nothing()
        .returning(FeedbackRequest.id)
        .cte("inserted")
    )
    return int(connection.execute(select(func.count()).select_from(inserted)).scalar_one())
