"""HR's cycle dashboard: completion per phase by department and by manager, the overdue
tasks (paged), who has not nominated peers, the drafts awaiting approval and whether the
bias report is current; and the completion and overdue tables as CSV. HR only (403 for
everyone else, managers too): the dashboard names every participant."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from service.cycles.dashboard import Dashboard, dashboard, dashboard_csv
from service.http.deps import ConnectionDep, HrDep, PageDep
from service.http.downloads import csv_download
from service.http.errors import CONFLICT, ERROR_RESPONSES
from service.http.params import required_period

router = APIRouter(prefix="/api/v1/cycles", tags=["cycles"], responses=ERROR_RESPONSES)


@router.get(
    "/{cycle}/dashboard",
    summary="A started cycle's completion, overdue tasks and approvals outstanding (HR)",
    responses=CONFLICT,
)
def get_dashboard(
    cycle: str,
    principal: HrDep,
    connection: ConnectionDep,
    page: PageDep,
    managers: Annotated[
        int | None,
        Query(ge=1, le=10_000, description="Only this many managers, the most overdue first."),
    ] = None,
) -> Dashboard:
    """`limit` and `offset` page the overdue list; everything else is whole unless
    `managers` asks for the managers with the most overdue tasks only."""
    name = required_period(cycle, field="cycle").name
    return dashboard(
        connection,
        name,
        now=datetime.now(UTC),
        limit=page.limit,
        offset=page.offset,
        managers=managers,
    )


@router.get(
    "/{cycle}/dashboard.csv",
    summary="The dashboard's completion by department and manager, and every overdue task, "
    "as CSV (HR)",
    responses={**CONFLICT, 200: {"content": {"text/csv": {}}}},
    response_class=Response,
)
def get_dashboard_csv(cycle: str, principal: HrDep, connection: ConnectionDep) -> Response:
    name = required_period(cycle, field="cycle").name
    text = dashboard_csv(connection, name, now=datetime.now(UTC))
    return csv_download(text, f"dashboard-{name}.csv")
