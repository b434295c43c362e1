"""Finding peers to nominate: the cycle's participants whose name holds what was typed.

The nominations page has no script to lean on, so a plain form searches on the server and
shows the matches as boxes to tick. Only the cycle's participants are ever named (a
person with an acknowledge_review task in it, as nominations.py counts them), so the
search tells nobody of people outside the cycle; the subject and their manager are left
out of the matches, since neither can be a peer.
"""

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, Select, func, select

from domain.phases import TaskKind
from service.db.models import CycleTask, Person, ReviewCycle

QUERY_MAX_CHARS = 100


class Candidate(BaseModel):
    """A participant as the search shows them: enough to tell two namesakes apart."""

    id: int
    name: str
    department: str | None


def _participants(cycle: str) -> Select[*tuple[Any, ...]]:
    return (
        select(Person.id, Person.name, Person.department)
        .join(CycleTask, CycleTask.subject_id == Person.id)
        .join(ReviewCycle, ReviewCycle.id == CycleTask.cycle_id)
        .where(ReviewCycle.name == cycle, CycleTask.kind == TaskKind.ACKNOWLEDGE_REVIEW)
    )


def find_candidates(
    connection: Connection,
    cycle: str,
    text: str,
    *,
    leave_out: Collection[int],
    limit: int,
) -> tuple[list[Candidate], int]:
    """Up to `limit` participants whose name holds `text` (any case; `%` and `_` are
    plain characters), by name, and how many match in all."""
    statement = _participants(cycle).where(Person.id.not_in(list(leave_out)))
    if text.strip():
        statement = statement.where(Person.name.icontains(text.strip(), autoescape=True))
    total = connection.execute(select(func.count()).select_from(statement.subquery())).scalar_one()
    rows = connection.execute(statement.order_by(Person.name, Person.id).limit(limit)).all()
    return [Candidate(id=r.id, name=r.name, department=r.department) for r in rows], int(total)


def participants_named(connection: Connection, cycle: str, ids: Collection[int]) -> list[Candidate]:
    """The participants among `ids`, by name (anyone else is not named: an id typed into
    the form tells nothing of a person outside the cycle)."""
    if not ids:
        return []
    rows = connection.execute(
        _participants(cycle).where(Person.id.in_(list(ids))).order_by(Person.name, Person.id)
    ).all()
    return [Candidate(id=r.id, name=r.name, department=r.department) for r in rows]
