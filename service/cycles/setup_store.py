"""A cycle's set-up stored and read: created for a period (the key every cycle-scoped
feature uses), changed while it is a draft, copied to the next period, started.

A period's cycle may already exist without a set-up (a ratings import or a panel's set-up
created it): setting it up fills that row, so there is still one cycle per period. Every
change is audited with the set-up before and after. Each function takes a connection in the
caller's transaction and locks the cycle's row (`FOR UPDATE`) before it reads what it
changes, so two requests cannot both start a cycle or overwrite each other's edit unseen.
"""

import calendar
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.errors import Conflict, NotFound
from domain.periods import Period
from domain.phases import (
    CycleReview,
    CycleStatus,
    Phase,
    TaskKind,
)
from service.audit import audit
from service.cycles.setup import (
    CycleSetupIn,
    CycleSetupPatch,
    ParticipantsIn,
    PhaseDatesIn,
    ScaleIn,
    check_setup,
    default_questions,
)
from service.cycles.store import stored_cycle
from service.cycles.tasks import create_tasks, move_due_dates, task_counts
from service.cycles.upward import send_upward_requests
from service.db.models import CyclePhase, Rating, ReviewCycle


class CycleNotSetUp(NotFound):
    """No cycle of that name, or one without a set-up (made by a ratings import)."""


class CycleStarted(Conflict):
    """The cycle has started: its tasks exist, so only phase dates may change."""


class StoredSetup(BaseModel):
    """A cycle's set-up as stored, with where it stands."""

    period: str = Field(examples=["2026-H2"])
    title: str
    status: CycleStatus
    time_zone: str
    participants: ParticipantsIn
    reviews: list[CycleReview]
    scale: ScaleIn
    questions: dict[CycleReview, list[str]]
    phases: dict[Phase, PhaseDatesIn]
    copied_from: str | None = Field(description="The period of the cycle this was copied from.")
    set_up_by: str | None
    started_at: datetime | None
    started_by: str | None
    tasks: dict[TaskKind, int] = Field(description="Tasks by kind; none before the start.")

    def as_input(self) -> CycleSetupIn:
        """The set-up as a body that would create it again."""
        return CycleSetupIn(
            title=self.title,
            time_zone=self.time_zone,
            participants=self.participants,
            reviews=self.reviews,
            scale=self.scale,
            questions=self.questions,
            phases=self.phases,
        )


class StartSummary(BaseModel):
    period: str
    participants: int = Field(description="People the cycle reviews.")
    tasks: dict[TaskKind, int] = Field(description="Tasks created, by kind.")


# --- reading ------------------------------------------------------------------------------


def _row(connection: Connection, name: str, *, lock: bool = False) -> Row[Any]:
    """The cycle's row with a set-up, or CycleNotSetUp naming the cycle."""
    statement = select(ReviewCycle.__table__).where(ReviewCycle.name == name)
    if lock:
        statement = statement.with_for_update()
    row = connection.execute(statement).one_or_none()
    if row is None or row.status is None:
        raise CycleNotSetUp(f"cycle {name} has no set-up", field="cycle")
    return row


def cycle_setup(connection: Connection, name: str) -> StoredSetup:
    """The set-up of the cycle of this name, or CycleNotSetUp."""
    return _stored(connection, _row(connection, name))


def _stored(connection: Connection, row: Row[Any]) -> StoredSetup:
    phases = connection.execute(
        select(CyclePhase.phase, CyclePhase.opens_on, CyclePhase.due_on).where(
            CyclePhase.cycle_id == row.id
        )
    ).all()
    by_phase = {Phase(p.phase): PhaseDatesIn(opens=p.opens_on, due=p.due_on) for p in phases}
    source = None
    if row.copied_from is not None:
        source = connection.execute(
            select(ReviewCycle.name).where(ReviewCycle.id == row.copied_from)
        ).scalar_one_or_none()
    return StoredSetup(
        period=row.name,
        title=row.title,
        status=CycleStatus(row.status),
        time_zone=row.time_zone,
        participants=ParticipantsIn(
            cutoff=row.cutoff_on,
            departments=row.departments,
            levels=row.levels,
            job_families=row.job_families,
        ),
        reviews=[CycleReview(r) for r in row.reviews],
        scale=ScaleIn(min=row.scale_min, max=row.scale_max, labels=row.scale_labels),
        questions={CycleReview(k): v for k, v in (row.questions or {}).items()},
        phases={p: by_phase[p] for p in Phase if p in by_phase},
        copied_from=source,
        set_up_by=row.set_up_by,
        started_at=row.started_at,
        started_by=row.started_by,
        tasks=task_counts(connection, row.id),
    )


