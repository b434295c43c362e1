"""Promotion nominations (issue 16): in a started cycle asking for promotion packets, a
manager nominates a report for promotion, with an optional reason, and may withdraw the
nomination while the packet is not approved.

A person is nominated once per cycle: a second manager's nomination (a skip-level's)
changes the reason and keeps the first nominator. The packet is written by the subject's
manager of record (as the manager's feedback is, whoever nominated): nominating gives them a
write_promotion_packet task for the subject, due with the manager-review phase (done at once
where the subject's packet of the cycle is already approved); withdrawing deletes the
nomination and the task while it is open. Approving the packet marks the task done
(service.cycles.approval_tasks), which fixes the nomination. Every change is audited with
the reason before and after. A change locks the nomination row and the packet task, so a
withdrawal and the approval completing the task cannot cross unseen (two first
nominations at once meet on the nomination's primary key: one inserts, one updates).
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    Connection,
    Row,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import Conflict, Invalid, NotFound, Refused
from domain.kinds import DraftKind
from domain.phases import TASK_PHASE, CycleReview, CycleStatus, TaskKind, TaskStatus
from service.access.principal import Principal
from service.audit import audit
from service.cycles.peer_feedback import check_text
from service.db.models import (
    MAX_PROMOTION_REASON,
    CyclePhase,
    CycleTask,
    Draft,
    Person,
    PromotionNomination,
    ReviewCycle,
)

KIND = TaskKind.WRITE_PROMOTION_PACKET


class NoPromotions(NotFound):
    """No started cycle of that name asking for promotion packets."""


class PacketApproved(Conflict):
    """The subject's promotion packet is approved: the nomination no longer changes."""


class PromotionIn(BaseModel):
    """Why the manager nominates the report (optional; shown to the packet's writer, the
    subject's managers and HR, never to the subject)."""

    reason: str | None = Field(default=None, max_length=MAX_PROMOTION_REASON)


class PromotionLine(BaseModel):
    """A nomination as its readers (the subject's managers, HR) see it."""

    cycle: str = Field(examples=["2026-H2"])
    subject_id: int
    subject_name: str
    nominated_by: str = Field(description="Who nominated them (the audit trail's name).")
    reason: str | None
    nominated_at: datetime
    packet_writer_id: int | None = Field(description="The manager who writes the packet.")
    packet_status: str = Field(description="none, draft, checked or approved.")


class WithdrawnOut(BaseModel):
    cycle: str
    subject_id: int
    withdrawn: bool = Field(description="False: there was no nomination to withdraw.")


# --- scope --------------------------------------------------------------------------------


def require_manager_of(connection: Connection, principal: Principal, person_id: int) -> None:
    """Nominations are for a manager of the person: 403 for someone else the caller may
    see (HR, oneself), 404 for anyone the caller may not know about or who does not exist."""
    if principal.manages(person_id):
        return
    exists_ = connection.execute(select(Person.id).where(Person.id == person_id)).first()
    if exists_ is not None and principal.can_read_person(person_id):
        raise Refused("only a manager of this person may nominate them", field="person_id")
    raise NotFound("person not found")  # no field: a scope check's (an error page)


def require_reader(principal: Principal) -> None:
    """The list is HR's (every nomination) and a manager's (their scope's)."""
    if not (principal.hr_admin or principal.reports):
        raise Refused("nominations are read by HR and managers", field="cycle")


# --- reading ------------------------------------------------------------------------------


def _cycle(connection: Connection, name: str) -> Row[*tuple[Any, ...]]:
    """The started cycle of this name asking for promotion packets, or NoPromotions."""
    statement = select(ReviewCycle.id, ReviewCycle.status, ReviewCycle.reviews).where(
        ReviewCycle.name == name
    )
    row = connection.execute(statement).one_or_none()
    if (
        row is None
        or row.status != CycleStatus.STARTED
        or CycleReview.PROMOTION_PACKET not in row.reviews
    ):
        raise NoPromotions(f"cycle {name} takes no promotion nominations", field="cycle")
    return row


def takes_nominations(connection: Connection, name: str) -> bool:
    """The cycle of this name is started and asks for promotion packets (the team page
    shows its forms only then)."""
    try:
        _cycle(connection, name)
    except NoPromotions:
        return False
    return True


def _packet_status(cycle_id: int, cycle: str) -> Any:
    """The subject's promotion packet draft of the cycle's status ('none' without one)."""
    return func.coalesce(
        select(Draft.status)
        .where(
            Draft.subject_id == PromotionNomination.subject_id,
            Draft.kind == DraftKind.PROMOTION_PACKET,
            or_(Draft.cycle_id == cycle_id, and_(Draft.cycle_id.is_(None), Draft.period == cycle)),
        )
        .limit(1)
        .scalar_subquery(),
        literal("none"),
    )


