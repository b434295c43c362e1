"""The draft page: the text beside its evidence, flags at the phrases that raised them,
editing with the version it was based on, check, acknowledge, approve, history."""

import asyncio
from dataclasses import asdict, dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, Engine, select

from domain.draft_options import MAX_EXCLUDED, TONES, DraftOptions, Tone
from domain.errors import Invalid, Refused
from service.access.scope import may_approve_draft, may_read_history, may_write_draft
from service.bias.gate import acknowledge_flag, approve_draft, check_draft
from service.bias.rewrite import Proposal, apply_rewrite, flagged_for, propose_rewrite
from service.db.models import Person
from service.drafting.asks import DRAFT_JOB, regeneration_payload
from service.drafting.queries import check_view, visible_draft, writable_draft
from service.drafting.store import (
    draft_evidence,
    load_version,
    save_or_keep_edit,
    version_history,
)
from service.drafting.structure import DraftBody
from service.drafting.text_format import parse_text
from service.http.deps import ConnectionDep, Id, ParserDep, SettingsDep, get_engine
from service.http.params import required_period
from service.jobs.queue import enqueue
from service.web.draft_editor import body_from_form, editor_sections
from service.web.draft_view import evidence_body, sections_with_flags, version_diff
from service.web.flash import back_to, redirect_with
from service.web.session import PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)
EngineDep = Annotated[Engine, Depends(get_engine)]
FlagKey = Annotated[str, Path(pattern=r"^F[1-9]\d{0,5}$")]
MAX_EDITOR_FIELDS = 4000  # 20 sections x 60 sentences x (text, a few chips, an addition)


@router.get("/drafts/{draft_id}")
def draft_page(
    draft_id: Id,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    editor: Literal["sentences", "text"] = "sentences",
) -> Response:
    row = visible_draft(connection, principal, draft_id)
    current = load_version(connection, draft_id)
    check = check_view(connection, draft_id)
    fresh = check.version == current.version
    flags = [asdict(f) for f in check.flags] if fresh else []
    subject = connection.execute(
        select(Person.name).where(Person.id == row.subject_id)
    ).scalar_one()
    history = (
        version_history(connection, draft_id)
        if may_read_history(principal, row.subject_id, row.kind)
        else []
    )
    return render(
        request,
        "draft.html.j2",
        draft=row,
        subject=subject,
        current=current,
        sections=sections_with_flags(current.body, flags),
        evidence=[
            {**item, "body": evidence_body(item)} for item in draft_evidence(connection, draft_id)
        ],
        check=check,
        fresh_check=fresh,
        flags=flags,
        history=history,
        can_write=may_write_draft(principal, row.subject_id, row.kind),
        tones=[(t.value, t.value.replace("_", " ")) for t in TONES],
        editor=editor_sections(current.body),
        text_editor=editor == "text",
        can_approve=may_approve_draft(principal, row.subject_id, row.kind),
    )


def _back(draft_id: int, *, notice: str | None = None, error: str | None = None) -> Response:
    return redirect_with(f"/drafts/{draft_id}", notice=notice, error=error)


@router.post("/drafts/{draft_id}/edit", dependencies=[SameOrigin])
def save(
    draft_id: Id,
    principal: PagePrincipal,
    connection: ConnectionDep,
    based_on: Annotated[int, Form(ge=1)],
    text: Annotated[str, Form(max_length=100_000)],
) -> Response:
    writable_draft(connection, principal, draft_id)
    body = parse_text(text)  # refused on an error page: a redirect would lose the text
    return _saved(draft_id, connection, based_on, body, principal.actor)


def _saved(
    draft_id: int, connection: Connection, based_on: int, body: DraftBody, author: str
) -> Response:
    """Save an edit as the next version, or keep it beside a newer one, and say which."""
    outcome = save_or_keep_edit(
        connection, draft_id=draft_id, based_on=based_on, body=body, author=author
    )
    if outcome.saved is None:
        return _back(
            draft_id,
            error=f"Someone saved version {outcome.current_version} while you edited. Your "
            f"text is kept as version {outcome.kept_version} in the history: merge it into "
            "the current text.",
        )
    return _back(draft_id, notice=f"Saved as version {outcome.saved.version}.")