def _period(connection: Connection, name: str) -> Period:
    """The period a set-up cycle spans (stored dates, or its name's for an old row)."""
    found = stored_cycle(connection, name)
    if found is None:
        raise CycleNotSetUp(f"cycle {name} has no set-up", field="cycle")
    return found.period


# --- creating -----------------------------------------------------------------------------


def create_cycle(
    connection: Connection,
    period: Period,
    setup: CycleSetupIn,
    *,
    actor: str,
    copied_from: int | None = None,
) -> StoredSetup:
    """Set up the cycle of `period` as a draft: Invalid naming the field when the set-up
    does not hold, Conflict when the period's cycle is already set up."""
    checked = check_setup(setup, period)
    connection.execute(
        pg_insert(ReviewCycle)
        .values(name=period.name, starts_on=period.start, ends_on=period.end)
        .on_conflict_do_nothing(index_elements=[ReviewCycle.name])
    )
    row = connection.execute(
        select(ReviewCycle.id, ReviewCycle.status)
        .where(ReviewCycle.name == period.name)
        .with_for_update()
    ).one()
    if row.status is not None:
        raise Conflict(f"cycle {period.name} is already set up", field="period")
    _check_ratings_fit(connection, row.id, checked.scale)
    connection.execute(
        update(ReviewCycle)
        .where(ReviewCycle.id == row.id)
        .values(
            status=CycleStatus.DRAFT,
            copied_from=copied_from,
            set_up_by=actor,
            **_columns(checked),
        )
    )
    _write_phases(connection, row.id, checked.phases)
    stored = cycle_setup(connection, period.name)
    audit(
        connection,
        actor=actor,
        action="cycle.set_up",
        entity="cycle",
        entity_id=period.name,
        after=_audited(stored),
    )
    return stored


def _columns(setup: CycleSetupIn) -> dict[str, Any]:
    """The review_cycles columns of a checked set-up (all but the phases)."""
    questions = setup.questions or {}
    return {
        "title": setup.title,
        "time_zone": setup.time_zone,
        "cutoff_on": setup.participants.cutoff,
        "departments": setup.participants.departments,
        "levels": setup.participants.levels,
        "job_families": setup.participants.job_families,
        "reviews": [str(r) for r in setup.reviews],
        "scale_min": setup.scale.min,
        "scale_max": setup.scale.max,
        "scale_labels": setup.scale.labels,
        "questions": {str(k): v for k, v in questions.items()},
    }


def _write_phases(
    connection: Connection, cycle_id: int, phases: Mapping[Phase, PhaseDatesIn]
) -> None:
    """Every phase's dates as given, in one statement (a phase not given is left alone)."""
    values = [
        {"cycle_id": cycle_id, "phase": str(p), "opens_on": d.opens, "due_on": d.due}
        for p, d in phases.items()
    ]
    statement = pg_insert(CyclePhase).values(values)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[CyclePhase.cycle_id, CyclePhase.phase],
            set_={"opens_on": statement.excluded.opens_on, "due_on": statement.excluded.due_on},
        )
    )


def _check_ratings_fit(connection: Connection, cycle_id: int, scale: ScaleIn) -> None:
    """A cycle that already holds ratings (imported before its set-up) keeps them valid."""
    outside = connection.execute(
        select(func.count())
        .select_from(Rating)
        .where(
            Rating.cycle_id == cycle_id,
            or_(
                ~Rating.rating.between(scale.min, scale.max),
                ~Rating.calibrated_rating.between(scale.min, scale.max),
            ),
        )
    ).scalar_one()
    if outside:
        raise Conflict(
            f"{outside} ratings of this cycle fall outside {scale.min} to {scale.max}",
            field="scale",
        )


def _audited(stored: StoredSetup) -> dict[str, Any]:
    return stored.model_dump(mode="json", exclude={"tasks", "started_at", "started_by"})


# --- changing -----------------------------------------------------------------------------

_MOVABLE = {"phases"}


