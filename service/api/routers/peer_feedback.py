"""Peer feedback: nominations (the employee's own list, a manager's report's list and its
approval), the requests asked of the caller and their answers, and a subject's peer
feedback as the caller may see it.

Scope: a list is its subject's and their managers'; a request is its peer's alone (anyone
else gets 404, as for an id that does not exist); a subject's peer feedback is theirs
(answers without authors, from 3 answers on), their managers' (the same, with the counts)
and HR's (with the authors). A person reading their own feedback gets the subject's view
whatever other role they hold.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from domain.errors import NotFound, Refused
from domain.phases import FeedbackKind
from retrieval.embedding import Embedder
from service.access.people import require_in_scope
from service.access.principal import Principal
from service.cycles.nominations import (
    ApprovedOut,
    Nominations,
    NominationsIn,
    approve_nominations,
    nominations,
    set_nominations,
)
from service.cycles.peer_feedback import (
    AnswersIn,
    DeclineIn,
    PeerFeedbackOut,
    RequestLine,
    RequestOut,
    Viewer,
    decline,
    peer_feedback_of,
    request_of,
    requests_of,
    save_draft,
    submit,
)
from service.http.deps import BigId, ConnectionDep, Id, PrincipalDep, SettingsDep
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period
from service.ingest.records import ChunkSettings

router = APIRouter(prefix="/api/v1", tags=["peer feedback"], responses=ERROR_RESPONSES)

SubjectQuery = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="Whose list: a report's; the caller's when left out."),
]


class ApproveIn(BaseModel):
    subject_id: int = Field(ge=1, le=2**31 - 1, description="The report whose list this is.")


def _embedder_source(request: Request) -> Callable[[], Embedder]:
    """The app's one embedder, loaded only when an answer is turned into evidence."""
    source: Callable[[], Embedder] = request.app.state.embedder
    return source


EmbedderSourceDep = Annotated[Callable[[], Embedder], Depends(_embedder_source)]


def _list_owner(principal: Principal, subject_id: int | None) -> tuple[int, bool]:
    """(subject, acting as their manager): the caller's own list, or a report's; anyone
    else's is 404, as for a person who does not exist."""
    if subject_id is None or subject_id == principal.person_id:
        return principal.person_id, False
    if principal.manages(subject_id):
        return subject_id, True
    if principal.can_read_person(subject_id):
        raise Refused("a peer list is its subject's and their managers'", field="subject_id")
    raise NotFound("person not found", field="subject_id")


@router.get("/cycles/{cycle}/nominations", summary="A peer list: the caller's own or a report's")
def get_nominations(
    cycle: str, principal: PrincipalDep, connection: ConnectionDep, subject_id: SubjectQuery = None
) -> Nominations:
    subject, _ = _list_owner(principal, subject_id)
    return nominations(connection, required_period(cycle, field="cycle").name, subject)


@router.post(
    "/cycles/{cycle}/nominations",
    summary="Set a peer list whole (the employee theirs, a manager a report's)",
    responses=CONFLICT,
)
def post_nominations(
    cycle: str, body: NominationsIn, principal: PrincipalDep, connection: ConnectionDep
) -> Nominations:
    subject, by_manager = _list_owner(principal, body.subject_id)
    name = required_period(cycle, field="cycle").name
    return set_nominations(
        connection, name, subject, body.peers, actor=principal.actor, by_manager=by_manager
    )


@router.post(
    "/cycles/{cycle}/nominations/approve",
    summary="Approve a report's peer list: each peer is asked for feedback (manager)",
    responses=CONFLICT,
)
def post_approve(
    cycle: str, body: ApproveIn, principal: PrincipalDep, connection: ConnectionDep
) -> ApprovedOut:
    if body.subject_id == principal.person_id:
        raise Refused("your manager approves your peer list", field="subject_id")
    subject, _ = _list_owner(principal, body.subject_id)
    name = required_period(cycle, field="cycle").name
    return approve_nominations(connection, name, subject, actor=principal.actor)


@router.get("/me/feedback-requests", summary="The feedback requests asked of the caller")
def my_requests(principal: PrincipalDep, connection: ConnectionDep) -> list[RequestLine]:
    return requests_of(connection, principal.person_id)


@router.get("/feedback-requests/{request_id}", summary="A request asked of the caller")
def get_request(
    request_id: BigId, principal: PrincipalDep, connection: ConnectionDep
) -> RequestOut:
    return request_of(connection, request_id, principal.person_id)


@router.put(
    "/feedback-requests/{request_id}",
    summary="Save the answers typed so far (a draft)",
    responses=CONFLICT,
)
def put_answers(
    request_id: BigId, body: AnswersIn, principal: PrincipalDep, connection: ConnectionDep
) -> RequestOut:
    return save_draft(connection, request_id, principal.person_id, body)


@router.post(
    "/feedback-requests/{request_id}",
    summary="Submit the answers, once (then read-only)",
    responses=CONFLICT,
)
def post_answers(
    request_id: BigId,
    body: AnswersIn,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    embedder: EmbedderSourceDep,
) -> RequestOut:
    chunking = ChunkSettings.of(settings)
    return submit(
        connection,
        request_id,
        principal.person_id,
        body,
        actor=principal.actor,
        embedder=embedder,
        chunking=chunking,
    )


@router.post(
    "/feedback-requests/{request_id}/decline",
    summary="Decline a request with a reason",
    responses=CONFLICT,
)
def post_decline(
    request_id: BigId, body: DeclineIn, principal: PrincipalDep, connection: ConnectionDep
) -> RequestOut:
    return decline(connection, request_id, principal.person_id, body, actor=principal.actor)


@router.get(
    "/people/{person_id}/peer-feedback",
    summary="A person's peer or upward feedback: counts; answers from 3 on (authors: HR only)",
)
def get_peer_feedback(
    person_id: Id,
    principal: PrincipalDep,
    connection: ConnectionDep,
    cycle: Annotated[str, Query(max_length=64, description="The cycle, e.g. 2026-H2.")],
    kind: Annotated[
        FeedbackKind, Query(description="peer, or upward: the person's reports about them.")
    ] = FeedbackKind.PEER,
) -> PeerFeedbackOut:
    require_in_scope(connection, principal, person_id)
    if person_id == principal.person_id:
        viewer = Viewer.SUBJECT
    elif principal.hr_admin:
        viewer = Viewer.HR
    elif principal.manages(person_id):
        viewer = Viewer.MANAGER
    else:  # a panel member or a peer: never a person's peer feedback
        raise NotFound("person not found")
    name = required_period(cycle, field="cycle").name
    return peer_feedback_of(connection, person_id, name, viewer=viewer, kind=kind)
