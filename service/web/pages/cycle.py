"""An employee's pages of a review cycle: my tasks, nominating peers (and a manager's page
for a report's list), the feedback requests asked of me with their answer form, and the
peer feedback I received.

The scope is the API's (service/api/routers/tasks.py and peer_feedback.py): tasks are
the caller's own; a peer list is its subject's and their managers' (anyone else who may
see the person gets 403, everyone else 404); a request is its peer's alone (404 for
anyone else, as for an id that does not exist); the feedback received is shown as the
subject's view (no authors, nothing below 3 answers).

Forms whose typed input a redirect would lose (the peers ticked, the answers typed, a
decline's reason) are shown again with the refusal next to the field (422) instead of
going back with a flash message.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import Connection, select

from domain.errors import Invalid, NotFound, Refused
from domain.phases import FeedbackKind, RequestStatus, TaskKind, TaskStatus
from retrieval.embedding import Embedder
from service.access.principal import Principal
from service.cycles.calibration_tasks import member_panels
from service.cycles.nominations import (
    MAX_PEERS,
    MIN_PEERS,
    Nominations,
    approve_nominations,
    nominations,
    set_nominations,
)
from service.cycles.peer_feedback import (
    AnswersIn,
    DeclineIn,
    PeerFeedbackOut,
    RequestOut,
    Viewer,
    decline,
    peer_feedback_of,
    request_of,
    requests_of,
    save_draft,
    submit,
)
from service.cycles.peer_search import (
    QUERY_MAX_CHARS,
    Candidate,
    find_candidates,
    participants_named,
)
from service.cycles.promotions import packet_drafts
from service.cycles.tasks import TaskLine, tasks_of
from service.db.models import FeedbackRequest, Person, ReviewCycle
from service.http.deps import BigId, ConnectionDep, Id, PageDep, SettingsDep
from service.http.params import required_period
from service.ingest.records import ChunkSettings
from service.web.flash import come_back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)
SEARCH_LIMIT = 25  # matches shown for one search of the nominations form
MAX_FORM_PEERS = 64  # ticked boxes read from one form (the API's list holds as many)
MAX_FORM_ANSWERS = 50  # the API's AnswersIn bound

# --- my tasks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskView:
    """A task as the page lists it: what to do in words, and where it is done."""

    line: TaskLine
    title: str
    href: str | None  # None: nowhere to go (a report no longer the caller's to see)


TITLES: dict[TaskKind, str] = {
    TaskKind.WRITE_SELF_REFLECTION: "Write your self-reflection",
    TaskKind.NOMINATE_PEERS: "Nominate peers to give you feedback",
    TaskKind.APPROVE_NOMINATIONS: "Approve the peers {whom} nominated",
    TaskKind.WRITE_MANAGER_FEEDBACK: "Write manager feedback for {whom}",
    TaskKind.ACKNOWLEDGE_REVIEW: "Read and acknowledge your review",
    TaskKind.GIVE_PEER_FEEDBACK: "Give feedback to {whom}",
    TaskKind.GIVE_UPWARD_FEEDBACK: "Give upward feedback to {whom}",
    TaskKind.WRITE_PROMOTION_PACKET: "Write the promotion packet for {whom}",
    TaskKind.CALIBRATE_COHORT: "Calibrate your panel's cohort",
}


@dataclass(frozen=True)
class AskedOf:
    """The feedback request behind a feedback task, and whom it is about (the peer is
    told the name, though the subject may be outside what they may otherwise read: an
    upward request is about their own manager)."""

    request_id: int
    subject_name: str


def _title(line: TaskLine, asked: AskedOf | None) -> str:
    whom = asked.subject_name if asked else line.subject_name or "a former report"
    return TITLES[line.kind].format(whom=whom)


def _href(line: TaskLine, asked: AskedOf | None) -> str | None:
    """Where the task is done; feedback tasks go to their request's answer form."""
    cycle = quote(line.cycle, safe="")
    subject = line.subject_id
    if line.kind in (TaskKind.GIVE_PEER_FEEDBACK, TaskKind.GIVE_UPWARD_FEEDBACK):
        return None if asked is None else f"/feedback-requests/{asked.request_id}"
    if line.kind in (TaskKind.APPROVE_NOMINATIONS, TaskKind.WRITE_MANAGER_FEEDBACK):
        if subject is None:
            return None
        if line.kind == TaskKind.APPROVE_NOMINATIONS:
            return f"/team/{subject}/cycles/{cycle}/nominations"
        return f"/team/{subject}/rating?period={cycle}"
    own = {
        TaskKind.WRITE_SELF_REFLECTION: f"/me?period={cycle}",
        TaskKind.NOMINATE_PEERS: f"/cycles/{cycle}/nominations",
        TaskKind.ACKNOWLEDGE_REVIEW: f"/me/reviews/{cycle}",
    }
    return own.get(line.kind)


