"""The manager's pages: my team with each person's drafts and rating for a period, and
proposing a person's rating with their evidence in view.

The same scope as the API: a manager's reports (direct, and indirect by setting); anyone
else is "not found", and proposing is for a manager of the person only (HR reads but
does not propose, nobody proposes their own rating).
"""

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, select
from sqlalchemy.orm import aliased

from domain.errors import NotFound, Refused
from domain.kinds import DraftKind
from domain.periods import Period
from retrieval.schema import Record
from service.access.people import person_in_scope
from service.access.principal import Principal
from service.access.scope import may_write_draft
from service.bias.evidence_features import evidence_features
from service.calibration.cohort import SUMMARY_KIND
from service.cycles.promotions import promotion_choices
from service.cycles.signoff import acknowledgement_of
from service.cycles.store import DEFAULT_SCALE, cycle_scale
from service.db.models import Draft, DraftVersion, Person
from service.drafting.asks import DRAFT_JOB, draft_payload
from service.drafting.structure import DRAFT_KINDS, DraftBody
from service.http.deps import ConnectionDep, Id, SettingsDep
from service.http.params import page_period, required_period
from service.jobs.queue import enqueue
from service.ratings.workflow import (
    RatingView,
    cycle_ratings,
    propose_rating,
)
from service.web.flash import back_to, come_back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)
RECENT_RECORDS = 5


@dataclass(frozen=True)
class DraftCell:
    kind: str
    title: str
    draft_id: int | None  # None: no draft of this kind for the period
    status: str


@dataclass(frozen=True)
class TeamRow:
    person_id: int
    name: str
    employee_id: str
    reports_to: str  # "you", or the direct manager's name for an indirect report
    drafts: list[DraftCell]
    proposals: list[str]  # "4 by you", "3 by Bo Chen"
    calibrated: int | None
    final: bool


def kind_title(kind: str) -> str:
    return kind.replace("_", " ").capitalize()


@router.get("/team")
def team(
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    period: str | None = None,
) -> Response:
    window = page_period(connection, period)
    rows = team_rows(connection, principal, window.name) if principal.reports else []
    choices = promotion_choices(connection, window.name, principal.reports) if rows else {}
    return render(
        request,
        "team.html.j2",
        period=window.name,
        rows=rows,
        kinds=[(k, kind_title(k)) for k in DRAFT_KINDS],
        promotions=choices,  # participant -> nominated, where the cycle takes nominations
    )


def team_rows(connection: Connection, principal: Principal, period: str) -> list[TeamRow]:
    """Everyone in the manager's scope with their drafts and ratings of the period: three
    queries for the whole team, whatever its size."""
    manager = aliased(Person)
    people = connection.execute(
        select(
            Person.id,
            Person.name,
            Person.employee_id,
            Person.manager_id,
            manager.name.label("manager_name"),
        )
        .outerjoin(manager, manager.id == Person.manager_id)
        .where(Person.id.in_(principal.reports))
        .order_by(Person.name, Person.id)
    ).all()
    drafts: dict[tuple[int, str], Any] = {
        (d.subject_id, d.kind): d
        for d in connection.execute(
            select(Draft.id, Draft.subject_id, Draft.kind, Draft.status).where(
                Draft.subject_id.in_(principal.reports), Draft.period == period
            )
        )
    }
    ratings: dict[int, list[RatingView]] = {}
    for r in cycle_ratings(connection, period, principal.reports):
        ratings.setdefault(r.person_id, []).append(r)
    names = {p.id: p.name for p in people}
    out = []
    for p in people:
        mine = ratings.get(p.id, [])
        cells = []
        for kind in DRAFT_KINDS:
            found = drafts.get((p.id, kind))
            cells.append(
                DraftCell(
                    kind,
                    kind_title(kind),
                    found.id if found else None,
                    found.status if found else "none",
                )
            )
        out.append(
            TeamRow(
                person_id=p.id,
                name=p.name,
                employee_id=p.employee_id,
                reports_to="you"
                if p.manager_id == principal.person_id
                else (p.manager_name or "nobody"),
                drafts=cells,
                proposals=[_proposal(r, principal, names) for r in mine],
                calibrated=next(
                    (r.calibrated_rating for r in mine if r.calibrated_rating is not None), None
                ),
                final=bool(mine) and all(r.final for r in mine),
            )
        )
    return out


def _proposal(view: RatingView, principal: Principal, names: Mapping[int, str]) -> str:
    """Whose proposal it is: yours, a manager under you, or (an earlier manager) by id."""
    if view.rater_id == principal.person_id:
        who = "you"
    else:
        who = names.get(view.rater_id, view.rater_employee_id)
    return f"{view.rating} by {who}"


def _report(connection: Connection, principal: Principal, person_id: int) -> Any:
    """The person, when the caller may propose their rating: 404 for anyone the caller
    may not know about, 403 for someone visible but not theirs to rate (HR, oneself)."""
    if not principal.can_read_person(person_id):
        raise NotFound("person not found")
    person = connection.execute(
        select(Person.id, Person.name, Person.employee_id, Person.level, Person.job_family).where(
            Person.id == person_id
        )
    ).one_or_none()
    if person is None:
        raise NotFound("person not found")
    if not principal.manages(person_id):
        raise Refused("only a manager of this person may propose their rating")
    return person


@dataclass(frozen=True)
class EvidenceLine:
    what: str
    value: str


