"""Peer nominations: the employee names the peers who should give feedback on them in a
cycle, their manager adds or removes peers and approves the list; approval sends each peer
a feedback request with the cycle's peer-feedback questions (and a give_peer_feedback task
due when the peer-feedback phase is).

A list holds MIN_PEERS to MAX_PEERS of the cycle's participants, never the subject nor the
subject's manager (the manager writes their own review). Setting a list replaces it whole,
which is how both the employee and the manager add and remove; once approved it is fixed.
Every change is audited with the list before and after. Each function locks the subject's
approve_nominations task row (FOR UPDATE) first, so an edit and an approval cannot cross.
"""

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Row, delete, func, insert, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import Conflict, Invalid, NotFound
from domain.phases import TASK_PHASE, CycleReview, CycleStatus, TaskKind, TaskStatus
from service.audit import audit
from service.db.models import (
    CyclePhase,
    CycleTask,
    FeedbackRequest,
    PeerNomination,
    Person,
    ReviewCycle,
)

# How many peers a subject's list holds (module constants, as the issue asks: a company
# that wants other bounds changes them here).
MIN_PEERS = 3
MAX_PEERS = 8


class NoPeerFeedback(NotFound):
    """No started cycle of that name asking for peer feedback, or the subject is not one of
    its participants."""


class NominationsApproved(Conflict):
    """The list was approved and the requests sent: it no longer changes."""


class Nominee(BaseModel):
    id: int
    name: str
    added_by_manager: bool = Field(description="Added by the subject's manager.")


class Nominations(BaseModel):
    """A subject's list of nominated peers in a cycle and where it stands."""

    cycle: str = Field(examples=["2026-H2"])
    subject_id: int
    peers: list[Nominee]
    approved: bool
    min_peers: int = MIN_PEERS
    max_peers: int = MAX_PEERS


class NominationsIn(BaseModel):
    """The whole list (it replaces the one stored). `subject_id`: whose list; the caller's
    own when left out, a report's for their manager."""

    subject_id: int | None = Field(default=None, ge=1, le=2**31 - 1)
    peers: list[int] = Field(max_length=64, description="People ids of the peers.")


class ApprovedOut(BaseModel):
    cycle: str
    subject_id: int
    requests: int = Field(description="Feedback requests sent.")


# --- reading ------------------------------------------------------------------------------


def _cycle(connection: Connection, name: str) -> Row[*tuple[Any, ...]]:
    """The started cycle of this name asking for peer feedback, or NoPeerFeedback."""
    row = connection.execute(
        select(
            ReviewCycle.id, ReviewCycle.status, ReviewCycle.reviews, ReviewCycle.questions
        ).where(ReviewCycle.name == name)
    ).one_or_none()
    if (
        row is None
        or row.status != CycleStatus.STARTED
        or CycleReview.PEER_FEEDBACK not in row.reviews
    ):
        raise NoPeerFeedback(f"cycle {name} has no peer feedback under way", field="cycle")
    return row


def _approval_task(
    connection: Connection, cycle_id: int, cycle: str, subject_id: int, *, lock: bool
) -> Row[*tuple[Any, ...]]:
    """The subject's approve_nominations task (its assignee is the manager): the row the
    list's edits and its approval lock. NoPeerFeedback when the subject has none (not a
    participant, or no manager to approve)."""
    statement = select(CycleTask.id, CycleTask.assignee_id, CycleTask.status).where(
        CycleTask.cycle_id == cycle_id,
        CycleTask.kind == TaskKind.APPROVE_NOMINATIONS,
        CycleTask.subject_id == subject_id,
    )
    row = connection.execute(statement.with_for_update() if lock else statement).one_or_none()
    if row is None:
        raise NoPeerFeedback(
            f"person {subject_id} has no peer nominations in cycle {cycle}", field="subject_id"
        )
    return row


def nominations(connection: Connection, cycle: str, subject_id: int) -> Nominations:
    """The subject's list in the cycle (an empty one before they nominate)."""
    row = _cycle(connection, cycle)
    task = _approval_task(connection, row.id, cycle, subject_id, lock=False)
    return _read(connection, row.id, cycle, subject_id, task)


