"""labels.json: the planted truth that evals score against.

Besides the planted patterns (rating offsets, biased wording, far-off ratings) it lists,
for each person and review period, the records a good draft must draw on: the most
impactful work records and kudos (accomplishments), the feedback records that carry the
person's most frequent feedback themes, and the goals set or checked in that period.
"""

from collections import Counter
from collections.abc import Sequence
from typing import Any

from evals.synthetic_org.dates import PERIODS, period_of
from evals.synthetic_org.model import Person, Record
from evals.synthetic_org.patterns import BiasedPair
from evals.synthetic_org.ratings import RatingPlan

_ACCOMPLISHMENTS = 3
_THEMES = 2
_PER_THEME = 2
_GOALS = 2
_MIN_KEY = 4
_MAX_KEY = 10
_ACCOMPLISHMENT_FLOOR = 0.35  # below this a record is routine work


def build_labels(
    *,
    seed: int,
    people: Sequence[Person],
    records: Sequence[Record],
    plan: RatingPlan,
    pairs: Sequence[BiasedPair],
    ratings_by_person: dict[str, int],
) -> dict[str, Any]:
    biased = {(p.biased.source, p.biased.external_id) for p in pairs}
    return {
        "seed": seed,
        "people": len(people),
        "period_bounds": {
            name: [start.isoformat(), end.isoformat()] for name, (start, end) in PERIODS.items()
        },
        "true_performance": {p.employee_id: p.true_performance for p in people},
        "potential": {p.employee_id: p.potential for p in people},
        "fair_rating": {p.employee_id: p.fair_rating for p in people},
        "harsh_managers": [_offset(people[i], -1) for i in plan.harsh],
        "lenient_managers": [_offset(people[i], 1) for i in plan.lenient],
        "mismatched_ratings": [
            {
                "employee_id": people[i].employee_id,
                "rating": ratings_by_person[people[i].employee_id],
                "fair_rating": people[i].fair_rating,
            }
            for i in plan.mismatched
        ],
        "biased_feedback": [_biased_entry(pair) for pair in pairs],
        "key_evidence": key_evidence(people, records, biased),
    }


def _offset(manager: Person, offset: int) -> dict[str, Any]:
    return {"manager_id": manager.employee_id, "offset": offset}


def _biased_entry(pair: BiasedPair) -> dict[str, Any]:
    return {
        "source": pair.biased.source,
        "external_id": pair.biased.external_id,
        "subject": pair.biased.subject,
        "author": pair.biased.author,
        "style": pair.style,
        "event": pair.event,
        "control": {
            "source": pair.control.source,
            "external_id": pair.control.external_id,
            "subject": pair.control.subject,
        },
    }


def key_evidence(
    people: Sequence[Person], records: Sequence[Record], biased: set[tuple[str, str]]
) -> dict[str, dict[str, list[dict[str, str]]]]:
    buckets: dict[tuple[str, str], list[Record]] = {}
    for record in records:
        if (record.source, record.external_id) in biased:
            continue
        key = (record.subject, period_of(record.occurred_at.date()))
        buckets.setdefault(key, []).append(record)
    return {
        person.employee_id: {
            period: _pick(buckets.get((person.employee_id, period), [])) for period in PERIODS
        }
        for person in people
    }


def _pick(records: list[Record]) -> list[dict[str, str]]:
    """Accomplishments, then theme-carrying feedback, then goals; topped up with the next
    most impactful work when a period is thin."""

    def rank(r: Record) -> tuple[float, str, str]:
        return (-r.impact, r.occurred_at.isoformat(), r.external_id)

    work = sorted((r for r in records if r.kind in ("work_record", "recognition")), key=rank)
    chosen = [(r, "accomplishment") for r in work if r.impact >= _ACCOMPLISHMENT_FLOOR]
    chosen = chosen[:_ACCOMPLISHMENTS]
    feedback = [r for r in records if r.kind == "feedback" and r.theme]
    counts = Counter(r.theme for r in feedback)
    themes = sorted(counts, key=lambda t: (-counts[t], t or ""))[:_THEMES]
    for theme in themes:
        carrying = sorted((r for r in feedback if r.theme == theme), key=rank)
        chosen += [(r, "feedback_theme") for r in carrying[-_PER_THEME:]]
    goals = sorted((r for r in records if r.kind == "goal"), key=rank)
    chosen += [(r, "goal") for r in goals[:_GOALS]]
    taken = {id(r) for r, _ in chosen}
    for record in work:
        if len(chosen) >= _MIN_KEY:
            break
        if id(record) not in taken:
            chosen.append((record, "accomplishment"))
    return [
        {"source": r.source, "external_id": r.external_id, "why": why}
        for r, why in chosen[:_MAX_KEY]
    ]
