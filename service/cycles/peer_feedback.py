"""Peer feedback requests answered, declined, and read back.

A peer sees only their own requests (anyone else's is NotFound, so ids reveal nothing).
Answers are saved as a draft while they type (PUT) and submitted once (then read-only); a
peer may decline with a reason instead. Submitted answers become feedback records of the
subject (source PEER_SOURCE, embedded, evidence for drafts) with NO author on the record,
and only once at least MIN_ANSWERS_SHOWN peers have answered: until then nothing of them
is anywhere the subject can read (records, evidence, drafts), so no author can be inferred
from the first answer to appear. All of the subject's answers are released together, with
one occurrence time (the peer-feedback phase's due day), so their order says nothing.

Who sees what (`peer_feedback_of`): the subject and their manager see the answers without
authors ("a peer") and only from MIN_ANSWERS_SHOWN answers on, with the counts; HR sees the
authors too (they run the cycle and handle complaints about feedback).
"""

import hashlib
import json
import secrets
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import (
    Connection,
    Row,
    case,
    func,
    select,
    update,
)

from domain.errors import Conflict, Invalid, NotFound
from domain.phases import FeedbackKind, Phase, RequestStatus, TaskKind, TaskStatus
from retrieval.embedding import Embedder, embed_in_batches
from retrieval.store import NewChunk, copy_chunks
from service.audit import audit
from service.db.models import CyclePhase, CycleTask, FeedbackRequest, Person, ReviewCycle
from service.ingest.records import (
    ChunkSettings,
    RecordRow,
    instruction_signals,
    plan_chunks,
    upsert_records,
)

PEER_SOURCE = "fairdraft-peer"
MIN_ANSWERS_SHOWN = 3  # answers the subject needs before any is shown or becomes evidence
ANSWER_MAX_CHARS = 10_000
REASON_MAX_CHARS = 500
EMBED_BATCH = 32
TASK_OF = {
    FeedbackKind.PEER: TaskKind.GIVE_PEER_FEEDBACK,
    FeedbackKind.UPWARD: TaskKind.GIVE_UPWARD_FEEDBACK,
}
# How an answer's author is shown to anyone but HR, and what the record is titled.
AUTHOR_SHOWN = {FeedbackKind.PEER: "a peer", FeedbackKind.UPWARD: "a report"}
TITLE = {FeedbackKind.PEER: "Peer feedback", FeedbackKind.UPWARD: "Upward feedback"}
# Line breaks and tabs are how people write; every other control character is refused.
_ALLOWED_CONTROLS = frozenset("\n\r\t")


class RequestNotFound(NotFound):
    """No feedback request of that id asked of the caller."""


class RequestClosed(Conflict):
    """The request was submitted or declined: it is read-only."""


class RequestLine(BaseModel):
    """A feedback request as the peer asked sees it."""

    id: int
    cycle: str = Field(examples=["2026-H2"])
    kind: FeedbackKind = Field(description="peer, or upward: about the peer's manager.")
    subject_id: int
    subject_name: str
    status: RequestStatus
    due_on: date | None = Field(description="The peer-feedback phase's due day.")


class RequestOut(RequestLine):
    questions: list[str]
    answers: list[str] = Field(description="The saved draft, or the submitted answers.")
    decline_reason: str | None
    saved_at: datetime | None
    closed_at: datetime | None


class AnswersIn(BaseModel):
    """The answers, one per question in order (the draft so far, or the final ones)."""

    answers: list[str] = Field(max_length=50)


class DeclineIn(BaseModel):
    reason: str = Field(description="Why, 1 to 500 characters; the subject never sees it.")


class Viewer(StrEnum):
    """Who reads a subject's peer feedback: what they may see differs."""

    SUBJECT = "subject"
    MANAGER = "manager"
    HR = "hr"


class PeerAnswer(BaseModel):
    author: str = Field(description='"a peer" or "a report", or (HR only) their name.')
    author_id: int | None = Field(description="HR only.")
    questions: list[str]
    answers: list[str]


class PeerFeedbackOut(BaseModel):
    """A subject's peer feedback in a cycle: counts, and the answers once there are enough."""

    cycle: str
    kind: FeedbackKind
    subject_id: int
    asked: int
    answered: int
    declined: int
    shown_from: int = Field(MIN_ANSWERS_SHOWN, description="Answers needed before any shows.")
    answers: list[PeerAnswer]


# --- the peer's side ----------------------------------------------------------------------