async def _editor_form(request: Request) -> dict[str, list[str]]:
    """The sentence editor's fields, each with all its values (checkboxes repeat a name);
    the form's size is limited before it is read (the app's body limit) and its field
    count here."""
    form = await request.form(max_files=0, max_fields=MAX_EDITOR_FIELDS)
    return {name: [str(v) for v in form.getlist(name)] for name in form}


EditorForm = Annotated[dict[str, list[str]], Depends(_editor_form)]


@router.post("/drafts/{draft_id}/sentences", dependencies=[SameOrigin])
def save_sentences(
    draft_id: Id, principal: PagePrincipal, connection: ConnectionDep, form: EditorForm
) -> Response:
    """The sentence editor's save: one version, as the text editor's (refused on an error
    page, so that the browser's back button still holds what was typed)."""
    writable_draft(connection, principal, draft_id)
    based_on = form.get("based_on", [""])
    if len(based_on) != 1 or not based_on[0].isdigit():
        raise Invalid("the version this edit is based on is missing", field="based_on")
    pack = {str(item["id"]) for item in draft_evidence(connection, draft_id)}
    body = body_from_form(form, pack)
    return _saved(draft_id, connection, int(based_on[0]), body, principal.actor)


@router.post(
    "/drafts/{draft_id}/regenerate", dependencies=[SameOrigin, back_to("/drafts/{draft_id}")]
)
def regenerate(
    draft_id: Id,
    principal: PagePrincipal,
    connection: ConnectionDep,
    settings: SettingsDep,
    evidence_period: Annotated[str, Form(max_length=64)] = "",
    tone: Annotated[Tone | Literal[""], Form()] = "",
    exclude: Annotated[list[int], Form(max_length=MAX_EXCLUDED)] = [],  # noqa: B006
) -> Response:
    """Write the draft again as its next version (a job; its page follows it)."""
    window = evidence_period.strip()
    options = DraftOptions(
        evidence_period=required_period(window, field="evidence_period") if window else None,
        exclude_records=frozenset(exclude),
        tone=tone or None,
    )
    payload = regeneration_payload(connection, principal, draft_id, options)
    job_id = enqueue(
        connection,
        DRAFT_JOB,
        payload,
        requested_by=principal.person_id,
        max_attempts=settings.job_max_attempts,
        actor=principal.actor,
    )
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)


@router.post("/drafts/{draft_id}/check", dependencies=[SameOrigin])
def run_check(
    draft_id: Id, principal: PagePrincipal, parser: ParserDep, connection: ConnectionDep
) -> Response:
    writable_draft(connection, principal, draft_id)
    result = check_draft(connection, draft_id, actor=principal.actor, parser=parser)
    found = len(result.flags)
    return _back(draft_id, notice=f"Checked: {found} flag{'s' if found != 1 else ''}.")


@router.post(
    "/drafts/{draft_id}/flags/{flag}/acknowledge",
    dependencies=[SameOrigin, back_to("/drafts/{draft_id}")],
)
def acknowledge(
    draft_id: Id,
    flag: str,
    principal: PagePrincipal,
    connection: ConnectionDep,
    reason: Annotated[str, Form(max_length=2000)],
) -> Response:
    writable_draft(connection, principal, draft_id)
    acknowledge_flag(connection, draft_id, flag, by=principal.actor, reason=reason)
    return _back(draft_id, notice=f"{flag} acknowledged.")


