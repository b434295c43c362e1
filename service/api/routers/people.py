"""People, their records and evidence packs, within the caller's scope."""

from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from domain.errors import NotFound
from retrieval.embedding import Embedder
from retrieval.pack_cache import PackCache
from retrieval.schema import Record
from service.access.people import person_in_scope, require_in_scope
from service.access.scope import shows_author
from service.api.schemas import (
    DraftKind,
    EvidenceItemOut,
    EvidencePackOut,
    MeOut,
    Page,
    PersonOut,
    RecordOut,
)
from service.db.models import Demographic, Person
from service.http.deps import (
    ConnectionDep,
    HrDep,
    Id,
    PageDep,
    PageParams,
    PrincipalDep,
    get_embedder,
    get_pack_cache,
)
from service.http.errors import ERROR_RESPONSES
from service.http.params import period_param

router = APIRouter(prefix="/api/v1", tags=["people"], responses=ERROR_RESPONSES)
T = TypeVar("T")


def _page(items: list[T], total: int, page: PageParams) -> Page[T]:
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.get("/me", summary="Who this token speaks for, and their roles")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(
        person_id=principal.person_id,
        email=principal.email,
        name=principal.name,
        roles=principal.roles,
        reports=len(principal.reports),
        panels=sorted(principal.panels),
    )


@router.get("/people", summary="People in the caller's scope: themselves, their reports; HR all")
def list_people(
    principal: PrincipalDep, connection: ConnectionDep, page: PageDep
) -> Page[PersonOut]:
    statement = select(Person)
    if not principal.hr_admin:
        statement = statement.where(Person.id.in_({principal.person_id, *principal.reports}))
    rows, total = page.rows(connection, statement, Person.id)
    return _page([PersonOut.model_validate(row, from_attributes=True) for row in rows], total, page)


@router.get("/people/{person_id}", summary="One person in scope")
def get_person(person_id: Id, principal: PrincipalDep, connection: ConnectionDep) -> PersonOut:
    row = person_in_scope(connection, principal, person_id)
    return PersonOut.model_validate(row, from_attributes=True)


PeriodQuery = Annotated[
    str | None, Query(max_length=64, description="2026-H1, 2026-Q3, 2026-05, 2026 or a..b")
]


@router.get("/people/{person_id}/records", summary="A person's records, newest first")
def list_records(
    person_id: Id,
    principal: PrincipalDep,
    connection: ConnectionDep,
    page: PageDep,
    period: PeriodQuery = None,
    kind: Annotated[str | None, Query(max_length=32)] = None,
) -> Page[RecordOut]:
    person_in_scope(connection, principal, person_id)
    statement = select(Record.__table__).where(Record.subject_id == person_id)
    if (window := period_param(period)) is not None:
        statement = statement.where(
            Record.occurred_at >= window.starts_at, Record.occurred_at < window.ends_before
        )
    if kind is not None:
        statement = statement.where(Record.kind == kind)
    rows, total = page.rows(connection, statement, Record.occurred_at.desc(), Record.id)
    items = [
        RecordOut(
            id=r.id,
            kind=r.kind,
            source=r.source,
            external_id=r.external_id,
            title=r.title,
            body=r.body,
            occurred_at=r.occurred_at,
            author=r.author if shows_author(principal, person_id, r.kind) else None,
        )
        for r in rows
    ]
    return _page(items, total, page)


@router.get(
    "/people/{person_id}/evidence", summary="The evidence pack a draft would be written from"
)
def evidence_pack(
    person_id: Id,
    kind: DraftKind,
    principal: PrincipalDep,
    connection: ConnectionDep,
    embedder: Annotated[Embedder, Depends(get_embedder)],
    packs: Annotated[PackCache, Depends(get_pack_cache)],
    period: PeriodQuery = None,
) -> EvidencePackOut:
    require_in_scope(connection, principal, person_id)
    window = period_param(period)
    pack = packs.pack(connection, embedder, subject_id=person_id, period=window, draft_kind=kind)
    return EvidencePackOut(
        person_id=person_id,
        period=window.name if window else None,
        kind=kind,
        tokens=pack.tokens,
        candidates=pack.candidates,
        items=[
            EvidenceItemOut(
                id=item.id,
                record_id=item.record_id,
                kind=item.kind,
                title=item.title,
                text=item.text,
                occurred_at=item.occurred_at,
                author=item.author if shows_author(principal, person_id, item.kind) else None,
                vector_score=item.scores.vector,
                text_score=item.scores.text,
                reads_as_instructions=item.reads_as_instructions,
            )
            for item in pack.items
        ],
        message=pack.message,
    )


@router.get(
    "/people/{person_id}/demographics",
    summary="A person's demographic attributes (HR admins only)",
)
def demographics(person_id: Id, principal: HrDep, connection: ConnectionDep) -> dict[str, str]:
    if connection.execute(select(Person.id).where(Person.id == person_id)).one_or_none() is None:
        raise NotFound("person not found")
    rows = connection.execute(
        select(Demographic.attribute, Demographic.value).where(Demographic.person_id == person_id)
    ).all()
    return {row.attribute: row.value for row in rows}
