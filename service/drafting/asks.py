"""Asking for a draft, once: the draft job's payload for a person, kind and period, and the
payload that writes an existing draft again with a writer's options. The API, the pages and
the CLI queue what these return, so a draft asked for anywhere is the same job."""

from typing import Any

from sqlalchemy import Connection

from domain.draft_options import DEFAULT_OPTIONS, DraftOptions
from domain.periods import Period, parse_period
from service.access.principal import Principal
from service.drafting.queries import writable_draft

DRAFT_JOB = "draft"
DRAFT_PANEL_JOB = "draft_panel"  # a calibration panel's cohort summaries, in one job


def draft_payload(
    person_id: int, kind: str, period: Period, options: DraftOptions = DEFAULT_OPTIONS
) -> dict[str, Any]:
    """The draft job's payload: who, what, which period, and the options that are set."""
    return {"person_id": person_id, "kind": kind, "period": period.name, **options.as_payload()}


def regeneration_payload(
    connection: Connection, principal: Principal, draft_id: int, options: DraftOptions
) -> dict[str, Any]:
    """The payload that writes draft `draft_id` again as its next version, for one who may
    change it (404 for a draft they may not see, 403 for one they may only read)."""
    row = writable_draft(connection, principal, draft_id)
    return draft_payload(row.subject_id, row.kind, parse_period(row.period), options)