def promotions(
    connection: Connection, cycle: str, *, subjects: frozenset[int] | None = None
) -> list[PromotionLine]:
    """The cycle's nominations by subject name (only these subjects', where given: a
    manager's scope), in one query."""
    row = _cycle(connection, cycle)
    writer = (
        select(CycleTask.assignee_id)
        .where(
            CycleTask.cycle_id == row.id,
            CycleTask.kind == KIND,
            CycleTask.subject_id == PromotionNomination.subject_id,
        )
        .limit(1)
        .scalar_subquery()
    )
    statement = (
        select(
            PromotionNomination.subject_id,
            Person.name.label("subject_name"),
            PromotionNomination.nominated_by,
            PromotionNomination.reason,
            PromotionNomination.created_at.label("nominated_at"),
            writer.label("packet_writer_id"),
            _packet_status(row.id, cycle).label("packet_status"),
        )
        .join(Person, Person.id == PromotionNomination.subject_id)
        .where(PromotionNomination.cycle_id == row.id)
        .order_by(Person.name, Person.id)
    )
    if subjects is not None:
        statement = statement.where(PromotionNomination.subject_id.in_(list(subjects)))
    return [PromotionLine(cycle=cycle, **r._mapping) for r in connection.execute(statement)]


def promotion_choices(
    connection: Connection, cycle: str, subjects: frozenset[int]
) -> dict[int, bool]:
    """For each of these people who is a participant of the cycle, whether they are
    nominated; empty where the cycle takes no nominations (the team page's forms)."""
    if not subjects or not takes_nominations(connection, cycle):
        return {}
    nominated = (
        select(PromotionNomination.subject_id)
        .where(
            PromotionNomination.cycle_id == CycleTask.cycle_id,
            PromotionNomination.subject_id == CycleTask.subject_id,
        )
        .exists()
    )
    rows = connection.execute(
        select(CycleTask.subject_id, nominated.label("nominated"))
        .join(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .where(
            ReviewCycle.name == cycle,
            CycleTask.kind == TaskKind.ACKNOWLEDGE_REVIEW,
            CycleTask.subject_id.in_(list(subjects)),
        )
    )
    return {int(r.subject_id): bool(r.nominated) for r in rows}


# --- changing -----------------------------------------------------------------------------


def _participant(connection: Connection, cycle_id: int, cycle: str, subject_id: int) -> int:
    """The subject's manager of record (who writes the packet), or Invalid when the
    subject is not a participant of the cycle or has no manager."""
    row = connection.execute(
        select(Person.manager_id)
        .join(CycleTask, CycleTask.subject_id == Person.id)
        .where(
            Person.id == subject_id,
            CycleTask.cycle_id == cycle_id,
            CycleTask.kind == TaskKind.ACKNOWLEDGE_REVIEW,
        )
    ).one_or_none()
    if row is None:
        raise Invalid(
            f"person {subject_id} is not a participant of cycle {cycle}", field="person_id"
        )
    if row.manager_id is None:
        raise Invalid(f"person {subject_id} has no manager to write the packet", field="person_id")
    return int(row.manager_id)


def _reason(value: str | None) -> str | None:
    """The reason as stored: trimmed, None when blank; Invalid naming `reason` when too
    long or holding a control character other than a line break or tab."""
    if value is None:
        return None
    checked = check_text(value.replace("\r\n", "\n"), field="reason", limit=MAX_PROMOTION_REASON)
    return checked.strip() or None


def _approved(connection: Connection, cycle_id: int, subject_id: int) -> bool:
    """The subject's packet task of the cycle is done (its packet approved). The task row
    is locked, so an approval marking it done waits for this change, or this sees it."""
    statuses = connection.execute(
        select(CycleTask.status)
        .where(
            CycleTask.cycle_id == cycle_id,
            CycleTask.kind == KIND,
            CycleTask.subject_id == subject_id,
        )
        .with_for_update()
    ).scalars()
    return TaskStatus.DONE in set(statuses)


def nominate(
    connection: Connection, cycle: str, subject_id: int, reason: str | None, *, actor: str
) -> PromotionLine:
    """Nominate the subject (the caller's scope is checked by the surface): Invalid for a
    non-participant or a bad reason, PacketApproved once the packet is approved. A second
    nomination changes the reason only. The packet writer's task is created once."""
    row = _cycle(connection, cycle)
    reason = _reason(reason)
    writer = _participant(connection, row.id, cycle, subject_id)
    before = connection.execute(
        select(PromotionNomination.reason)
        .where(PromotionNomination.cycle_id == row.id, PromotionNomination.subject_id == subject_id)
        .with_for_update()
    ).one_or_none()
    if before is not None and _approved(connection, row.id, subject_id):
        raise PacketApproved(
            f"the promotion packet of person {subject_id} in cycle {cycle} is approved",
            field="person_id",
        )
    statement = pg_insert(PromotionNomination).values(
        cycle_id=row.id, subject_id=subject_id, nominated_by=actor, reason=reason
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[PromotionNomination.cycle_id, PromotionNomination.subject_id],
            set_={"reason": statement.excluded.reason, "updated_at": func.now()},
        )
    )
    created = _create_task(connection, row.id, cycle, writer, subject_id)
    if before is None or before.reason != reason:
        audit(
            connection,
            actor=actor,
            action="promotion.nominated" if before is None else "promotion.reason_changed",
            entity="promotion",
            entity_id=f"{cycle}/{subject_id}",
            before=None if before is None else {"reason": before.reason},
            after={"reason": reason, "task_created": created},
        )
    return _line(connection, cycle, subject_id)


