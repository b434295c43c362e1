"""Drafts: request one (a background job), read versions, edit with optimistic
concurrency, check for bias, acknowledge flags, approve."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, Engine, select

from domain.draft_options import DraftOptions
from domain.errors import Refused
from service.access.people import person_in_scope, require_in_scope
from service.access.scope import (
    may_approve_draft,
    may_see_draft,
    may_write_draft,
)
from service.api.accepted import accepted
from service.api.schemas import (
    AcknowledgeIn,
    ApplyRewriteIn,
    AuditOut,
    CheckOut,
    CitedEvidenceOut,
    DraftOptionsIn,
    DraftOut,
    DraftRequest,
    EditIn,
    JobOut,
    RewriteOut,
    SectionOut,
    SentenceOut,
    VersionOut,
    VersionSummary,
)
from service.bias.gate import (
    acknowledge_flag,
    approve_draft,
    check_draft,
)
from service.bias.rewrite import Proposal, apply_rewrite, flagged_for, propose_rewrite
from service.cycles.release import withheld_clause
from service.db.models import AuditEvent, Draft
from service.drafting.asks import DRAFT_JOB, draft_payload, regeneration_payload
from service.drafting.current import current_draft
from service.drafting.queries import check_view, history_draft, visible_draft, writable_draft
from service.drafting.store import (
    EditOutcome,
    StoredVersion,
    draft_evidence,
    load_version,
    save_or_keep_edit,
    version_history,
)
from service.drafting.text_format import parse_text
from service.http.deps import (
    ConnectionDep,
    Id,
    ParserDep,
    PrincipalDep,
    SettingsDep,
    get_engine,
)
from service.http.errors import CONFLICT, ERROR_RESPONSES, ErrorBody, request_id
from service.http.params import required_period

router = APIRouter(prefix="/api/v1", tags=["drafts"], responses=ERROR_RESPONSES)
EngineDep = Annotated[Engine, Depends(get_engine)]
FlagKey = Annotated[str, Path(pattern=r"^F[1-9]\d{0,5}$", description="A flag's key.")]


@router.post(
    "/people/{person_id}/drafts",
    status_code=202,
    summary="Ask for a draft; it is written in the background (poll the job)",
)
def request_draft(
    person_id: Id,
    request: DraftRequest,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    person_in_scope(connection, principal, person_id)
    if not may_write_draft(principal, person_id, request.kind):
        raise Refused(f"you may not request a {request.kind} for this person")
    period = required_period(request.period)
    payload = draft_payload(person_id, request.kind, period, draft_options(request))
    return accepted(
        connection, response, principal, DRAFT_JOB, payload, max_attempts=settings.job_max_attempts
    )


def draft_options(given: DraftOptionsIn) -> DraftOptions:
    """The typed options of a request (its evidence period parsed, or a 422 naming it)."""
    window = given.evidence_period
    return DraftOptions(
        evidence_period=None
        if window is None
        else required_period(window, field="evidence_period"),
        exclude_records=frozenset(given.exclude_records),
        tone=given.tone,
    )


@router.post(
    "/drafts/{draft_id}/regenerate",
    status_code=202,
    summary="Write a draft again as its next version: another evidence period, without "
    "chosen evidence, or in another tone (poll the job)",
)
def regenerate(
    draft_id: Id,
    body: DraftOptionsIn,
    principal: PrincipalDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
) -> JobOut:
    payload = regeneration_payload(connection, principal, draft_id, draft_options(body))
    return accepted(
        connection, response, principal, DRAFT_JOB, payload, max_attempts=settings.job_max_attempts
    )


@router.get("/people/{person_id}/drafts", summary="A person's drafts that the caller may see")
def list_drafts(
    person_id: Id, principal: PrincipalDep, connection: ConnectionDep
) -> list[dict[str, Any]]:
    require_in_scope(connection, principal, person_id)
    rows = connection.execute(
        select(
            Draft.id,
            Draft.kind,
            Draft.period,
            Draft.status,
            Draft.current_version,
            withheld_clause(Draft.cycle_id, Draft.subject_id, Draft.period).label("withheld"),
        )
        .where(Draft.subject_id == person_id)
        .order_by(Draft.period.desc(), Draft.kind)
    ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "period": r.period,
            "status": r.status,
            "current_version": r.current_version,
        }
        for r in rows
        if may_see_draft(principal, person_id, r.kind, r.status, withheld=r.withheld)
    ]


def version_out(stored: StoredVersion) -> VersionOut:
    return VersionOut(
        version=stored.version,
        author=stored.author,
        origin=stored.origin,
        created_at=stored.created_at,
        text=stored.body.as_text(),
        sections=[SectionOut.model_validate(s.model_dump()) for s in stored.body.sections],
        supported_share=stored.citations.supported_share,
        citation_flags=[f.model_dump() for f in stored.citations.flags],
    )


def _draft_out(connection: Connection, row: Any, version: int | None = None) -> DraftOut:
    stored = load_version(connection, row.id, version)
    return _out(row, stored, draft_evidence(connection, row.id))


def _out(row: Any, stored: StoredVersion, evidence: list[dict[str, Any]]) -> DraftOut:
    return DraftOut(
        id=row.id,
        person_id=row.subject_id,
        kind=row.kind,
        period=row.period,
        status=row.status,
        current_version=row.current_version,
        version=version_out(stored),
        evidence=[CitedEvidenceOut.model_validate(item) for item in evidence],
    )


@router.get("/drafts/{draft_id}", summary="A draft with its current version")
def get_draft(draft_id: Id, principal: PrincipalDep, connection: ConnectionDep) -> DraftOut:
    """One query (service.drafting.current): the hottest read of the API."""
    found = current_draft(connection, principal, draft_id)
    return _out(found.draft, found.version, found.evidence)


@router.get("/drafts/{draft_id}/versions", summary="Every version of a draft, oldest first")
def list_versions(
    draft_id: Id, principal: PrincipalDep, connection: ConnectionDep
) -> list[VersionSummary]:
    history_draft(connection, principal, draft_id)
    return [
        VersionSummary(version=v, author=a, origin=o, created_at=t)
        for v, a, o, t in version_history(connection, draft_id)
    ]


@router.get("/drafts/{draft_id}/versions/{version}", summary="One version of a draft")
def get_version(
    draft_id: Id, version: int, principal: PrincipalDep, connection: ConnectionDep
) -> DraftOut:
    row = history_draft(connection, principal, draft_id)
    return _draft_out(connection, row, version)


@router.post(
    "/drafts/{draft_id}/versions",
    status_code=201,
    summary="Save an edit as the next version; 409 if someone saved since `based_on`",
    response_model=DraftOut,
    responses={
        409: {
            "model": ErrorBody,
            "description": "Stale edit: kept as a non-current version (`kept_version`); the "
            "body has the `current` version to merge into",
        }
    },
)
def edit_draft(
    draft_id: Id,
    edit: EditIn,
    request: Request,
    principal: PrincipalDep,
    connection: ConnectionDep,
) -> DraftOut | JSONResponse:
    writable_draft(connection, principal, draft_id)
    body = parse_text(edit.text)
    outcome = save_or_keep_edit(
        connection, draft_id=draft_id, based_on=edit.based_on, body=body, author=principal.actor
    )
    if outcome.kept_version is not None:
        return _stale(connection, request, draft_id, edit.based_on, outcome)
    return _draft_out(connection, visible_draft(connection, principal, draft_id))


def _stale(
    connection: Connection, request: Request, draft_id: Id, based_on: int, outcome: EditOutcome
) -> JSONResponse:
    """409, with the stale text kept as a non-current version and the current one in the
    body. Returned rather than raised so that the kept version is committed."""
    current = version_out(load_version(connection, draft_id))
    reason = (
        f"draft {draft_id} is at version {outcome.current_version}; this edit was based on "
        f"version {based_on}. Your text is kept as version {outcome.kept_version} (not "
        f"current): merge it into version {outcome.current_version} and save again with "
        f"based_on {outcome.current_version}"
    )
    body_out = {
        "errors": [{"field": "based_on", "reason": reason}],
        "request_id": request_id(request),
        "current": current.model_dump(mode="json"),
        "kept_version": outcome.kept_version,
    }
    return JSONResponse(body_out, status_code=409)


def check_out(connection: Connection, draft_id: int) -> CheckOut:
    return CheckOut.model_validate(check_view(connection, draft_id), from_attributes=True)


@router.get("/drafts/{draft_id}/check", summary="The latest bias check of a draft and its flags")
def get_check(draft_id: Id, principal: PrincipalDep, connection: ConnectionDep) -> CheckOut:
    visible_draft(connection, principal, draft_id)
    return check_out(connection, draft_id)


@router.post("/drafts/{draft_id}/check", summary="Check the current version's language now")
def run_check(
    draft_id: Id, principal: PrincipalDep, parser: ParserDep, connection: ConnectionDep
) -> CheckOut:
    writable_draft(connection, principal, draft_id)
    check_draft(connection, draft_id, actor=principal.actor, parser=parser)
    return check_out(connection, draft_id)


@router.post(
    "/drafts/{draft_id}/flags/{flag}/acknowledge",
    summary="Keep a flagged phrase, with your name and a reason",
    responses=CONFLICT,
)
def acknowledge(
    draft_id: Id,
    flag: str,
    body: AcknowledgeIn,
    principal: PrincipalDep,
    connection: ConnectionDep,
) -> CheckOut:
    writable_draft(connection, principal, draft_id)
    acknowledge_flag(connection, draft_id, flag, by=principal.actor, reason=body.reason)
    return check_out(connection, draft_id)


@router.post(
    "/drafts/{draft_id}/flags/{flag}/rewrite",
    summary="Propose a rewrite of a flagged sentence that keeps its citations (nothing saved)",
    responses=CONFLICT,
)
async def propose(
    draft_id: Id,
    flag: FlagKey,
    principal: PrincipalDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> RewriteOut:
    """With an LLM configured, the model's rewrite; offline, a template from the first
    sentence of a cited evidence item. The draft is read in a transaction of its own, so
    no connection waits on the model."""
    target = await asyncio.to_thread(flagged_for, engine, principal, draft_id, flag)
    return rewrite_out(await propose_rewrite(target, settings))


def rewrite_out(proposal: Proposal) -> RewriteOut:
    target = proposal.target
    return RewriteOut(
        draft_id=target.draft_id,
        flag=target.key,
        measure=target.measure,
        phrase=target.phrase,
        version=target.version,
        section=target.section,
        sentence=target.index,
        original=SentenceOut.model_validate(target.sentence.model_dump()),
        proposal=SentenceOut.model_validate(proposal.sentence.model_dump()),
        origin=proposal.origin,
        model=proposal.model,
        note=proposal.note,
    )


@router.post(
    "/drafts/{draft_id}/flags/{flag}/apply",
    status_code=201,
    summary="Put a rewrite in place of the flagged sentence, as an edit of the checked version",
    response_model=DraftOut,
    responses={
        409: {
            "model": ErrorBody,
            "description": "No such flag, or a stale apply: kept as a non-current version "
            "(`kept_version`); the body has the `current` version to merge into",
        }
    },
)
def apply(
    draft_id: Id,
    flag: FlagKey,
    rewrite: ApplyRewriteIn,
    request: Request,
    principal: PrincipalDep,
    connection: ConnectionDep,
) -> DraftOut | JSONResponse:
    writable_draft(connection, principal, draft_id)
    outcome = apply_rewrite(
        connection,
        draft_id,
        flag,
        based_on=rewrite.based_on,
        text=rewrite.text,
        evidence=rewrite.evidence,
        author=principal.actor,
    )
    if outcome.kept_version is not None:
        return _stale(connection, request, draft_id, rewrite.based_on, outcome)
    return _draft_out(connection, visible_draft(connection, principal, draft_id))


@router.post(
    "/drafts/{draft_id}/approve",
    summary="Approve: needs a fresh check and no open flag",
    responses=CONFLICT,
)
def approve(draft_id: Id, principal: PrincipalDep, connection: ConnectionDep) -> DraftOut:
    row = visible_draft(connection, principal, draft_id)
    if not may_approve_draft(principal, row.subject_id, row.kind):
        raise Refused("only a manager of this person may approve this draft")
    approve_draft(connection, draft_id, by=principal.actor)
    return _draft_out(connection, visible_draft(connection, principal, draft_id))


@router.get("/drafts/{draft_id}/audit", summary="The audit trail of one draft")
def draft_audit(draft_id: Id, principal: PrincipalDep, connection: ConnectionDep) -> list[AuditOut]:
    history_draft(connection, principal, draft_id)
    rows = connection.execute(
        select(AuditEvent.__table__)
        .where(AuditEvent.entity == "draft", AuditEvent.entity_id == str(draft_id))
        .order_by(AuditEvent.id)
    ).all()
    return [AuditOut.model_validate(r, from_attributes=True) for r in rows]