@router.post("/team/{person_id}/drafts", dependencies=[SameOrigin, back_to("/team")])
def request_draft(
    person_id: Id,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    kind: Annotated[DraftKind, Form()],
    period: Annotated[str, Form(max_length=64)],
) -> Response:
    """A manager asks for a report's draft from the team table (a job; its page follows)."""
    person_in_scope(connection, principal, person_id)
    if not may_write_draft(principal, person_id, kind):
        raise Refused(f"you may not request a {kind} for this person")
    payload = draft_payload(person_id, kind, required_period(period))
    job_id = enqueue(
        connection,
        DRAFT_JOB,
        payload,
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.get("/team/{person_id}/rating")
def rating_page(
    person_id: Id,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    period: str | None = None,
) -> Response:
    person = _report(connection, principal, person_id)
    window = page_period(connection, period)
    scale = cycle_scale(connection, window.name)
    low, high = (scale.low, scale.high) if scale else DEFAULT_SCALE
    ratings = cycle_ratings(connection, window.name, [person_id])
    mine = next((r for r in ratings if r.rater_id == principal.person_id), None)
    records = _records(connection, person_id, window)
    return render(
        request,
        "team_rating.html.j2",
        person=person,
        period=window.name,
        summary=_summary(connection, person_id, window.name),
        evidence=evidence_lines(records),
        recent=records[:RECENT_RECORDS],
        record_count=len(records),
        scale=list(range(low, high + 1)),
        current=mine.rating if mine else None,
        others=[r for r in ratings if r.rater_id != principal.person_id],
        calibrated=next(
            (r.calibrated_rating for r in ratings if r.calibrated_rating is not None), None
        ),
        final=any(r.final for r in ratings),
        acknowledgement=acknowledgement_of(connection, window.name, person_id),
    )


def _summary(connection: Connection, person_id: int, period: str) -> tuple[int, str] | None:
    """The current text of the person's calibration summary for the period, if drafted:
    the same comparable-evidence text the panel reads."""
    row = connection.execute(
        select(Draft.id, DraftVersion.body)
        .join(
            DraftVersion,
            (DraftVersion.draft_id == Draft.id) & (DraftVersion.version == Draft.current_version),
        )
        .where(Draft.subject_id == person_id, Draft.kind == SUMMARY_KIND, Draft.period == period)
    ).one_or_none()
    return None if row is None else (row.id, DraftBody.model_validate(row.body).as_text())


def _records(connection: Connection, person_id: int, window: Period) -> list[dict[str, Any]]:
    """The person's records of the period, newest first, in the shape the evidence
    features read."""
    rows = connection.execute(
        select(
            Record.kind, Record.title, Record.body, Record.meta.label("meta"), Record.occurred_at
        )
        .where(
            Record.subject_id == person_id,
            Record.occurred_at >= window.starts_at,
            Record.occurred_at < window.ends_before,
        )
        .order_by(Record.occurred_at.desc())
    )
    return [
        {
            "kind": r.kind,
            "title": r.title,
            "body": r.body,
            "metadata": r.meta,
            "occurred_at": r.occurred_at,
        }
        for r in rows
    ]


def evidence_lines(records: Sequence[Mapping[str, Any]]) -> list[EvidenceLine]:
    """What the records say in numbers, only where there is something to count: a share
    of no 1:1 notes, a default for no feedback, or the progress of goals that have no
    status would read as a finding."""
    kinds = Counter(str(r["kind"]) for r in records)
    features = evidence_features(records)
    lines = [EvidenceLine(kind_title(k), str(n)) for k, n in sorted(kinds.items())]
    lines.append(
        EvidenceLine("Results stated with numbers", str(int(features["measured_outcomes"])))
    )
    shares: list[tuple[Collection[Any], str, str]] = [
        (_of(records, "work_record"), "setback_share", "Work records reporting a setback"),
        (_of(records, "one_on_one"), "one_on_one_concern_share", "1:1 notes with a concern"),
        (_of(records, "one_on_one"), "one_on_one_praise_share", "1:1 notes passing on praise"),
        (_of(records, "feedback"), "growth_feedback_share", "Peer feedback asking for change"),
    ]
    lines += [EvidenceLine(what, f"{features[key]:.0%}") for base, key, what in shares if base]
    if any((g.get("metadata") or {}).get("status") for g in _of(records, "goal")):
        lines.append(
            EvidenceLine(
                "Goal progress (-1 missed, 0 on track, +1 met)",
                f"{features['goal_progress']:+.1f}",
            )
        )
    return lines


def _of(records: Sequence[Mapping[str, Any]], kind: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r["kind"] == kind]


def _rating_page(
    request: Request,
    person_id: Id,
    period: Annotated[str | None, Form(max_length=64)] = None,
) -> None:
    """The rating form's way back: a refused proposal is told on the form, in its period
    (without one, the form's own default)."""
    asked = "" if period is None else f"?period={quote(period, safe='')}"
    come_back_to(request, f"/team/{person_id}/rating{asked}")


@router.post("/team/{person_id}/rating", dependencies=[SameOrigin, Depends(_rating_page)])
def propose(
    person_id: Id,
    principal: PagePrincipal,
    connection: ConnectionDep,
    rating: Annotated[int, Form()],
    period: Annotated[str | None, Form(max_length=64)] = None,
) -> Response:
    person = _report(connection, principal, person_id)
    cycle = page_period(connection, period).name
    propose_rating(connection, cycle, person_id, principal.person_id, rating, actor=principal.actor)
    return redirect_with(
        f"/team?period={cycle}", notice=f"Proposed {rating} for {person.name} in {cycle}."
    )
