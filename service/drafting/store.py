"""Drafts and their versions in the database.

Versions are only ever added. Version 1 is what a drafter generated, with its provenance;
an edit adds a version written by a person and must name the version it was based on: if
someone else saved a version meanwhile, the edit is refused as stale (with the current
version) and nothing is overwritten.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Select, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on, insert

from domain.errors import Conflict, NotFound
from service.audit import audit
from service.db.models import Draft, DraftCheck, DraftVersion, FlagAcknowledgement, Person
from service.drafting.citations import CitationReport, check_citations
from service.drafting.injection_flags import evidence_marks
from service.drafting.structure import DraftBody


class StaleEdit(Conflict):
    """The edit was based on a version that is no longer the current one."""

    def __init__(self, draft_id: int, based_on: int, current: int) -> None:
        super().__init__(
            f"draft {draft_id} is at version {current}; this edit was based on version "
            f"{based_on}. Reload it, re-apply your change and save again: nothing was lost."
        )
        self.current = current


class DraftNotFound(NotFound):
    pass


@dataclass(frozen=True)
class StoredVersion:
    draft_id: int
    version: int
    author: str
    origin: str
    body: DraftBody
    citations: CitationReport
    provenance: dict[str, Any] | None
    created_at: datetime


def save_generated(
    connection: Connection,
    *,
    subject_id: int,
    kind: str,
    period: str,
    cycle_id: int | None,
    body: DraftBody,
    report: CitationReport,
    origin: str,
    author: str,
    provenance: dict[str, Any],
) -> tuple[int, int]:
    """Store a generated draft as the next version of (person, kind, period): version 1 of a
    new draft, or a regeneration on top of an existing one. Returns (draft id, version).

    Two statements: the upsert locks the draft's row, then the number is taken from this
    draft's own versions (inside an INSERT's ON CONFLICT clause the subquery cannot be
    correlated with the row, so it read the highest version of every draft)."""
    upsert = (
        insert(Draft)
        .values(subject_id=subject_id, kind=kind, period=period, cycle_id=cycle_id)
        .on_conflict_do_update(
            index_elements=["subject_id", "kind", "period"],
            set_={"status": "draft", "updated_at": func.now()},
        )
        .returning(Draft.id)
    )
    draft_id = connection.execute(upsert).scalar_one()
    version = connection.execute(
        update(Draft)
        .where(Draft.id == draft_id)
        .values(current_version=_next_number(Draft.id))
        .returning(Draft.current_version)
    ).scalar_one()
    _add_version(connection, draft_id, version, author, origin, body, report, provenance)
    audit(
        connection,
        actor=author,
        action="draft.generated",
        entity="draft",
        entity_id=str(draft_id),
        after={"version": version, "origin": origin, "supported_share": report.supported_share},
    )
    return int(draft_id), int(version)


def save_edit(
    connection: Connection, *, draft_id: int, based_on: int, body: DraftBody, author: str
) -> StoredVersion:
    """A person's edit as a new version, checked against the draft's own evidence ids."""
    checked, report = _checked(connection, draft_id, body)
    bumped = connection.execute(
        update(Draft)
        .where(Draft.id == draft_id, Draft.current_version == based_on)
        .values(current_version=_next_number(Draft.id), status="draft", updated_at=func.now())
        .returning(Draft.current_version)
    ).scalar_one_or_none()
    if bumped is None:
        current = connection.execute(
            select(Draft.current_version).where(Draft.id == draft_id)
        ).scalar_one()
        raise StaleEdit(draft_id, based_on, int(current))
    _add_version(connection, draft_id, bumped, author, "edit", checked, report, None)
    audit(
        connection,
        actor=author,
        action="draft.edited",
        entity="draft",
        entity_id=str(draft_id),
        before={"version": based_on},
        after={"version": bumped, "supported_share": report.supported_share},
    )
    return load_version(connection, draft_id, bumped)


@dataclass(frozen=True)
class EditOutcome:
    """What became of an edit: saved as the new current version, or (someone saved while
    it was being written) kept as a version that is not current."""

    saved: StoredVersion | None
    kept_version: int | None
    current_version: int


def save_or_keep_edit(
    connection: Connection, *, draft_id: int, based_on: int, body: DraftBody, author: str
) -> EditOutcome:
    """Save the edit; a stale one is kept rather than refused, so that nobody's text is
    lost and the author can merge it (the caller tells them, and commits either way)."""
    try:
        saved = save_edit(
            connection, draft_id=draft_id, based_on=based_on, body=body, author=author
        )
    except StaleEdit as exc:
        kept = keep_stale_edit(
            connection, draft_id=draft_id, based_on=based_on, body=body, author=author
        )
        return EditOutcome(None, kept, exc.current)
    return EditOutcome(saved, None, saved.version)


def draft_evidence(connection: Connection, draft_id: int) -> list[dict[str, Any]]:
    """The evidence the draft's text rests on: the pack of its latest generated version
    (a regeneration brings a new pack whose E-ids mean other items; edits keep the pack of
    the text they edit)."""
    return drafts_evidence(connection, [draft_id]).get(draft_id, [])


def drafts_evidence(
    connection: Connection, draft_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """`draft_evidence` of many drafts in one query (a cycle's report checks thousands)."""
    if not draft_ids:
        return {}
    rows = connection.execute(
        select(DraftVersion.draft_id, DraftVersion.provenance["evidence"])
        .ext(distinct_on(DraftVersion.draft_id))
        .where(
            DraftVersion.draft_id.in_(draft_ids),
            DraftVersion.origin.in_(("llm", "offline")),
        )
        .order_by(DraftVersion.draft_id, DraftVersion.version.desc())
    ).all()
    return {draft_id: list(evidence or []) for draft_id, evidence in rows}


def _checked(
    connection: Connection, draft_id: int, body: DraftBody
) -> tuple[DraftBody, CitationReport]:
    """A person's text with its citations checked against the draft's own evidence ids (and
    against what of that evidence reads as instructions to a model)."""
    evidence = draft_evidence(connection, draft_id)
    return check_citations(body, [e["id"] for e in evidence], evidence_marks(evidence))


def keep_stale_edit(
    connection: Connection, *, draft_id: int, based_on: int, body: DraftBody, author: str
) -> int:
    """Keep an edit that `save_edit` refused as stale: stored as a version with origin
    "stale_edit" that does not become current, so nobody's text is lost and the author can
    merge it into the current version. Returns its version number."""
    connection.execute(select(Draft.id).where(Draft.id == draft_id).with_for_update())
    number = connection.execute(select(_next_number(draft_id))).scalar_one()
    checked, report = _checked(connection, draft_id, body)
    _add_version(connection, draft_id, number, author, "stale_edit", checked, report, None)
    audit(
        connection,
        actor=author,
        action="draft.edit_kept_stale",
        entity="draft",
        entity_id=str(draft_id),
        before={"version": based_on},
        after={"version": number},
    )
    return int(number)


def _next_number(draft_id: Any) -> Any:
    """The next free version number: kept stale edits take numbers without becoming
    current, so a new version is numbered after the highest one, not after the current."""
    return (
        select(func.coalesce(func.max(DraftVersion.version), 0) + 1)
        .where(DraftVersion.draft_id == draft_id)
        .correlate_except(DraftVersion)
        .scalar_subquery()
    )


def _add_version(
    connection: Connection,
    draft_id: int,
    version: int,
    author: str,
    origin: str,
    body: DraftBody,
    report: CitationReport,
    provenance: dict[str, Any] | None,
) -> None:
    connection.execute(
        insert(DraftVersion).values(
            draft_id=draft_id,
            version=version,
            author=author,
            origin=origin,
            body=body.model_dump(),
            citations=report.model_dump(),
            supported_share=report.supported_share,
            provenance=provenance,
        )
    )


def load_version(
    connection: Connection, draft_id: int, version: int | None = None
) -> StoredVersion:
    """One version of a draft; the current one when `version` is None."""
    statement = select(DraftVersion.__table__).where(DraftVersion.draft_id == draft_id)
    if version is None:
        statement = statement.join(Draft, Draft.id == DraftVersion.draft_id).where(
            DraftVersion.version == Draft.current_version
        )
    else:
        statement = statement.where(DraftVersion.version == version)
    row = connection.execute(statement).one_or_none()
    if row is None:
        raise DraftNotFound(f"draft {draft_id} has no version {version or 'yet'}")
    return StoredVersion(
        draft_id=row.draft_id,
        version=row.version,
        author=row.author,
        origin=row.origin,
        body=DraftBody.model_validate(row.body),
        citations=CitationReport.model_validate(row.citations),
        provenance=row.provenance,
        created_at=row.created_at,
    )


def version_history(connection: Connection, draft_id: int) -> list[tuple[int, str, str, datetime]]:
    """(version, author, origin, time) of every version, oldest first."""
    rows = connection.execute(
        select(
            DraftVersion.version, DraftVersion.author, DraftVersion.origin, DraftVersion.created_at
        )
        .where(DraftVersion.draft_id == draft_id)
        .order_by(DraftVersion.version)
    ).all()
    return [(r.version, r.author, r.origin, r.created_at) for r in rows]


DRAFT_STATUSES = ("draft", "checked", "approved")


@dataclass(frozen=True)
class DraftFilter:
    """What the operator's list of drafts is narrowed to; None is "any"."""

    subject_id: int | None = None
    period: str | None = None
    kind: str | None = None
    status: str | None = None


class DraftLine(BaseModel):
    """A draft as the operator's list shows it: whose, which, where it stands."""

    model_config = ConfigDict(frozen=True)

    id: int
    subject: str  # the person's name
    employee_id: str
    kind: str
    period: str
    status: str
    version: int  # the current one
    supported_share: float  # of the current version's sentences, cited and supported
    open_flags: int | None  # of a check of the current version; None: not checked since
    updated_at: datetime


def list_drafts(
    connection: Connection, where: DraftFilter, *, limit: int, offset: int
) -> tuple[list[DraftLine], int]:
    """A page of drafts, most recently changed first, and how many match. The operator's
    view, unscoped: a person-facing surface must narrow it (service.access.scope) first.
    Three queries: the count, the page, and the latest check of the page's drafts."""
    chosen = _chosen(where)
    total = count_drafts(connection, where)
    rows = connection.execute(
        select(
            Draft.id,
            Person.name.label("subject"),
            Person.employee_id,
            Draft.kind,
            Draft.period,
            Draft.status,
            Draft.current_version.label("version"),
            DraftVersion.supported_share,
            Draft.updated_at,
        )
        .join(Person, Person.id == Draft.subject_id)
        .join(
            DraftVersion,
            (DraftVersion.draft_id == Draft.id) & (DraftVersion.version == Draft.current_version),
        )
        .where(Draft.id.in_(chosen))
        .order_by(Draft.updated_at.desc(), Draft.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    flags = _open_flags(connection, [row.id for row in rows])
    return [
        DraftLine(**row._mapping, open_flags=flags.get((row.id, row.version))) for row in rows
    ], int(total)


def _chosen(where: DraftFilter) -> Select[int]:
    chosen = select(Draft.id)
    for column, value in (
        (Draft.subject_id, where.subject_id),
        (Draft.period, where.period),
        (Draft.kind, where.kind),
        (Draft.status, where.status),
    ):
        if value is not None:
            chosen = chosen.where(column == value)
    return chosen


def count_drafts(connection: Connection, where: DraftFilter) -> int:
    chosen = _chosen(where).subquery()
    return int(connection.execute(select(func.count()).select_from(chosen)).scalar_one())


def _open_flags(connection: Connection, draft_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    """(draft id, version checked) -> flags of its latest check nobody acknowledged (the
    approval gate's count), in one query."""
    if not draft_ids:
        return {}
    latest = (
        select(
            DraftCheck.id,
            DraftCheck.draft_id,
            DraftCheck.version,
            func.jsonb_array_length(DraftCheck.flags).label("flags"),
        )
        .ext(distinct_on(DraftCheck.draft_id))
        .where(DraftCheck.draft_id.in_(draft_ids))
        .order_by(DraftCheck.draft_id, DraftCheck.id.desc())
        .subquery()
    )
    acknowledged = (
        select(func.count())
        .where(FlagAcknowledgement.check_id == latest.c.id)
        .correlate(latest)
        .scalar_subquery()
    )
    rows = connection.execute(
        select(latest.c.draft_id, latest.c.version, (latest.c.flags - acknowledged).label("open"))
    )
    return {(row.draft_id, row.version): int(row.open) for row in rows}


def draft_periods(connection: Connection) -> list[str]:
    """The periods that have drafts, newest name first (a cycle's report reads them)."""
    return list(
        connection.execute(select(Draft.period).distinct().order_by(Draft.period.desc())).scalars()
    )
