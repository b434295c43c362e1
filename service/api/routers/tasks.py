"""A person's tasks in review cycles ("my tasks"): their own only, whatever their role."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from domain.phases import TaskStatus
from service.api.schemas import Page, TaskOut
from service.cycles.tasks import tasks_of
from service.http.deps import ConnectionDep, PageDep, PrincipalDep
from service.http.errors import ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1", tags=["tasks"], responses=ERROR_RESPONSES)


@router.get("/me/tasks", summary="The caller's tasks, soonest due first, overdue marked")
def my_tasks(
    principal: PrincipalDep,
    connection: ConnectionDep,
    page: PageDep,
    cycle: Annotated[
        str | None, Query(max_length=64, description="Only this cycle's, e.g. 2026-H2.")
    ] = None,
    status: Annotated[TaskStatus | None, Query(description="Only tasks in this state.")] = None,
) -> Page[TaskOut]:
    period = None if cycle is None else required_period(cycle, field="cycle")
    items, total = tasks_of(
        connection,
        principal.person_id,
        now=datetime.now(UTC),
        may_see=principal.can_read_person,
        cycle=None if period is None else period.name,
        status=status,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