def _asked_of(
    connection: Connection, person_id: int, task_ids: Sequence[int]
) -> dict[int, AskedOf]:
    """The feedback request behind each of the person's feedback tasks, by task id."""
    if not task_ids:
        return {}
    rows = connection.execute(
        select(FeedbackRequest.task_id, FeedbackRequest.id, Person.name)
        .join(Person, Person.id == FeedbackRequest.subject_id)
        .where(FeedbackRequest.task_id.in_(list(task_ids)), FeedbackRequest.peer_id == person_id)
    ).all()
    return {int(r.task_id): AskedOf(int(r.id), str(r.name)) for r in rows}


def _packet_and_panel_links(
    connection: Connection, person_id: int, lines: Sequence[TaskLine]
) -> dict[int, str]:
    """Where promotion-packet and calibration tasks are done, by task id: the report's
    packet draft (or their row on the team page before one exists), and the one panel the
    person sits on in the cycle (the panel list when several or none)."""
    packets = [t for t in lines if t.kind == TaskKind.WRITE_PROMOTION_PACKET and t.subject_id]
    drafts = packet_drafts(connection, {(t.cycle, t.subject_id or 0) for t in packets})
    calibrations = [t for t in lines if t.kind == TaskKind.CALIBRATE_COHORT]
    seats = member_panels(connection, person_id, {t.cycle for t in calibrations})
    links: dict[int, str] = {}
    for t in packets:
        draft = drafts.get((t.cycle, t.subject_id or 0))
        team = f"/team?period={quote(t.cycle, safe='')}#person-{t.subject_id}"
        links[t.id] = team if draft is None else f"/drafts/{draft}"
    for t in calibrations:
        panels = seats.get(t.cycle, [])
        links[t.id] = f"/panels/{panels[0]}" if len(panels) == 1 else "/panels"
    return links