def update_setup(
    connection: Connection, name: str, patch: CycleSetupPatch, *, actor: str
) -> StoredSetup:
    """Change a draft's set-up (the fields given; phases one by one). A started cycle takes
    phase dates only (CycleStarted for anything else), and its open tasks move with their
    phase's due day; done and declined ones keep theirs."""
    row = _row(connection, name, lock=True)
    before = _stored(connection, row)
    given = {f for f in patch.model_fields_set if getattr(patch, f) is not None}
    if before.status is CycleStatus.STARTED and given - _MOVABLE:
        field = sorted(given - _MOVABLE)[0]
        raise CycleStarted(f"cycle {name} has started: only phase dates may change", field=field)
    merged = _merged(before, patch)
    checked = check_setup(merged, _period(connection, name))
    if before.status is CycleStatus.DRAFT:
        _check_ratings_fit(connection, row.id, checked.scale)
        connection.execute(
            update(ReviewCycle).where(ReviewCycle.id == row.id).values(**_columns(checked))
        )
    if patch.phases:
        _write_phases(connection, row.id, checked.phases)
    moved = move_due_dates(connection, row.id)
    after = _stored(connection, _row(connection, name))
    changed = {k for k, v in _audited(after).items() if _audited(before).get(k) != v}
    if changed:
        audit(
            connection,
            actor=actor,
            action="cycle.setup_changed",
            entity="cycle",
            entity_id=name,
            before={k: v for k, v in _audited(before).items() if k in changed},
            after={**{k: v for k, v in _audited(after).items() if k in changed}, "moved": moved},
        )
    return after


def _merged(stored: StoredSetup, patch: CycleSetupPatch) -> CycleSetupIn:
    """The stored set-up with the patch's fields over it. Questions not given keep the
    stored ones, and a review newly asked gets the built-in questions unless given."""
    current = stored.as_input()
    questions = patch.questions
    if questions is None:
        questions = {**default_questions(), **stored.questions}
    updates: dict[str, Any] = {"questions": questions}
    for name in ("title", "time_zone", "participants", "reviews", "scale"):
        value = getattr(patch, name)
        if value is not None:
            updates[name] = value
    if patch.phases is not None:
        updates["phases"] = {**current.phases, **patch.phases}
    return current.model_copy(update=updates)


# --- copying ------------------------------------------------------------------------------


def copy_cycle(connection: Connection, source: str, period: Period, *, actor: str) -> StoredSetup:
    """A new draft cycle for `period` with the set-up of `source`, its dates shifted by the
    distance between the two periods' starts (whole months when both start on the 1st, as
    named periods do: 15 July stays the 15th)."""
    row = _row(connection, source)
    stored = _stored(connection, row)
    shift = _shifter(_period(connection, source).start, period.start)
    setup = stored.as_input().model_copy(
        update={
            "title": stored.title.replace(source, period.name),
            "participants": stored.participants.model_copy(
                update={"cutoff": shift(stored.participants.cutoff)}
            ),
            "phases": {
                p: PhaseDatesIn(opens=shift(d.opens), due=shift(d.due))
                for p, d in stored.phases.items()
            },
        }
    )
    return create_cycle(connection, period, setup, actor=actor, copied_from=row.id)


def _shifter(start: date, to: date) -> Callable[[date], date]:
    if start.day == 1 and to.day == 1:
        months = (to.year - start.year) * 12 + to.month - start.month
        return lambda day: _months_later(day, months)
    days = (to - start).days
    return lambda day: day + timedelta(days=days)


def _months_later(day: date, months: int) -> date:
    """The same day `months` later (or earlier); a month's last day stays its month's last
    (a cut-off on 30 June becomes 31 December), a 31st a shorter month's last."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    month_end = day.day == calendar.monthrange(day.year, day.month)[1]
    return date(year, month + 1, last if month_end else min(day.day, last))


# --- starting -----------------------------------------------------------------------------


def start_cycle(connection: Connection, name: str, *, actor: str) -> StartSummary:
    """Start a draft cycle: every participant's tasks are created in one statement, and
    the set-up is fixed but for its phase dates. CycleStarted when it already has."""
    row = _row(connection, name, lock=True)
    if row.status != CycleStatus.DRAFT:
        raise CycleStarted(f"cycle {name} has already started", field="cycle")
    reviews = frozenset(CycleReview(r) for r in row.reviews)
    counts = create_tasks(connection, row.id, reviews)
    if CycleReview.UPWARD_FEEDBACK in reviews:
        questions = (row.questions or {}).get(CycleReview.UPWARD_FEEDBACK, [])
        if send_upward_requests(connection, row.id, list(questions)):
            counts[TaskKind.GIVE_UPWARD_FEEDBACK] = task_counts(connection, row.id)[
                TaskKind.GIVE_UPWARD_FEEDBACK
            ]
    connection.execute(
        update(ReviewCycle)
        .where(ReviewCycle.id == row.id)
        .values(status=CycleStatus.STARTED, started_at=func.now(), started_by=actor)
    )
    participants = counts.get(TaskKind.ACKNOWLEDGE_REVIEW, 0)
    summary = StartSummary(period=name, participants=participants, tasks=counts)
    audit(
        connection,
        actor=actor,
        action="cycle.started",
        entity="cycle",
        entity_id=name,
        before={"status": CycleStatus.DRAFT.value},
        after={"status": CycleStatus.STARTED.value, **summary.model_dump(mode="json")},
    )
    return summary