_SUBJECT_COLUMNS = (
    FeedbackRequest.id,
    ReviewCycle.name.label("cycle"),
    FeedbackRequest.kind,
    FeedbackRequest.subject_id,
    Person.name.label("subject_name"),
    FeedbackRequest.status,
    CyclePhase.due_on,
)


def _base() -> Any:
    return (
        select(
            *_SUBJECT_COLUMNS,
            FeedbackRequest.questions,
            FeedbackRequest.answers,
            FeedbackRequest.decline_reason,
            FeedbackRequest.saved_at,
            FeedbackRequest.closed_at,
            FeedbackRequest.cycle_id,
            FeedbackRequest.peer_id,
        )
        .join(ReviewCycle, ReviewCycle.id == FeedbackRequest.cycle_id)
        .join(Person, Person.id == FeedbackRequest.subject_id)
        .outerjoin(
            CyclePhase,
            (CyclePhase.cycle_id == FeedbackRequest.cycle_id)
            & (CyclePhase.phase == Phase.PEER_FEEDBACK),
        )
    )


def requests_of(
    connection: Connection, peer_id: int, *, status: RequestStatus | None = None
) -> list[RequestLine]:
    """The feedback requests asked of this peer, soonest due first."""
    statement = _base().where(FeedbackRequest.peer_id == peer_id)
    if status is not None:
        statement = statement.where(FeedbackRequest.status == status)
    rows = connection.execute(statement.order_by(CyclePhase.due_on, FeedbackRequest.id)).all()
    return [RequestLine.model_validate(r, from_attributes=True) for r in rows]


def _own(
    connection: Connection, request_id: int, peer_id: int, *, lock: bool
) -> Row[*tuple[Any, ...]]:
    statement = _base().where(FeedbackRequest.id == request_id)
    if lock:
        statement = statement.with_for_update(of=FeedbackRequest)
    row = connection.execute(statement).one_or_none()
    if row is None or row.peer_id != peer_id:
        # One reason for a missing request and someone else's, so ids cannot be probed.
        raise RequestNotFound("feedback request not found", field="request_id")
    return row


def request_of(connection: Connection, request_id: int, peer_id: int) -> RequestOut:
    """One request asked of this peer, or RequestNotFound (also for anyone else's)."""
    return RequestOut.model_validate(
        _own(connection, request_id, peer_id, lock=False), from_attributes=True
    )


def _open(connection: Connection, request_id: int, peer_id: int) -> Row[*tuple[Any, ...]]:
    row = _own(connection, request_id, peer_id, lock=True)
    if row.status != RequestStatus.OPEN:
        raise RequestClosed(f"feedback request {request_id} is {row.status}", field="request_id")
    return row


def check_text(value: str, *, field: str, limit: int) -> str:
    """The text as stored, or Invalid naming the field: too long, a control character
    other than a line break or tab, or a lone surrogate (not storable). Markup is kept as
    written: it is escaped wherever it is shown."""
    if len(value) > limit:
        raise Invalid(f"{field}: at most {limit:,} characters ({len(value):,} given)", field=field)
    for character in value:
        if unicodedata.category(character) == "Cc" and character not in _ALLOWED_CONTROLS:
            raise Invalid(
                f"{field}: control character U+{ord(character):04X} is not allowed", field=field
            )
        if unicodedata.category(character) == "Cs":
            raise Invalid(f"{field}: a lone surrogate is not text", field=field)
    return value


def _checked(answers: list[str], questions: list[str]) -> list[str]:
    if len(answers) > len(questions):
        raise Invalid(
            f"answers: {len(answers)} given for {len(questions)} questions", field="answers"
        )
    return [
        check_text(a, field=f"answers[{i}]", limit=ANSWER_MAX_CHARS) for i, a in enumerate(answers)
    ]


def save_draft(
    connection: Connection, request_id: int, peer_id: int, body: AnswersIn
) -> RequestOut:
    """Save the answers typed so far (not audited: a draft; nothing of it is shown)."""
    row = _open(connection, request_id, peer_id)
    answers = _checked(body.answers, row.questions)
    connection.execute(
        update(FeedbackRequest)
        .where(FeedbackRequest.id == request_id)
        .values(answers=answers, saved_at=func.now())
    )
    return request_of(connection, request_id, peer_id)


