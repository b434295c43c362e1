"""The ratings workflow: a rater proposes, a calibration panel calibrates, HR finalises.

A proposal is upserted on (cycle, person, rater), so proposing again replaces the rater's
own earlier value. A calibration applies to all of a person's ratings of the cycle, because
the panel settles one rating per person whoever proposed it. Once a person's ratings are
finalised (`finalise_rating`, only after the cycle's rating check) none
of them changes again: the check saw them as they are. A write that changes nothing is
skipped, so it neither leaves an audit event nor moves `updated_at`, which would make the
gate ask for the bias report again. Every change is an audit event with before and after.
Proposals go into cycles HR has set up; none of these functions creates a cycle.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased

from domain.errors import Conflict, Invalid, NotFound
from domain.phases import Phase
from service.audit import audit, audit_rows
from service.cycles.store import CycleScale, cycle_scale
from service.db.models import BiasReport, CyclePhase, Person, Rating, ReviewCycle


class RatingRefused(Invalid):
    """The rating change is not allowed; the message says why (an HTTP 4xx, not a 500)."""


class RatingFinal(Conflict):
    """The rating is final: a conflict with its state rather than a bad value."""


class NotChecked(Conflict):
    """The cycle's rating check has not seen the ratings as they are: run it first."""


class UnknownCycle(NotFound):
    """No review cycle by that name. Cycles are set up by HR (ratings import, panel
    set-up); a rater's proposal never creates one, so a typo or a hostile name cannot
    leave a stray cycle behind."""


@dataclass(frozen=True)
class RatingView:
    id: int
    cycle: str
    person_id: int
    employee_id: str
    rater_id: int
    rater_employee_id: str
    rating: int  # proposed by the rater
    calibrated_rating: int | None  # set by the calibration panel
    finalised_by: str | None
    finalised_at: datetime | None
    updated_at: datetime

    @property
    def final(self) -> bool:
        return self.finalised_at is not None


class CalibrationClosed(Conflict):
    """HR closed the cycle's calibration: its ratings are what the bias report saw."""


def _open_for_ratings(connection: Connection, scale: CycleScale) -> None:
    """Hold the cycle row (FOR SHARE: closing calibration takes it FOR UPDATE, so a rating
    written now and a close cannot cross) and refuse once calibration is closed."""
    closed = connection.execute(
        select(CyclePhase.closed_at)
        .select_from(ReviewCycle)
        .outerjoin(
            CyclePhase,
            (CyclePhase.cycle_id == ReviewCycle.id) & (CyclePhase.phase == Phase.CALIBRATION),
        )
        .where(ReviewCycle.id == scale.id)
        .with_for_update(read=True, of=ReviewCycle)
    ).scalar_one_or_none()
    if closed is not None:
        raise CalibrationClosed(
            f"calibration of {scale.name} is closed: its ratings no longer change",
            field="rating",
        )


def propose_rating(
    connection: Connection, cycle: str, person_id: int, rater_id: int, rating: int, *, actor: str
) -> RatingView:
    """Store the rater's proposed rating for the person in an existing cycle (an unknown
    one is refused and nothing is created); refused outside the cycle's scale or once
    finalised."""
    scale = cycle_scale(connection, cycle)
    if scale is None:
        raise UnknownCycle(
            f"cycle: no review cycle named {cycle[:64]!r}; HR sets cycles up", field="cycle"
        )
    _check_scale(scale, rating, "rating")
    _open_for_ratings(connection, scale)
    _require_people(connection, {person_id, rater_id})
    current = _locked(connection, scale.id, person_id)
    _refuse_finalised(current, cycle, person_id)
    before = next((r for r in current if r.rater_id == rater_id), None)
    if before is not None and before.rating == rating:
        return before
    statement = pg_insert(Rating).values(
        cycle_id=scale.id, person_id=person_id, rater_id=rater_id, rating=rating
    )
    statement = statement.on_conflict_do_update(
        index_elements=["cycle_id", "person_id", "rater_id"],
        set_={"rating": statement.excluded.rating, "updated_at": func.now()},
        where=Rating.finalised_at.is_(None),
    )
    rating_id = connection.execute(statement.returning(Rating.id)).scalar_one_or_none()
    if rating_id is None:  # finalised between our read and the write
        raise RatingFinal(
            f"the ratings of person {person_id} in {cycle} were just finalised", field="rating"
        )
    after = _views(connection, _query().where(Rating.id == rating_id))[0]
    _audit(connection, actor, "rating.proposed", [(before, after)])
    return after


def calibrate_rating(
    connection: Connection, cycle: str, person_id: int, calibrated: int, *, actor: str
) -> list[RatingView]:
    """Set the panel's calibrated rating on every rating of the person in the cycle;
    refused when nobody proposed one yet or when they are finalised."""
    scale = cycle_scale(connection, cycle)
    if scale is None:
        raise UnknownCycle(f"cycle: no review cycle named {cycle[:64]!r}", field="cycle")
    _check_scale(scale, calibrated, "calibrated_rating")
    _open_for_ratings(connection, scale)
    current = _locked(connection, scale.id, person_id)
    if not current:
        raise RatingRefused(
            f"person {person_id} has no proposed rating in {cycle}: a rating is proposed "
            "before it is calibrated",
            field="rating",
        )
    _refuse_finalised(current, cycle, person_id)
    changing = [r for r in current if r.calibrated_rating != calibrated]
    if not changing:
        return current
    connection.execute(
        update(Rating)
        .where(Rating.id.in_([r.id for r in changing]))
        .values(calibrated_rating=calibrated, updated_at=func.now())
    )
    after = _views(connection, _query().where(Rating.id.in_([r.id for r in current])))
    by_id = {r.id: r for r in after}
    _audit(connection, actor, "rating.calibrated", [(r, by_id[r.id]) for r in changing])
    return after


