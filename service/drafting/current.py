"""A draft as a reader asks for it (the API's GET of a draft): the draft, its current
version and the evidence its text rests on, in ONE query built once, with the same scope
rule and answers as `visible_draft`, `load_version` and `draft_evidence` one by one (three
queries, each built anew: most of a read's CPU went into building statements)."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select
from sqlalchemy.orm import aliased

from domain.errors import NotFound
from service.access.principal import Principal
from service.access.scope import may_see_draft
from service.cycles.release import withheld_clause
from service.db.models import Draft, DraftVersion
from service.drafting.citations import CitationReport
from service.drafting.store import DraftNotFound, StoredVersion
from service.drafting.structure import DraftBody


@dataclass(frozen=True)
class CurrentDraft:
    draft: Any  # the drafts row
    version: StoredVersion
    evidence: list[dict[str, Any]]


def _statement() -> Select[*tuple[Any, ...]]:
    current = aliased(DraftVersion)
    generated = aliased(DraftVersion)
    evidence = (
        select(generated.provenance["evidence"])
        .where(generated.draft_id == Draft.id, generated.origin.in_(("llm", "offline")))
        .order_by(generated.version.desc())
        .limit(1)
        .scalar_subquery()
    )
    return (
        select(
            *Draft.__table__.c,
            current.version.label("v_version"),
            current.author.label("v_author"),
            current.origin.label("v_origin"),
            current.body.label("v_body"),
            current.citations.label("v_citations"),
            current.provenance.label("v_provenance"),
            current.created_at.label("v_created_at"),
            evidence.label("v_evidence"),
            withheld_clause(Draft.cycle_id, Draft.subject_id, Draft.period).label("withheld"),
        )
        .outerjoin(
            current,
            (current.draft_id == Draft.id) & (current.version == Draft.current_version),
        )
        .where(Draft.id == bindparam("draft_id", type_=Draft.id.type))
    )


_CURRENT = _statement()


def current_draft(connection: Connection, principal: Principal, draft_id: int) -> CurrentDraft:
    """404 for a draft that does not exist or that the caller may not see; a draft
    without its current version is DraftNotFound, as `load_version` says it."""
    row = connection.execute(_CURRENT, {"draft_id": draft_id}).one_or_none()
    if row is None or not may_see_draft(
        principal, row.subject_id, row.kind, row.status, withheld=row.withheld
    ):
        raise NotFound("draft not found")
    if row.v_version is None:
        raise DraftNotFound(f"draft {draft_id} has no version yet")
    version = StoredVersion(
        draft_id=row.id,
        version=row.v_version,
        author=row.v_author,
        origin=row.v_origin,
        body=DraftBody.model_validate(row.v_body),
        citations=CitationReport.model_validate(row.v_citations),
        provenance=row.v_provenance,
        created_at=row.v_created_at,
    )
    return CurrentDraft(row, version, list(row.v_evidence or []))
