"""The audit trail for HR: every write that matters, filterable."""

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from service.api.schemas import AuditOut, Page
from service.db.models import AuditEvent
from service.http.deps import ConnectionDep, HrDep, PageDep
from service.http.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=ERROR_RESPONSES)


@router.get("/audit", summary="Audit events, newest first (HR admins)")
def list_audit(
    principal: HrDep,
    connection: ConnectionDep,
    page: PageDep,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=128)] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
) -> Page[AuditOut]:
    statement = select(AuditEvent.__table__)
    if entity is not None:
        statement = statement.where(AuditEvent.entity == entity)
    if entity_id is not None:
        statement = statement.where(AuditEvent.entity_id == entity_id)
    if actor is not None:
        statement = statement.where(AuditEvent.actor == actor)
    rows, total = page.rows(connection, statement, AuditEvent.id.desc())
    return Page(
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
