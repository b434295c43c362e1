"""Scope-checked draft loaders and the bias-check view, shared by the API and the pages:
a draft the caller may not see is 404, one they see but may not change is 403."""

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection, select

from domain.errors import Conflict, NotFound, Refused
from service.access.principal import Principal
from service.access.scope import SELF_KIND, may_read_history, may_see_draft, may_write_draft
from service.bias.gate import latest_check, open_flags
from service.cycles.release import released_clause, withheld_clause
from service.db.models import Draft, FlagAcknowledgement


def visible_draft(connection: Connection, principal: Principal, draft_id: int) -> Any:
    """The draft row, or 404 when it does not exist or the caller may not see it."""
    withheld = withheld_clause(Draft.cycle_id, Draft.subject_id, Draft.period).label("withheld")
    row = connection.execute(
        select(Draft.__table__, withheld).where(Draft.id == draft_id)
    ).one_or_none()
    if row is None or not may_see_draft(
        principal, row.subject_id, row.kind, row.status, withheld=row.withheld
    ):
        raise NotFound("draft not found")
    return row


def _released(connection: Connection, row: Any) -> bool:
    clause = released_clause(Draft.cycle_id, Draft.subject_id, Draft.period)
    return bool(connection.execute(select(clause).where(Draft.id == row.id)).scalar_one())


def history_draft(connection: Connection, principal: Principal, draft_id: int) -> Any:
    """The draft row for one who may read its earlier versions and audit trail."""
    row = visible_draft(connection, principal, draft_id)
    if not may_read_history(principal, row.subject_id, row.kind):
        raise Refused("the history of this draft is for those who write it")
    return row


class ReleasedReview(Conflict):
    """An approved review of a released cycle: the employee has read it (and may have
    acknowledged it), so nobody changes or writes it again."""


def writable_draft(connection: Connection, principal: Principal, draft_id: int) -> Any:
    """The draft row for one who may change it (and while it may change: an approved
    manager's review of a cycle released to its subject is final)."""
    row = visible_draft(connection, principal, draft_id)
    if row.kind != SELF_KIND and row.status == "approved" and _released(connection, row):
        raise ReleasedReview(
            f"draft {draft_id} is an approved review released to its subject: it no longer "
            "changes (write a note in the review's comment instead)",
            field="draft_id",
        )
    if not may_write_draft(principal, row.subject_id, row.kind):
        raise Refused("you may read this draft but not change it")
    return row


@dataclass(frozen=True)
class FlagView:
    """One flagged phrase of a check, with who kept it and why, if anyone did."""

    key: str
    measure: str
    phrase: str
    section: int
    sentence: int
    start: int
    end: int
    suggestion: str
    acknowledged_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class CheckView:
    """The latest bias check of a draft (version 0 and no flags when there is none)."""

    draft_id: int
    version: int
    status: str
    flags: list[FlagView]
    open_flags: int


_FLAG_FIELDS = {f.name for f in fields(FlagView)} - {"acknowledged_by", "reason"}


def check_view(connection: Connection, draft_id: int) -> CheckView:
    """The draft's latest check with each flag's acknowledgement (no scope check: the
    caller has loaded the draft through one of the loaders above)."""
    check = latest_check(connection, draft_id)
    status = connection.execute(select(Draft.status).where(Draft.id == draft_id)).scalar_one()
    if check is None:
        return CheckView(draft_id=draft_id, version=0, status=status, flags=[], open_flags=0)
    acks = {
        a.flag: a
        for a in connection.execute(
            select(FlagAcknowledgement.__table__).where(FlagAcknowledgement.check_id == check.id)
        ).all()
    }
    flags = [
        FlagView(
            **{k: v for k, v in flag.items() if k in _FLAG_FIELDS},
            acknowledged_by=acks[flag["key"]].acknowledged_by if flag["key"] in acks else None,
            reason=acks[flag["key"]].reason if flag["key"] in acks else None,
        )
        for flag in check.flags
    ]
    return CheckView(
        draft_id=draft_id,
        version=check.version,
        status=status,
        flags=flags,
        open_flags=len(open_flags(connection, draft_id)),
    )