def _read(
    connection: Connection, cycle_id: int, cycle: str, subject_id: int, task: Row[*tuple[Any, ...]]
) -> Nominations:
    peers = connection.execute(
        select(Person.id, Person.name, PeerNomination.by_manager)
        .join(PeerNomination, PeerNomination.peer_id == Person.id)
        .where(PeerNomination.cycle_id == cycle_id, PeerNomination.subject_id == subject_id)
        .order_by(Person.name, Person.id)
    ).all()
    return Nominations(
        cycle=cycle,
        subject_id=subject_id,
        peers=[Nominee(id=p.id, name=p.name, added_by_manager=p.by_manager) for p in peers],
        approved=task.status == TaskStatus.DONE,
    )


# --- changing -----------------------------------------------------------------------------


def set_nominations(
    connection: Connection,
    cycle: str,
    subject_id: int,
    peer_ids: list[int],
    *,
    actor: str,
    by_manager: bool,
) -> Nominations:
    """Replace the subject's list: Invalid naming `peers` when it does not hold,
    NominationsApproved once approved. A list of fewer than MIN_PEERS is kept as a draft
    (approval refuses it); the subject's nominate_peers task is done while the list is
    complete."""
    row = _cycle(connection, cycle)
    task = _approval_task(connection, row.id, cycle, subject_id, lock=True)
    if task.status == TaskStatus.DONE:
        raise NominationsApproved(
            f"the nominations of person {subject_id} in cycle {cycle} are approved",
            field="peers",
        )
    _check_peers(connection, row.id, subject_id, int(task.assignee_id), peer_ids, partial=True)
    before = _read(connection, row.id, cycle, subject_id, task)
    kept = {p.id: p.added_by_manager for p in before.peers}
    connection.execute(
        delete(PeerNomination).where(
            PeerNomination.cycle_id == row.id, PeerNomination.subject_id == subject_id
        )
    )
    if peer_ids:
        connection.execute(
            insert(PeerNomination),
            [
                {
                    "cycle_id": row.id,
                    "subject_id": subject_id,
                    "peer_id": p,
                    "added_by": actor,
                    "by_manager": kept.get(p, by_manager),
                }
                for p in dict.fromkeys(peer_ids)
            ],
        )
    _nominated(connection, row.id, subject_id, complete=len(peer_ids) >= MIN_PEERS)
    after = _read(connection, row.id, cycle, subject_id, task)
    audit(
        connection,
        actor=actor,
        action="nominations.set",
        entity="nominations",
        entity_id=f"{cycle}/{subject_id}",
        before={"peers": [p.id for p in before.peers]},
        after={"peers": [p.id for p in after.peers], "by_manager": by_manager},
    )
    return after


def _check_peers(
    connection: Connection,
    cycle_id: int,
    subject_id: int,
    manager_id: int,
    peer_ids: list[int],
    *,
    partial: bool,
) -> None:
    """Invalid naming `peers` and the reason: a duplicate, the subject, their manager, a
    person who is not a participant of the cycle, or (complete lists) a count out of
    bounds. A draft may hold fewer than MIN_PEERS, never more than MAX_PEERS."""
    if len(set(peer_ids)) != len(peer_ids):
        raise Invalid("peers: a person is named twice", field="peers")
    if len(peer_ids) > MAX_PEERS or (not partial and len(peer_ids) < MIN_PEERS):
        raise Invalid(
            f"peers: name {MIN_PEERS} to {MAX_PEERS} peers ({len(peer_ids)} named)",
            field="peers",
        )
    if subject_id in peer_ids:
        raise Invalid("peers: you cannot nominate yourself", field="peers")
    if manager_id in peer_ids:
        raise Invalid("peers: the manager writes their own review and is not a peer", field="peers")
    found = set(
        connection.execute(
            select(CycleTask.subject_id).where(
                CycleTask.cycle_id == cycle_id,
                CycleTask.kind == TaskKind.ACKNOWLEDGE_REVIEW,
                CycleTask.subject_id.in_(peer_ids),
            )
        ).scalars()
    )
    missing = [p for p in peer_ids if p not in found]
    if missing:
        raise Invalid(
            f"peers: person {missing[0]} is not a participant of this cycle", field="peers"
        )


