"""Ratings for the last cycle (2026-H1), given by each person's manager.

Most ratings match the fair rating (true performance rounded) with a little noise. Planted
on top, and labelled: a manager (about one per 120 people) who rates everyone one point
harder than the evidence, one who rates one point softer, and a handful of single ratings
two or more points away from fair; a clean control org (`NOTHING_PLANTED`) has none of
them. A calibration panel fills in most calibrated ratings, moving some of the off ones
one step back toward fair.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evals.synthetic_org.dates import RATING_CYCLE
from evals.synthetic_org.model import Person, Rating

_NOISE_SHARE = 0.15
_CALIBRATED_SHARE = 0.85
_PANEL_FIX_SHARE = 0.5
_MIN_REPORTS = 4


@dataclass(frozen=True)
class RatingPlan:
    harsh: tuple[int, ...]  # manager indices
    lenient: tuple[int, ...]
    mismatched: tuple[int, ...]  # indices of people with one far-off rating


NOTHING_PLANTED = RatingPlan((), (), ())  # the clean control org: every rating just noisy


def plan_ratings(rng: random.Random, people: Sequence[Person]) -> RatingPlan:
    per_kind = max(1, round(len(people) / 120))
    managers = [p for p in people if p.manager is not None and len(p.reports) >= _MIN_REPORTS]
    rng.shuffle(managers)
    harsh = _pick_managers(people, managers, per_kind, lambda fair: fair >= 2)
    rest = [m for m in managers if m.index not in harsh]
    lenient = _pick_managers(people, rest, per_kind, lambda fair: fair <= 4)
    skewed = set(harsh) | set(lenient)
    pool = [p for p in people if p.manager is not None and p.manager not in skewed]
    count = min(len(pool), max(3, round(len(people) / 40)))
    mismatched = sorted(p.index for p in rng.sample(pool, count))
    return RatingPlan(tuple(sorted(harsh)), tuple(sorted(lenient)), tuple(mismatched))


def _pick_managers(
    people: Sequence[Person], candidates: list[Person], count: int, room: Callable[[int], bool]
) -> list[int]:
    """Managers whose reports leave room for the offset (a harsh rater cannot go below 1),
    so the planted offset shows in the numbers."""
    fits = []
    for manager in candidates:
        fairs = [people[i].fair_rating for i in manager.reports]
        if all(room(f) for f in fairs):
            fits.append(manager.index)
        if len(fits) == count:
            break
    if not fits:
        raise ValueError("no manager with enough reports to plant a rating offset")
    return fits


def rate(rng: random.Random, people: Sequence[Person], plan: RatingPlan) -> list[Rating]:
    offsets = dict.fromkeys(plan.harsh, -1) | dict.fromkeys(plan.lenient, 1)
    mismatched = set(plan.mismatched)
    ratings = []
    for person in people:
        if person.manager is None:
            continue
        fair = person.fair_rating
        if person.index in mismatched:
            rating = _far_off(rng, fair)
        elif person.manager in offsets:
            rating = _clamp(fair + offsets[person.manager])
        else:
            rating = _noisy(rng, fair)
        ratings.append(
            Rating(
                cycle=RATING_CYCLE,
                employee_id=person.employee_id,
                rater_id=people[person.manager].employee_id,
                rating=rating,
                calibrated_rating=_calibrated(rng, rating, fair),
            )
        )
    return ratings


def _far_off(rng: random.Random, fair: int) -> int:
    if fair < 3 or (fair == 3 and rng.random() < 0.5):
        return fair + 2
    return fair - 2


def _noisy(rng: random.Random, fair: int) -> int:
    if rng.random() >= _NOISE_SHARE:
        return fair
    moved = fair + rng.choice((-1, 1))
    return moved if 1 <= moved <= 5 else fair


def _calibrated(rng: random.Random, rating: int, fair: int) -> int | None:
    if rng.random() >= _CALIBRATED_SHARE:
        return None
    if rating != fair and rng.random() < _PANEL_FIX_SHARE:
        return rating + (1 if fair > rating else -1)
    return rating


def _clamp(value: int) -> int:
    return max(1, min(5, value))
