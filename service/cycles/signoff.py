"""Sign-off (issue 16): an employee reads their released review of a cycle (their manager's
approved feedback with its citations, their final rating with the scale's label, the
evidence the feedback cites) and acknowledges it, with a comment their manager and HR read.

The acknowledgement is recorded once (its time never moves) and completes the
acknowledge_review task; the comment may be added or changed afterwards, because a person
often has more to say after a conversation with their manager: every change is an audit
event with the comment before and after, so nothing said is lost. Before the release
reaches their department the review does not exist for the employee (404), whatever its
state; their manager and HR read it, and the comment, at any time.
"""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Row, and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import NotFound
from domain.kinds import DraftKind
from domain.phases import TaskKind, TaskStatus
from service.access.principal import Principal
from service.access.scope import may_read_review
from service.audit import audit
from service.cycles.export import final_ratings, scale_label
from service.cycles.peer_feedback import check_text
from service.cycles.release import withheld_clause
from service.db.models import (
    CycleTask,
    Draft,
    DraftVersion,
    Person,
    ReviewAcknowledgement,
    ReviewCycle,
)
from service.drafting.store import draft_evidence
from service.drafting.structure import DraftBody

COMMENT_LIMIT = 2000


class ReviewSentence(BaseModel):
    text: str
    evidence: list[str] = Field(description='The evidence ids it rests on, e.g. ["E3"].')


class ReviewSection(BaseModel):
    heading: str
    sentences: list[ReviewSentence]


class ReviewEvidence(BaseModel):
    """An evidence item the feedback cites, as it was when the draft was written."""

    id: str = Field(examples=["E3"])
    kind: str
    title: str | None
    occurred_at: datetime
    text: str


class Acknowledgement(BaseModel):
    acknowledged_at: datetime
    comment: str | None
    comment_at: datetime | None = Field(description="When the comment last changed.")


class ReleasedReview(BaseModel):
    """A person's review of a cycle as released to them."""

    period: str = Field(examples=["2026-H1"])
    person_id: int
    name: str
    released: bool = Field(description="Released to the person's department (or everyone).")
    feedback_draft_id: int | None = Field(description="The approved manager feedback.")
    feedback: list[ReviewSection]
    rating: int | None = Field(description="The final (calibrated) rating; null before.")
    rating_label: str | None = Field(description="The rating's label on the cycle's scale.")
    evidence: list[ReviewEvidence]
    acknowledgement: Acknowledgement | None


class AcknowledgeIn(BaseModel):
    comment: str | None = Field(
        default=None,
        max_length=COMMENT_LIMIT,
        description="Optional; sent again later, it replaces the comment ('' removes it).",
    )


def _cycle(connection: Connection, name: str, person_id: int) -> Row[*tuple[Any, ...]]:
    """The set-up cycle with whether the person's review is withheld from them, or 404."""
    row = connection.execute(
        select(
            ReviewCycle.id,
            ReviewCycle.scale_min,
            ReviewCycle.scale_labels,
            withheld_clause(ReviewCycle.id, literal(person_id)).label("withheld"),
        ).where(ReviewCycle.name == name, ReviewCycle.status.is_not(None))
    ).one_or_none()
    if row is None:
        raise NotFound(f"cycle {name} has no set-up", field="cycle")
    return row


def _readable(
    connection: Connection, principal: Principal, name: str, person_id: int, *, mine: bool
) -> tuple[Row[*tuple[Any, ...]], Row[*tuple[Any, ...]]]:
    """(cycle, person) for a caller who may read the person's review, or 404: through the
    people route the same answer whether the person or their review is out of reach (ids
    cannot be probed); through "my review" (`mine`) it says the review is not out yet."""
    cycle = _cycle(connection, name, person_id)
    if not may_read_review(principal, person_id, withheld=cycle.withheld):
        if mine:
            raise NotFound(f"your review of {name} is not released yet", field="cycle")
        raise NotFound("review not found", field="person_id")
    person = connection.execute(
        select(Person.id, Person.name).where(Person.id == person_id)
    ).one_or_none()
    if person is None:
        raise NotFound("review not found", field="person_id")
    return cycle, person


def review_of(
    connection: Connection,
    principal: Principal,
    cycle: str,
    person_id: int,
    *,
    via_me: bool = False,
) -> ReleasedReview:
    """The person's review of the cycle, for them once released, for their manager and HR
    at any time: only approved feedback and a finalised rating are part of it."""
    mine = person_id == principal.person_id and via_me
    row, person = _readable(connection, principal, cycle, person_id, mine=mine)
    draft = _approved_feedback(connection, row.id, cycle, person_id)
    body = DraftBody(sections=[]) if draft is None else DraftBody.model_validate(draft.body)
    cited = {e for s in body.sentences() for e in s.evidence}
    evidence = [] if draft is None else draft_evidence(connection, draft.id)
    rating, _ = final_ratings(connection, row.id, cycle, [person_id]).get(person_id, (None, None))
    return ReleasedReview(
        period=cycle,
        person_id=person_id,
        name=person.name,
        released=not row.withheld,
        feedback_draft_id=None if draft is None else draft.id,
        feedback=[ReviewSection.model_validate(s.model_dump()) for s in body.sections],
        rating=rating,
        rating_label=scale_label(row.scale_labels, row.scale_min, rating),
        evidence=[ReviewEvidence.model_validate(e) for e in evidence if e.get("id") in cited],
        acknowledgement=_acknowledgement(connection, row.id, person_id),
    )