def _nominated(connection: Connection, cycle_id: int, subject_id: int, *, complete: bool) -> None:
    """The subject's nominate_peers task follows their list: done while it holds at least
    MIN_PEERS (whoever set it), open again when it falls short before approval."""
    connection.execute(
        update(CycleTask)
        .where(
            CycleTask.cycle_id == cycle_id,
            CycleTask.kind == TaskKind.NOMINATE_PEERS,
            CycleTask.assignee_id == subject_id,
            CycleTask.subject_id == subject_id,
            CycleTask.status == (TaskStatus.OPEN if complete else TaskStatus.DONE),
        )
        .values(
            status=TaskStatus.DONE if complete else TaskStatus.OPEN,
            done_at=func.now() if complete else None,
        )
    )


def _mark(
    connection: Connection, cycle_id: int, kind: TaskKind, assignee_id: int, subject_id: int
) -> None:
    connection.execute(
        update(CycleTask)
        .where(
            CycleTask.cycle_id == cycle_id,
            CycleTask.kind == kind,
            CycleTask.assignee_id == assignee_id,
            CycleTask.subject_id == subject_id,
            CycleTask.status == TaskStatus.OPEN,
        )
        .values(status=TaskStatus.DONE, done_at=func.now())
    )


def approve_nominations(
    connection: Connection, cycle: str, subject_id: int, *, actor: str
) -> ApprovedOut:
    """Approve the subject's list (Invalid when out of bounds, NominationsApproved when
    already approved): each peer gets a feedback request with the cycle's peer-feedback
    questions and a give_peer_feedback task due with the peer-feedback phase."""
    row = _cycle(connection, cycle)
    task = _approval_task(connection, row.id, cycle, subject_id, lock=True)
    if task.status == TaskStatus.DONE:
        raise NominationsApproved(
            f"the nominations of person {subject_id} in cycle {cycle} are approved",
            field="subject_id",
        )
    listed = _read(connection, row.id, cycle, subject_id, task)
    peer_ids = [p.id for p in listed.peers]
    _check_peers(connection, row.id, subject_id, int(task.assignee_id), peer_ids, partial=False)
    connection.execute(
        update(CycleTask)
        .where(CycleTask.id == task.id)
        .values(status=TaskStatus.DONE, done_at=func.now())
    )
    _mark(connection, row.id, TaskKind.NOMINATE_PEERS, subject_id, subject_id)
    sent = _send_requests(connection, row, subject_id, peer_ids)
    audit(
        connection,
        actor=actor,
        action="nominations.approved",
        entity="nominations",
        entity_id=f"{cycle}/{subject_id}",
        before={"approved": False},
        after={"approved": True, "peers": peer_ids, "requests": sent},
    )
    return ApprovedOut(cycle=cycle, subject_id=subject_id, requests=sent)


def _send_requests(
    connection: Connection, cycle: Row[*tuple[Any, ...]], subject_id: int, peer_ids: list[int]
) -> int:
    """One give_peer_feedback task and one feedback request per peer (ON CONFLICT DO
    NOTHING: a peer asked already is not asked twice). How many requests were sent."""
    phase = TASK_PHASE[TaskKind.GIVE_PEER_FEEDBACK]
    due = select(CyclePhase.due_on).where(
        CyclePhase.cycle_id == cycle.id, CyclePhase.phase == phase
    )
    questions = list((cycle.questions or {}).get(CycleReview.PEER_FEEDBACK, []))
    sent = 0
    for peer_id in peer_ids:
        task_id = connection.execute(
            pg_insert(CycleTask)
            .from_select(
                ["cycle_id", "kind", "assignee_id", "subject_id", "phase", "due_on"],
                select(
                    literal(cycle.id),
                    literal(str(TaskKind.GIVE_PEER_FEEDBACK)),
                    literal(peer_id),
                    literal(subject_id),
                    literal(str(phase)),
                    due.scalar_subquery(),
                ),
            )
            .on_conflict_do_nothing()
            .returning(CycleTask.id)
        ).scalar_one_or_none()
        made = connection.execute(
            pg_insert(FeedbackRequest)
            .values(
                cycle_id=cycle.id,
                subject_id=subject_id,
                peer_id=peer_id,
                task_id=task_id,
                questions=questions,
            )
            .on_conflict_do_nothing()
            .returning(FeedbackRequest.id)
        ).scalar_one_or_none()
        sent += made is not None
    return sent
