"""Review cycles, created explicitly and read by name.

A cycle is named by its period (2026-H1); the period is parsed at the edge that received
it and passed here typed, so a cycle's name is always a period's canonical name. Only HR's
paths create cycles (the ratings import names the cycles it fills, a panel's set-up names
its cycle); a rater's proposal or a draft request never does, so a typo or a hostile name
cannot leave a stray cycle behind.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Connection, Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.kinds import DRAFT_KINDS
from domain.periods import Period, parse_period
from service.audit import audit_rows
from service.db.models import ReviewCycle

DEFAULT_SCALE = (1, 5)


@dataclass(frozen=True)
class CycleScale:
    id: int
    name: str
    low: int
    high: int


def create_cycles(
    connection: Connection, periods: Collection[Period], *, actor: str
) -> dict[str, int]:
    """Ids of the cycles of these periods by name, creating the missing ones with the
    default scale and the dates their periods span; each creation is audited."""
    if not periods:
        return {}
    values = [{"name": p.name, "starts_on": p.start, "ends_on": p.end} for p in periods]
    created = connection.execute(
        pg_insert(ReviewCycle).values(values).on_conflict_do_nothing().returning(ReviewCycle.name)
    ).scalars()
    audit_rows(
        connection,
        actor=actor,
        action="cycle.created",
        entity="cycle",
        changes=[(name, None, {"name": name}) for name in sorted(created)],
    )
    names = {p.name for p in periods}
    query = select(ReviewCycle.name, ReviewCycle.id).where(ReviewCycle.name.in_(names))
    return {r.name: r.id for r in connection.execute(query)}


@dataclass(frozen=True)
class StoredCycle:
    """A cycle as stored: its id, the period it spans and its rating scale."""

    id: int
    period: Period
    low: int
    high: int


def _named(
    connection: Connection, name: str
) -> Row[int, date | None, date | None, int, int] | None:
    """The stored row of the cycle of this name (what every reader by name needs)."""
    return connection.execute(
        select(
            ReviewCycle.id,
            ReviewCycle.starts_on,
            ReviewCycle.ends_on,
            ReviewCycle.scale_min,
            ReviewCycle.scale_max,
        ).where(ReviewCycle.name == name)
    ).one_or_none()


def stored_cycle(connection: Connection, name: str) -> StoredCycle | None:
    """The cycle of this name, or None: reading never creates a cycle. Its period is rebuilt
    from the stored dates (its name was a parsed period's name when it was created); a row
    from before cycles had dates spans the period its name spells."""
    row = _named(connection, name)
    if row is None:
        return None
    if row.starts_on is not None and row.ends_on is not None:
        period = Period(name, row.starts_on, row.ends_on)
    else:
        period = parse_period(name)
    return StoredCycle(row.id, period, int(row.scale_min), int(row.scale_max))


def cycle_scale(connection: Connection, cycle: str) -> CycleScale | None:
    """The cycle and its rating scale, or None when no cycle has that name."""
    row = _named(connection, cycle)
    return None if row is None else CycleScale(row.id, cycle, row.scale_min, row.scale_max)


def cycle_scales(connection: Connection) -> dict[str, CycleScale]:
    """Every cycle's scale by name, in one query (a ratings file names many cycles)."""
    query = select(ReviewCycle.id, ReviewCycle.name, ReviewCycle.scale_min, ReviewCycle.scale_max)
    return {
        r.name: CycleScale(r.id, r.name, r.scale_min, r.scale_max)
        for r in connection.execute(query)
    }


def cycle_id(connection: Connection, name: str) -> int | None:
    """The id of the cycle of this name, or None: reading never creates a cycle."""
    row = _named(connection, name)
    return None if row is None else int(row.id)


@dataclass(frozen=True)
class DraftingCycle:
    """The review cycle a draft belongs to, as drafting needs it: its id (None where HR has
    set up no cycle for the period) and the questions its set-up asks per draft kind, which
    become the draft's sections. Plain values, so a drafting process can be handed it."""

    id: int | None = None
    questions: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (draft kind, its questions)

    def questions_for(self, kind: str) -> tuple[str, ...] | None:
        return dict(self.questions).get(kind)


def drafting_cycle(connection: Connection, name: str) -> DraftingCycle:
    """The cycle of this name as drafting needs it (a cycle without set-up asks nothing: its
    drafts keep their kind's own sections)."""
    row = connection.execute(
        select(ReviewCycle.id, ReviewCycle.questions).where(ReviewCycle.name == name)
    ).one_or_none()
    if row is None:
        return DraftingCycle()
    asked = row.questions or {}
    questions = tuple(
        (str(kind), tuple(asked[kind])) for kind in DRAFT_KINDS if asked.get(str(kind))
    )
    return DraftingCycle(int(row.id), questions)


def latest_cycle(connection: Connection, today: date) -> Period | None:
    """The cycle that began last by `today` (ties: the one that ends last), as the period
    it spans; None when no cycle with dates has begun. A cycle set up ahead of time is not
    yet anyone's current one. Its name was a parsed period's name when it was created, so
    the Period is rebuilt from the row, not parsed again."""
    row = connection.execute(
        select(ReviewCycle.name, ReviewCycle.starts_on, ReviewCycle.ends_on)
        .where(
            ReviewCycle.starts_on.is_not(None),
            ReviewCycle.ends_on.is_not(None),
            ReviewCycle.starts_on <= today,
        )
        .order_by(ReviewCycle.starts_on.desc(), ReviewCycle.ends_on.desc(), ReviewCycle.name.desc())
        .limit(1)
    ).one_or_none()
    if row is None or row.starts_on is None or row.ends_on is None:
        return None
    return Period(row.name, row.starts_on, row.ends_on)