def submit(
    connection: Connection,
    request_id: int,
    peer_id: int,
    body: AnswersIn,
    *,
    actor: str,
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
) -> RequestOut:
    """Submit the answers once: every question answered (Invalid naming the first blank
    one); the request becomes read-only and the peer's task done. When the subject now has
    MIN_ANSWERS_SHOWN answers, all of theirs not yet evidence become feedback records."""
    _lock_subject(connection, _own(connection, request_id, peer_id, lock=False))
    row = _open(connection, request_id, peer_id)
    answers = _checked(body.answers, row.questions)
    for i in range(len(row.questions)):
        if i >= len(answers) or not answers[i].strip():
            raise Invalid(f"answers[{i}]: answer every question to submit", field=f"answers[{i}]")
    _close(connection, row, RequestStatus.SUBMITTED, answers=answers)
    audit(
        connection,
        actor=actor,
        action="peer_feedback.submitted",
        entity="feedback_request",
        entity_id=str(request_id),
        before={"status": RequestStatus.OPEN.value},
        after={"status": RequestStatus.SUBMITTED.value, "characters": sum(map(len, answers))},
    )
    release_evidence(
        connection, row.cycle_id, row.subject_id, FeedbackKind(row.kind), embedder, chunking
    )
    return request_of(connection, request_id, peer_id)


def _lock_subject(connection: Connection, row: Row[*tuple[Any, ...]]) -> None:
    """Lock every request of the subject of this kind in the cycle, in id order: two peers
    submitting at once are counted one after the other, so the answer that makes three
    releases all of them (each alone would have counted two and released none)."""
    connection.execute(
        select(FeedbackRequest.id)
        .where(
            FeedbackRequest.cycle_id == row.cycle_id,
            FeedbackRequest.kind == row.kind,
            FeedbackRequest.subject_id == row.subject_id,
        )
        .order_by(FeedbackRequest.id)
        .with_for_update()
    ).all()


def decline(
    connection: Connection, request_id: int, peer_id: int, body: DeclineIn, *, actor: str
) -> RequestOut:
    """Decline with a reason (1 to REASON_MAX_CHARS characters); the task is declined."""
    reason = check_text(body.reason.strip(), field="reason", limit=REASON_MAX_CHARS)
    if not reason:
        raise Invalid("reason: say briefly why you decline", field="reason")
    row = _open(connection, request_id, peer_id)
    _close(connection, row, RequestStatus.DECLINED, reason=reason)
    audit(
        connection,
        actor=actor,
        action="peer_feedback.declined",
        entity="feedback_request",
        entity_id=str(request_id),
        before={"status": RequestStatus.OPEN.value},
        after={"status": RequestStatus.DECLINED.value, "reason": reason},
    )
    return request_of(connection, request_id, peer_id)


def _close(
    connection: Connection,
    row: Row[*tuple[Any, ...]],
    status: RequestStatus,
    *,
    answers: list[str] | None = None,
    reason: str | None = None,
) -> None:
    values: dict[str, Any] = {"status": status, "closed_at": func.now()}
    if answers is not None:
        values.update(answers=answers, saved_at=func.now())
    if reason is not None:
        values["decline_reason"] = reason
    connection.execute(update(FeedbackRequest).where(FeedbackRequest.id == row.id).values(values))
    task_status = TaskStatus.DONE if status == RequestStatus.SUBMITTED else TaskStatus.DECLINED
    task_kind = TASK_OF[FeedbackKind(row.kind)]
    connection.execute(
        update(CycleTask)
        .where(
            CycleTask.cycle_id == row.cycle_id,
            CycleTask.kind == task_kind,
            CycleTask.assignee_id == row.peer_id,
            CycleTask.subject_id == row.subject_id,
        )
        .values(status=task_status, done_at=func.now())
    )


# --- answers as evidence ------------------------------------------------------------------