def finalise_rating(connection: Connection, cycle: str, person_id: int, *, by: str) -> None:
    """Finalise a person's ratings in a cycle once the cycle's rating check has seen them."""
    ratings = connection.execute(
        select(Rating.id, Rating.updated_at, Rating.finalised_at)
        .join(ReviewCycle, ReviewCycle.id == Rating.cycle_id)
        .where(ReviewCycle.name == cycle, Rating.person_id == person_id)
    ).all()
    if not ratings:
        raise NotFound(f"no rating for person {person_id} in cycle {cycle}")
    checked = current_report_at(connection, cycle)
    if checked is None:
        raise NotChecked(
            f"run the bias report for {cycle} first: ratings can be finalised only after the "
            "cycle's rating check has seen them as they are now"
        )
    # updated_at is kept: finalising does not change a rating, so the cycle's report still
    # describes the ratings as they are and the next person can be finalised without a rerun.
    connection.execute(
        update(Rating)
        .where(Rating.id.in_([r.id for r in ratings]), Rating.finalised_at.is_(None))
        .values(finalised_by=by, finalised_at=func.now(), updated_at=Rating.updated_at)
    )
    audit(
        connection,
        actor=by,
        action="rating.finalised",
        entity="person",
        entity_id=str(person_id),
        after={"cycle": cycle, "report_at": checked.isoformat()},
    )


def current_report_at(connection: Connection, cycle: str) -> datetime | None:
    """When the cycle's latest bias report ran, if it saw the ratings as they are now (no
    rating changed after it); None when there is no report or a rating changed since. The
    one rule for "the report is current": finalising a rating and closing calibration
    (service.cycles.release) both ask it."""
    last_change = last_rating_change(connection, cycle)
    checked: datetime | None = connection.execute(
        select(func.max(BiasReport.created_at)).where(BiasReport.cycle == cycle)
    ).scalar_one()
    if checked is None or (last_change is not None and checked < last_change):
        return None
    return checked


def last_rating_change(connection: Connection, cycle: str) -> datetime | None:
    return connection.execute(
        select(func.max(Rating.updated_at))
        .join(ReviewCycle, ReviewCycle.id == Rating.cycle_id)
        .where(ReviewCycle.name == cycle)
    ).scalar_one()


def cycle_ratings(
    connection: Connection, cycle: str, person_ids: Collection[int] | None = None
) -> list[RatingView]:
    """The cycle's ratings (of the given people, or everyone), by person then rater, in
    one query; empty for a cycle that does not exist."""
    query = _query().where(ReviewCycle.name == cycle)
    if person_ids is not None:
        query = query.where(Rating.person_id.in_(set(person_ids)))
    return _views(connection, query)


def _check_scale(scale: CycleScale, value: int, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RatingRefused(f"{field}: {value!r} is not a whole number", field="rating")
    if not scale.low <= value <= scale.high:
        raise RatingRefused(
            f"{field}: {value} is outside the scale of {scale.name}, {scale.low} to {scale.high}",
            field="rating",
        )


def _require_people(connection: Connection, ids: set[int]) -> None:
    found = set(connection.execute(select(Person.id).where(Person.id.in_(ids))).scalars())
    missing = sorted(ids - found)
    if missing:
        raise RatingRefused(f"no person with id {', '.join(map(str, missing))}", field="rating")


def _locked(connection: Connection, cycle_id: int, person_id: int) -> list[RatingView]:
    """The person's ratings of the cycle, locked against a concurrent finalisation until
    this transaction ends."""
    query = (
        _query()
        .where(Rating.cycle_id == cycle_id, Rating.person_id == person_id)
        .with_for_update(of=Rating)
    )
    return _views(connection, query)


def _refuse_finalised(current: Sequence[RatingView], cycle: str, person_id: int) -> None:
    final = next((r for r in current if r.final), None)
    if final is not None:
        raise RatingFinal(
            f"the ratings of person {person_id} in {cycle} were finalised by "
            f"{final.finalised_by}: they no longer change",
            field="rating",
        )


def _query() -> Select[*tuple[Any, ...]]:
    rater = aliased(Person)
    return (
        select(
            Rating.id,
            ReviewCycle.name.label("cycle"),
            Rating.person_id,
            Person.employee_id,
            Rating.rater_id,
            rater.employee_id.label("rater_employee_id"),
            Rating.rating,
            Rating.calibrated_rating,
            Rating.finalised_by,
            Rating.finalised_at,
            Rating.updated_at,
        )
        .join(ReviewCycle, ReviewCycle.id == Rating.cycle_id)
        .join(Person, Person.id == Rating.person_id)
        .join(rater, rater.id == Rating.rater_id)
        .order_by(Rating.person_id, Rating.rater_id)
    )


def _views(connection: Connection, query: Select[*tuple[Any, ...]]) -> list[RatingView]:
    return [RatingView(**row._mapping) for row in connection.execute(query)]


def _audit(
    connection: Connection,
    actor: str,
    action: str,
    changes: Sequence[tuple[RatingView | None, RatingView]],
) -> None:
    """Entity ids read like ingest's (cycle/employee/rater), so one rating's history reads
    as one list whether it came from a file or from the workflow."""
    audit_rows(
        connection,
        actor=actor,
        action=action,
        entity="rating",
        changes=[
            (
                f"{after.cycle}/{after.employee_id}/{after.rater_employee_id}",
                None if before is None else _values(before),
                _values(after),
            )
            for before, after in changes
        ],
    )


def _values(view: RatingView) -> dict[str, int | None]:
    return {"rating": view.rating, "calibrated_rating": view.calibrated_rating}
