"""The employee's pages: my evidence for a period, my drafts, asking for a draft, a job's
progress, and muting non-essential reminders."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import aliased

from domain.errors import Invalid, NotFound
from retrieval.schema import Record
from service.access.scope import SELF_KIND, may_see_draft, shows_author
from service.cycles.release import withheld_clause
from service.cycles.reminders import ReminderSettingsIn, reminder_settings, set_reminder_settings
from service.db.models import Draft, Person
from service.http.deps import BigId, ConnectionDep, SettingsDep
from service.http.params import page_period, required_period
from service.jobs.queue import enqueue, job_status
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/me")
def my_evidence(
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    period: str | None = None,
) -> Response:
    window = page_period(connection, period)
    author = aliased(Person)
    rows = connection.execute(
        select(Record.__table__, author.name.label("author_name"))
        .outerjoin(author, author.id == Record.author_id)
        .where(
            Record.subject_id == principal.person_id,
            Record.occurred_at >= window.starts_at,
            Record.occurred_at < window.ends_before,
        )
        .order_by(Record.occurred_at.desc())
    ).all()
    records = [
        {
            "kind": r.kind,
            "title": r.title,
            "body": r.body,
            "occurred_at": r.occurred_at,
            "author": (r.author_name or r.author)
            if shows_author(principal, principal.person_id, r.kind)
            else None,
        }
        for r in rows
    ]
    drafts = [
        d
        for d in connection.execute(
            select(
                Draft.id,
                Draft.kind,
                Draft.period,
                Draft.status,
                Draft.current_version,
                withheld_clause(Draft.cycle_id, Draft.subject_id, Draft.period).label("withheld"),
            )
            .where(Draft.subject_id == principal.person_id)
            .order_by(Draft.period.desc(), Draft.kind)
        ).all()
        if may_see_draft(principal, principal.person_id, d.kind, d.status, withheld=d.withheld)
    ]
    return render(
        request, "my_evidence.html.j2", period=window.name, records=records, drafts=drafts
    )


@router.post("/me/drafts", dependencies=[SameOrigin])
def request_self_reflection(
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    period: Annotated[str, Form(max_length=64)],
) -> Response:
    window = required_period(period)
    job_id = enqueue(
        connection,
        "draft",
        {"person_id": principal.person_id, "kind": SELF_KIND, "period": window.name},
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.get("/me/reminders")
def my_reminders(request: Request, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    """Whether the person's non-essential reminders are muted, and the toggle."""
    shown = reminder_settings(connection, principal.person_id)
    return render(request, "reminders.html.j2", reminders=shown)


@router.post("/me/reminders", dependencies=[SameOrigin, back_to("/me/reminders")])
def set_my_reminders(
    principal: PagePrincipal,
    connection: ConnectionDep,
    mute_non_essential: Annotated[str, Form(max_length=8)],
) -> Response:
    if mute_non_essential not in ("true", "false"):
        raise Invalid("mute_non_essential must be true or false", field="mute_non_essential")
    muted = mute_non_essential == "true"
    body = ReminderSettingsIn(mute_non_essential=muted)
    set_reminder_settings(connection, principal.person_id, body, actor=principal.actor)
    notice = "Non-essential reminders muted." if muted else "Reminders unmuted."
    return redirect_with("/me/reminders", notice=notice)


@router.get("/jobs/{job_id}")
def job_page(
    job_id: BigId, request: Request, principal: PagePrincipal, connection: ConnectionDep
) -> Response:
    view = job_status(connection, job_id)
    if view is None or not (principal.hr_admin or view.requested_by == principal.person_id):
        raise NotFound("job not found")
    draft_id = (view.result or {}).get("draft_id") if view.status == "done" else None
    return render(request, "job.html.j2", job=view, draft_id=draft_id)