@router.get("/tasks")
def my_tasks(
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    page: PageDep,
    cycle: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    name = None if cycle is None else required_period(cycle, field="cycle").name
    lines, total = tasks_of(
        connection,
        principal.person_id,
        now=datetime.now(UTC),
        may_see=principal.can_read_person,
        cycle=name,
        limit=page.limit,
        offset=page.offset,
    )
    asked = _asked_of(connection, principal.person_id, [t.id for t in lines])
    links = _packet_and_panel_links(connection, principal.person_id, lines)
    tasks = [
        TaskView(t, _title(t, asked.get(t.id)), links.get(t.id) or _href(t, asked.get(t.id)))
        for t in lines
    ]
    return render(
        request,
        "tasks.html.j2",
        tasks=tasks,
        total=total,
        limit=page.limit,
        offset=page.offset,
        cycle=name,
        open_status=TaskStatus.OPEN,
    )


# --- nominations --------------------------------------------------------------------------


@dataclass(frozen=True)
class NominationForm:
    """What the nominations form shows: the peers ticked (saved, or ticked before a search
    or a refusal) and the matches of the search, not ticked."""

    ticked: list[Candidate]
    found: list[Candidate]
    found_total: int
    query: str


def _person_name(connection: Connection, person_id: int) -> str:
    name = connection.execute(select(Person.name).where(Person.id == person_id)).scalar()
    if name is None:
        raise NotFound("person not found", field="person_id")
    return str(name)


def _ticked(connection: Connection, cycle: str, ids: Sequence[int]) -> list[Candidate]:
    """The ticked peers by name, in the order ticked; an id that is no participant keeps
    its box (so a refusal of it keeps the choice) but is not named."""
    named = {c.id: c for c in participants_named(connection, cycle, ids)}
    return [named.get(i) or Candidate(id=i, name=f"person {i}", department=None) for i in ids]


def _form(
    connection: Connection,
    cycle: str,
    listed: Nominations,
    *,
    ticked: Sequence[int] | None,
    query: str,
    manager_id: int | None,
) -> NominationForm:
    ids = [p.id for p in listed.peers] if ticked is None else list(dict.fromkeys(ticked))
    leave_out = {listed.subject_id, *ids, *([] if manager_id is None else [manager_id])}
    found, total = find_candidates(
        connection, cycle, query[:QUERY_MAX_CHARS], leave_out=leave_out, limit=SEARCH_LIMIT
    )
    return NominationForm(_ticked(connection, cycle, ids), found, total, query)


def _manager_of(connection: Connection, subject_id: int) -> int | None:
    found = connection.execute(select(Person.manager_id).where(Person.id == subject_id)).scalar()
    return None if found is None else int(found)


class Editor(StrEnum):
    """Whose page the list is edited on."""

    SUBJECT = "subject"
    MANAGER = "manager"


def _list_url(cycle: str, subject_id: int, editor: Editor) -> str:
    """The list's page: the subject's own, or their manager's page of it."""
    own = f"/cycles/{quote(cycle, safe='')}/nominations"
    return own if editor == Editor.SUBJECT else f"/team/{subject_id}{own}"


def _nominations_page(
    request: Request,
    connection: Connection,
    cycle: str,
    subject_id: int,
    editor: Editor,
    *,
    ticked: Sequence[int] | None = None,
    query: str = "",
    peers_error: str | None = None,
) -> Response:
    listed = nominations(connection, cycle, subject_id)
    form = _form(
        connection,
        cycle,
        listed,
        ticked=ticked,
        query=query,
        manager_id=_manager_of(connection, subject_id),
    )
    return render(
        request,
        "nominations.html.j2",
        status_code=200 if peers_error is None else 422,
        cycle=cycle,
        subject_name=_person_name(connection, subject_id),
        as_manager=editor == Editor.MANAGER,
        listed=listed,
        form=form,
        action=_list_url(cycle, subject_id, editor),
        peers_error=peers_error,
        min_peers=MIN_PEERS,
        max_peers=MAX_PEERS,
    )


def _report_list(principal: Principal, person_id: int) -> None:
    """A report's list is for their managers: 403 for someone else the caller may see
    (HR; oneself, whose manager approves), 404 for anyone else."""
    if principal.manages(person_id):
        return
    if principal.can_read_person(person_id):
        raise Refused("a peer list is edited by its subject and approved by their manager")
    raise NotFound("person not found")


Ticked = Annotated[list[int], Query(max_length=MAX_FORM_PEERS)]
Search = Annotated[str, Query(max_length=QUERY_MAX_CHARS)]


@router.get("/cycles/{cycle}/nominations")
def my_nominations(
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    q: Search = "",
    peers: Ticked = [],  # noqa: B006 (FastAPI copies the default)
    searched: bool = False,
) -> Response:
    """The caller's list; `searched` (the form's Search button) shows the boxes ticked
    then instead of the saved list."""
    name = required_period(cycle, field="cycle").name
    return _nominations_page(
        request,
        connection,
        name,
        principal.person_id,
        Editor.SUBJECT,
        ticked=peers if searched else None,
        query=q,
    )


@router.get("/team/{person_id}/cycles/{cycle}/nominations")
def report_nominations(
    person_id: Id,
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    q: Search = "",
    peers: Ticked = [],  # noqa: B006 (FastAPI copies the default)
    searched: bool = False,
) -> Response:
    if person_id == principal.person_id:
        return RedirectResponse(f"/cycles/{quote(cycle, safe='')}/nominations", status_code=303)
    _report_list(principal, person_id)
    name = required_period(cycle, field="cycle").name
    return _nominations_page(
        request,
        connection,
        name,
        person_id,
        Editor.MANAGER,
        ticked=peers if searched else None,
        query=q,
    )


PeersForm = Annotated[list[int], Form(max_length=MAX_FORM_PEERS)]


def _save_list(
    request: Request,
    connection: Connection,
    principal: Principal,
    cycle: str,
    subject_id: int,
    peers: list[int],
    editor: Editor,
) -> Response:
    """Save the ticked list; a refusal of the list is shown next to it, the boxes kept
    (another refusal, such as an approved list, is told on the list's page; a list that
    does not exist is 404 here, not sent back to a page that is 404 too)."""
    nominations(connection, cycle, subject_id)
    come_back_to(request, _list_url(cycle, subject_id, editor))
    try:
        saved = set_nominations(
            connection,
            cycle,
            subject_id,
            peers,
            actor=principal.actor,
            by_manager=editor == Editor.MANAGER,
        )
    except Invalid as problem:
        return _nominations_page(
            request, connection, cycle, subject_id, editor, ticked=peers, peers_error=problem.reason
        )
    count = len(saved.peers)
    short = MIN_PEERS - count
    told = f"Saved {count} peer{'s' if count != 1 else ''}."
    if short > 0:
        told += f" Add {short} more: the list needs at least {MIN_PEERS} before it is approved."
    elif editor == Editor.SUBJECT:
        told += " Your manager approves the list next."
    return redirect_with(_list_url(cycle, subject_id, editor), notice=told)


@router.post(
    "/cycles/{cycle}/nominations",
    dependencies=[SameOrigin],
)
def save_my_nominations(
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    peers: PeersForm = [],  # noqa: B006 (FastAPI copies the default)
) -> Response:
    name = required_period(cycle, field="cycle").name
    return _save_list(
        request, connection, principal, name, principal.person_id, peers, Editor.SUBJECT
    )


@router.post(
    "/team/{person_id}/cycles/{cycle}/nominations",
    dependencies=[SameOrigin],
)
def save_report_nominations(
    person_id: Id,
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    peers: PeersForm = [],  # noqa: B006 (FastAPI copies the default)
) -> Response:
    _report_list(principal, person_id)
    name = required_period(cycle, field="cycle").name
    return _save_list(request, connection, principal, name, person_id, peers, Editor.MANAGER)


@router.post(
    "/team/{person_id}/cycles/{cycle}/nominations/approve",
    dependencies=[SameOrigin],
)
def approve_report_nominations(
    person_id: Id,
    cycle: str,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
) -> Response:
    _report_list(principal, person_id)
    name = required_period(cycle, field="cycle").name
    nominations(connection, name, person_id)  # 404 for a list that does not exist
    come_back_to(request, _list_url(name, person_id, Editor.MANAGER))
    try:
        approved = approve_nominations(connection, name, person_id, actor=principal.actor)
    except Invalid as problem:
        return _nominations_page(
            request, connection, name, person_id, Editor.MANAGER, peers_error=problem.reason
        )
    sent = approved.requests
    return redirect_with(
        _list_url(name, person_id, Editor.MANAGER),
        notice=f"Approved: {sent} peer{'s' if sent != 1 else ''} asked for feedback.",
    )


# --- feedback requests --------------------------------------------------------------------


@router.get("/feedback-requests")
def my_requests(request: Request, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    return render(
        request,
        "feedback_requests.html.j2",
        requests=requests_of(connection, principal.person_id),
        open_status=RequestStatus.OPEN,
    )


def _answer_page(
    request: Request,
    asked: RequestOut,
    *,
    answers: Sequence[str] | None = None,
    reason: str = "",
    problem: Invalid | None = None,
) -> Response:
    """The form, with what was typed (or the saved draft) and a refusal by its field."""
    typed = list(asked.answers if answers is None else answers)
    typed += [""] * (len(asked.questions) - len(typed))
    field = None if problem is None else problem.field
    return render(
        request,
        "feedback_request.html.j2",
        status_code=200 if problem is None else 422,
        asked=asked,
        answers=typed,
        reason=reason,
        problem_field=field,
        problem=None if problem is None else problem.reason,
        upward=asked.kind == FeedbackKind.UPWARD,
        open_status=RequestStatus.OPEN,
    )


@router.get("/feedback-requests/{request_id}")
def answer_form(
    request_id: BigId, request: Request, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    return _answer_page(request, request_of(connection, request_id, principal.person_id))


class AnswerAction(StrEnum):
    SAVE = "save"
    SUBMIT = "submit"


def _embedder_source(request: Request) -> Callable[[], Embedder]:
    """The app's one embedder, loaded only when answers become evidence."""
    source: Callable[[], Embedder] = request.app.state.embedder
    return source


def _wants_json(request: Request) -> bool:
    """The autosave script asks for JSON; a form post without it gets a page."""
    return "application/json" in request.headers.get("accept", "")


def _saved(request: Request, request_id: int, saved: RequestOut) -> Response:
    when = saved.saved_at or datetime.now(UTC)
    if _wants_json(request):
        return JSONResponse({"saved_at": when.isoformat()})
    return redirect_with(
        f"/feedback-requests/{request_id}",
        notice=f"Draft saved at {when.astimezone(UTC):%H:%M} UTC.",
    )


@router.post("/feedback-requests/{request_id}", dependencies=[SameOrigin])
def answer(
    request_id: BigId,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    action: Annotated[AnswerAction, Form()],
    answers: Annotated[list[str], Form(max_length=MAX_FORM_ANSWERS)] = [],  # noqa: B006
) -> Response:
    """Save the draft (the button, or the autosave script asking for JSON) or submit
    once; a refused answer is shown by its question with everything typed kept."""
    asked = request_of(connection, request_id, principal.person_id)
    come_back_to(request, f"/feedback-requests/{request_id}")  # a closed one is told there
    body = AnswersIn(answers=answers)
    try:
        if action == AnswerAction.SAVE:
            return _saved(
                request, request_id, save_draft(connection, request_id, principal.person_id, body)
            )
        submit(
            connection,
            request_id,
            principal.person_id,
            body,
            actor=principal.actor,
            embedder=_embedder_source(request),
            chunking=ChunkSettings.of(settings),
        )
    except Invalid as problem:
        if _wants_json(request):
            return JSONResponse({"field": problem.field, "reason": problem.reason}, 422)
        return _answer_page(request, asked, answers=answers, problem=problem)
    return redirect_with(
        f"/feedback-requests/{request_id}",
        notice=f"Submitted: thank you. {asked.subject_name} sees the answers without your name.",
    )


@router.post("/feedback-requests/{request_id}/decline", dependencies=[SameOrigin])
def decline_request(
    request_id: BigId,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    asked = request_of(connection, request_id, principal.person_id)
    come_back_to(request, f"/feedback-requests/{request_id}")  # a closed one is told there
    try:
        decline(
            connection,
            request_id,
            principal.person_id,
            DeclineIn(reason=reason),
            actor=principal.actor,
        )
    except Invalid as problem:
        return _answer_page(request, asked, reason=reason, problem=problem)
    return redirect_with("/feedback-requests", notice=f"Declined the request of {asked.cycle}.")


# --- the feedback I received --------------------------------------------------------------


def _received(connection: Connection, subject_id: int) -> list[PeerFeedbackOut]:
    """The subject's peer and upward feedback of each cycle that asked for any, newest
    cycle first, as the subject may see it."""
    asked = connection.execute(
        select(ReviewCycle.name, FeedbackRequest.kind)
        .join(ReviewCycle, ReviewCycle.id == FeedbackRequest.cycle_id)
        .where(FeedbackRequest.subject_id == subject_id)
        .distinct()
        .order_by(ReviewCycle.name.desc(), FeedbackRequest.kind)
    ).all()
    return [
        peer_feedback_of(
            connection, subject_id, r.name, viewer=Viewer.SUBJECT, kind=FeedbackKind(r.kind)
        )
        for r in asked
    ]


@router.get("/me/feedback")
def my_feedback(request: Request, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    return render(
        request,
        "my_feedback.html.j2",
        received=_received(connection, principal.person_id),
        upward=FeedbackKind.UPWARD,
    )