def _approved_feedback(
    connection: Connection, cycle_id: int, cycle: str, person_id: int
) -> Row[*tuple[Any, ...]] | None:
    """The person's approved manager feedback of the cycle (by the draft's cycle, or its
    period for a draft written before the set-up), with its current text."""
    return connection.execute(
        select(Draft.id, DraftVersion.body)
        .join(
            DraftVersion,
            (DraftVersion.draft_id == Draft.id) & (DraftVersion.version == Draft.current_version),
        )
        .where(
            Draft.subject_id == person_id,
            Draft.kind == DraftKind.MANAGER_FEEDBACK,
            Draft.status == "approved",
            or_(Draft.cycle_id == cycle_id, and_(Draft.cycle_id.is_(None), Draft.period == cycle)),
        )
        .order_by(Draft.cycle_id.is_(None), Draft.id.desc())  # the cycle's own first
        .limit(1)
    ).one_or_none()


def _acknowledgement(
    connection: Connection, cycle_id: int, person_id: int
) -> Acknowledgement | None:
    row = connection.execute(
        select(
            ReviewAcknowledgement.acknowledged_at,
            ReviewAcknowledgement.comment,
            ReviewAcknowledgement.comment_at,
        ).where(
            ReviewAcknowledgement.cycle_id == cycle_id,
            ReviewAcknowledgement.person_id == person_id,
        )
    ).one_or_none()
    return None if row is None else Acknowledgement(**row._mapping)


def acknowledgement_of(
    connection: Connection, cycle: str, person_id: int
) -> Acknowledgement | None:
    """The person's acknowledgement of their review of the cycle, if any (no scope check:
    for a page that already checked the caller manages the person, or is HR)."""
    found = connection.execute(
        select(ReviewCycle.id).where(ReviewCycle.name == cycle)
    ).scalar_one_or_none()
    return None if found is None else _acknowledgement(connection, found, person_id)


def acknowledge(
    connection: Connection, principal: Principal, cycle: str, comment: str | None
) -> Acknowledgement:
    """The caller acknowledges their released review (once), with an optional comment; a
    later call changes the comment only. Each is audited; the first completes the
    acknowledge_review task."""
    given = comment is not None  # None: keep the comment; "": remove it
    if comment is not None:
        comment = check_text(comment, field="comment", limit=COMMENT_LIMIT).strip() or None
    row, _ = _readable(connection, principal, cycle, principal.person_id, mine=True)
    task = connection.execute(
        select(CycleTask.id).where(
            CycleTask.cycle_id == row.id,
            CycleTask.kind == TaskKind.ACKNOWLEDGE_REVIEW,
            CycleTask.subject_id == principal.person_id,
        )
    ).scalar_one_or_none()
    if task is None:
        raise NotFound(f"you have no review to acknowledge in cycle {cycle}", field="cycle")
    key = {"cycle_id": row.id, "person_id": principal.person_id}
    inserted = connection.execute(
        pg_insert(ReviewAcknowledgement)
        .values(**key, comment=comment, comment_at=None if comment is None else func.now())
        .on_conflict_do_nothing()
        .returning(ReviewAcknowledgement.person_id)
    ).scalar_one_or_none()
    entity_id = f"{cycle}/{principal.person_id}"
    if inserted is not None:
        connection.execute(
            update(CycleTask)
            .where(CycleTask.id == task, CycleTask.status == TaskStatus.OPEN)
            .values(status=TaskStatus.DONE, done_at=func.now())
        )
        audit(
            connection,
            actor=principal.actor,
            action="review.acknowledged",
            entity="review",
            entity_id=entity_id,
            after={"comment": comment},
        )
    elif given:
        _change_comment(connection, principal, key, entity_id, comment)
    found = _acknowledgement(connection, row.id, principal.person_id)
    assert found is not None  # written above, in this transaction
    return found


def _change_comment(
    connection: Connection,
    principal: Principal,
    key: dict[str, int],
    entity_id: str,
    comment: str | None,
) -> None:
    """A later acknowledgement changes the comment (audited); the same comment again is
    a no-op, so a double submit leaves one event."""
    before = connection.execute(
        select(ReviewAcknowledgement.comment)
        .where(
            ReviewAcknowledgement.cycle_id == key["cycle_id"],
            ReviewAcknowledgement.person_id == key["person_id"],
        )
        .with_for_update()
    ).scalar_one()
    if before == comment:
        return
    connection.execute(
        update(ReviewAcknowledgement)
        .where(
            ReviewAcknowledgement.cycle_id == key["cycle_id"],
            ReviewAcknowledgement.person_id == key["person_id"],
        )
        .values(comment=comment, comment_at=func.now())
    )
    audit(
        connection,
        actor=principal.actor,
        action="review.comment_changed",
        entity="review",
        entity_id=entity_id,
        before={"comment": before},
        after={"comment": comment},
    )