@dataclass(frozen=True)
class RewriteView:
    """A proposed rewrite as its page shows it: the original sentence cut at the flagged
    phrase, the proposal and what to apply."""

    draft_id: int
    key: str
    measure: str
    version: int  # the version the flag's check saw: the apply form's based_on
    before: str  # the original sentence up to the phrase, the phrase, and after it
    phrase: str
    after: str
    cited: list[str]
    text: str
    evidence: list[str]
    origin: str
    note: str

    @classmethod
    def of(cls, proposal: Proposal) -> "RewriteView":
        target = proposal.target
        text, start, end = target.sentence.text, target.start, target.end
        if not 0 <= start < end <= len(text):  # a span that does not fit: no highlight
            start = end = len(text)
        return cls(
            draft_id=target.draft_id,
            key=target.key,
            measure=target.measure,
            version=target.version,
            before=text[:start],
            phrase=text[start:end],
            after=text[end:],
            cited=list(target.sentence.evidence),
            text=proposal.sentence.text,
            evidence=list(proposal.sentence.evidence),
            origin=proposal.origin,
            note=proposal.note,
        )


@router.post(
    "/drafts/{draft_id}/flags/{flag}/rewrite",
    dependencies=[SameOrigin, back_to("/drafts/{draft_id}")],
)
async def suggest_rewrite(
    draft_id: Id,
    flag: FlagKey,
    request: Request,
    principal: PagePrincipal,
    engine: EngineDep,
    settings: SettingsDep,
) -> Response:
    """The proposal beside the original sentence, with a form to apply it (a page of its
    own: the proposal is not saved anywhere until it is applied)."""
    target = await asyncio.to_thread(flagged_for, engine, principal, draft_id, flag)
    proposal = await propose_rewrite(target, settings)
    return render(
        request,
        "draft_rewrite.html.j2",
        subject=target.subject.name,
        kind=target.subject.kind,
        period=target.period,
        rewrite=RewriteView.of(proposal),
    )


@router.post(
    "/drafts/{draft_id}/flags/{flag}/apply",
    dependencies=[SameOrigin, back_to("/drafts/{draft_id}")],
)
def apply(
    draft_id: Id,
    flag: FlagKey,
    principal: PagePrincipal,
    connection: ConnectionDep,
    based_on: Annotated[int, Form(ge=1, le=2_147_483_647)],
    text: Annotated[str, Form(max_length=2000)],
    evidence: Annotated[list[str], Form(max_length=50)],
) -> Response:
    writable_draft(connection, principal, draft_id)
    outcome = apply_rewrite(
        connection,
        draft_id,
        flag,
        based_on=based_on,
        text=text,
        evidence=evidence,
        author=principal.actor,
    )
    if outcome.saved is None:
        return _back(
            draft_id,
            error=f"Someone saved version {outcome.current_version} after the check. Your "
            f"rewrite of {flag} is kept as version {outcome.kept_version} in the history: "
            "merge it into the current text.",
        )
    return _back(
        draft_id,
        notice=f"Rewrite of {flag} applied: saved as version {outcome.saved.version}. "
        "Check this version again.",
    )


@router.post("/drafts/{draft_id}/approve", dependencies=[SameOrigin, back_to("/drafts/{draft_id}")])
def approve(draft_id: Id, principal: PagePrincipal, connection: ConnectionDep) -> Response:
    row = visible_draft(connection, principal, draft_id)
    if not may_approve_draft(principal, row.subject_id, row.kind):
        raise Refused("only a manager of this person may approve this draft")
    approve_draft(connection, draft_id, by=principal.actor)
    return _back(draft_id, notice="Approved.")


@router.get("/drafts/{draft_id}/history")
def history(
    draft_id: Id,
    request: Request,
    principal: PagePrincipal,
    connection: ConnectionDep,
    before: int | None = None,
    after: int | None = None,
) -> Response:
    row = visible_draft(connection, principal, draft_id)
    if not may_read_history(principal, row.subject_id, row.kind):
        raise Refused("the history of this draft is for those who write it")
    versions = version_history(connection, draft_id)
    numbers = [v for v, *_ in versions]
    newer = after if after in numbers else row.current_version
    older = before if before in numbers else max((n for n in numbers if n < newer), default=newer)
    diff = version_diff(
        load_version(connection, draft_id, older).body.as_text(),
        load_version(connection, draft_id, newer).body.as_text(),
    )
    return render(
        request,
        "history.html.j2",
        draft=row,
        versions=versions,
        older=older,
        newer=newer,
        diff=diff,
    )