def _create_task(
    connection: Connection, cycle_id: int, cycle: str, writer_id: int, subject_id: int
) -> bool:
    """The writer's write_promotion_packet task for the subject, due with the manager
    review (done at once where the subject's packet of the cycle is already approved);
    False where it existed."""
    phase = TASK_PHASE[KIND]
    approved = (
        select(Draft.id)
        .where(
            Draft.subject_id == subject_id,
            Draft.kind == DraftKind.PROMOTION_PACKET,
            Draft.status == "approved",
            or_(Draft.cycle_id == cycle_id, and_(Draft.cycle_id.is_(None), Draft.period == cycle)),
        )
        .exists()
    )
    made = connection.execute(
        pg_insert(CycleTask)
        .from_select(
            [
                "cycle_id",
                "kind",
                "assignee_id",
                "subject_id",
                "phase",
                "due_on",
                "status",
                "done_at",
            ],
            select(
                literal(cycle_id),
                literal(str(KIND)),
                literal(writer_id),
                literal(subject_id),
                literal(str(phase)),
                CyclePhase.due_on,
                case(
                    (approved, literal(str(TaskStatus.DONE))), else_=literal(str(TaskStatus.OPEN))
                ),
                case((approved, func.now()), else_=None),
            ).where(CyclePhase.cycle_id == cycle_id, CyclePhase.phase == str(phase)),
        )
        .on_conflict_do_nothing()
        .returning(CycleTask.id)
    ).scalar_one_or_none()
    return made is not None


def _line(connection: Connection, cycle: str, subject_id: int) -> PromotionLine:
    found = promotions(connection, cycle, subjects=frozenset({subject_id}))
    if not found:
        raise NotFound(f"person {subject_id} is not nominated in cycle {cycle}", field="person_id")
    return found[0]


def withdraw(connection: Connection, cycle: str, subject_id: int, *, actor: str) -> WithdrawnOut:
    """Withdraw the subject's nomination and delete the open packet task; PacketApproved
    once the packet is approved. Withdrawing what is not there changes nothing (withdrawn
    False), so a repeated request is harmless."""
    row = _cycle(connection, cycle)
    before = connection.execute(
        select(PromotionNomination.reason, PromotionNomination.nominated_by)
        .where(PromotionNomination.cycle_id == row.id, PromotionNomination.subject_id == subject_id)
        .with_for_update()
    ).one_or_none()
    if before is None:
        return WithdrawnOut(cycle=cycle, subject_id=subject_id, withdrawn=False)
    if _approved(connection, row.id, subject_id):
        raise PacketApproved(
            f"the promotion packet of person {subject_id} in cycle {cycle} is approved: "
            "the nomination stands",
            field="person_id",
        )
    connection.execute(
        delete(PromotionNomination).where(
            PromotionNomination.cycle_id == row.id, PromotionNomination.subject_id == subject_id
        )
    )
    removed = connection.execute(
        delete(CycleTask).where(
            CycleTask.cycle_id == row.id,
            CycleTask.kind == KIND,
            CycleTask.subject_id == subject_id,
            CycleTask.status == TaskStatus.OPEN,
        )
    ).rowcount
    audit(
        connection,
        actor=actor,
        action="promotion.withdrawn",
        entity="promotion",
        entity_id=f"{cycle}/{subject_id}",
        before={"reason": before.reason, "nominated_by": before.nominated_by},
        after={"tasks_removed": int(removed)},
    )
    return WithdrawnOut(cycle=cycle, subject_id=subject_id, withdrawn=True)


def packet_drafts(
    connection: Connection, wanted: Collection[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The promotion packet draft of each (cycle, subject) that has one, by pair (the
    my-tasks page links a write_promotion_packet task to it)."""
    if not wanted:
        return {}
    rows = connection.execute(
        select(Draft.period, Draft.subject_id, Draft.id).where(
            Draft.kind == DraftKind.PROMOTION_PACKET,
            tuple_(Draft.period, Draft.subject_id).in_(list(wanted)),
        )
    )
    return {(r.period, int(r.subject_id)): int(r.id) for r in rows}