def release_evidence(
    connection: Connection,
    cycle_id: int,
    subject_id: int,
    kind: FeedbackKind,
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
) -> int:
    """Once the subject has MIN_ANSWERS_SHOWN submitted answers, each submitted answer not
    yet evidence becomes a feedback record (no author; one occurrence time for all),
    chunked and embedded like an ingested one. How many records were written."""
    rows = connection.execute(
        select(
            FeedbackRequest.id,
            FeedbackRequest.questions,
            FeedbackRequest.answers,
            FeedbackRequest.record_id,
            ReviewCycle.name,
            CyclePhase.due_on,
        )
        .join(ReviewCycle, ReviewCycle.id == FeedbackRequest.cycle_id)
        .outerjoin(
            CyclePhase,
            (CyclePhase.cycle_id == FeedbackRequest.cycle_id)
            & (CyclePhase.phase == Phase.PEER_FEEDBACK),
        )
        .where(
            FeedbackRequest.cycle_id == cycle_id,
            FeedbackRequest.kind == kind,
            FeedbackRequest.subject_id == subject_id,
            FeedbackRequest.status == RequestStatus.SUBMITTED,
        )
        .order_by(FeedbackRequest.id)
    ).all()
    todo = [r for r in rows if r.record_id is None]
    if len(rows) < MIN_ANSWERS_SHOWN or not todo:
        return 0
    records = [_record(r, subject_id, kind) for r in todo]
    marks = {(r.source, r.external_id): instruction_signals(r) for r in records}
    ids = upsert_records(connection, records, marks)
    planned = plan_chunks(records, chunking)
    model = embedder()
    vectors = embed_in_batches(
        model, [c.text for chunks in planned for c in chunks], batch_size=EMBED_BATCH
    )
    chunks = [
        NewChunk(
            record_id=record_id,
            subject_id=subject_id,
            kind=record.kind,
            source=record.source,
            occurred_at=record.occurred_at,
            position=chunk.position,
            text=chunk.text,
            token_count=chunk.token_count,
        )
        for record_id, record, record_chunks in zip(ids, records, planned, strict=True)
        for chunk in record_chunks
    ]
    copy_chunks(connection, chunks, vectors, model.name)
    connection.execute(
        update(FeedbackRequest)
        .where(FeedbackRequest.id.in_([r.id for r in todo]))
        .values(
            record_id=case(
                *((FeedbackRequest.id == r.id, i) for r, i in zip(todo, ids, strict=True))
            )
        )
    )
    return len(records)


def _record(row: Row[*tuple[Any, ...]], subject_id: int, kind: FeedbackKind) -> RecordRow:
    """The answer as a feedback record: the questions and answers as its body, no author,
    an external id that does not follow the request's id (random), occurring at noon UTC
    of the peer-feedback phase's due day."""
    body = "\n\n".join(
        f"{q}\n{a}" for q, a in zip(row.questions, row.answers, strict=False) if a.strip()
    )
    day = row.due_on or datetime.now(UTC).date()
    occurred = datetime.combine(day, time(12), tzinfo=UTC)
    title = f"{TITLE[kind]}, cycle {row.name}"
    metadata = {"cycle": row.name, "feedback": kind.value}
    digest = json.dumps([title, body, metadata, occurred.isoformat()], ensure_ascii=False)
    return RecordRow(
        line=0,
        source=PEER_SOURCE,
        external_id=f"{row.name}/{secrets.token_hex(12)}",
        kind="feedback",
        subject_id=subject_id,
        author=None,
        author_id=None,
        occurred_at=occurred,
        title=title,
        body=body,
        metadata=metadata,
        content_hash=hashlib.sha256(digest.encode()).hexdigest(),
    )


# --- reading a subject's peer feedback ----------------------------------------------------


def peer_feedback_of(
    connection: Connection,
    subject_id: int,
    cycle: str,
    *,
    viewer: Viewer,
    kind: FeedbackKind = FeedbackKind.PEER,
) -> PeerFeedbackOut:
    """The subject's peer feedback in the cycle as this viewer may see it: counts always;
    answers only from MIN_ANSWERS_SHOWN answers on, as "a peer" (authors for HR only), in
    an order that does not follow who answered first."""
    cycle_id = connection.execute(
        select(ReviewCycle.id).where(ReviewCycle.name == cycle)
    ).scalar_one_or_none()
    if cycle_id is None:
        raise NotFound(f"no cycle {cycle}", field="cycle")
    rows = connection.execute(
        select(
            FeedbackRequest.id,
            FeedbackRequest.status,
            FeedbackRequest.questions,
            FeedbackRequest.answers,
            FeedbackRequest.peer_id,
            Person.name,
        )
        .join(Person, Person.id == FeedbackRequest.peer_id)
        .where(
            FeedbackRequest.cycle_id == cycle_id,
            FeedbackRequest.kind == kind,
            FeedbackRequest.subject_id == subject_id,
        )
    ).all()
    submitted = [r for r in rows if r.status == RequestStatus.SUBMITTED]
    shown = submitted if len(submitted) >= MIN_ANSWERS_SHOWN else []
    hr = viewer == Viewer.HR
    answers = [
        PeerAnswer(
            author=r.name if hr else AUTHOR_SHOWN[kind],
            author_id=r.peer_id if hr else None,
            questions=r.questions,
            answers=r.answers,
        )
        for r in sorted(
            shown, key=lambda r: hashlib.sha256(json.dumps(r.answers).encode()).digest()
        )
    ]
    return PeerFeedbackOut(
        cycle=cycle,
        kind=kind,
        subject_id=subject_id,
        asked=len(rows),
        answered=len(submitted),
        declined=sum(r.status == RequestStatus.DECLINED for r in rows),
        answers=answers,
    )
