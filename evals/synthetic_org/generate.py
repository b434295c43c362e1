"""generate_org: the whole synthetic company, from one seed, into one folder."""

import random
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any

from evals.synthetic_org.cycle import DEFAULT_OPENS, write_cycle
from evals.synthetic_org.labels import build_labels
from evals.synthetic_org.patterns import plant_biased_feedback
from evals.synthetic_org.people import make_people
from evals.synthetic_org.projects import assign_workstreams
from evals.synthetic_org.ratings import NOTHING_PLANTED, plan_ratings, rate
from evals.synthetic_org.records import export_order, write_year
from evals.synthetic_org.scene import set_circles
from evals.synthetic_org.tree import build_tree
from evals.synthetic_org.writer import write_labels, write_people, write_ratings, write_records

RECORD_KINDS = ("work_record", "one_on_one", "feedback", "recognition", "goal", "self_note")


@dataclass(frozen=True)
class OrgSummary:
    """What was written and where; counts are exact."""

    out_dir: Path
    people_csv: Path
    records_jsonl: Path
    ratings_csv: Path
    labels_json: Path
    cycle_toml: Path
    people: int
    records: int
    ratings: int
    records_by_kind: MappingProxyType[str, int]
    planted: MappingProxyType[str, int]

    def figures(self) -> dict[str, Any]:
        """The counts as a flat dict (for a JSON line)."""
        return {
            "people": self.people,
            "records": self.records,
            "ratings": self.ratings,
            **{f"records_{kind}": count for kind, count in self.records_by_kind.items()},
            **{f"planted_{name}": count for name, count in self.planted.items()},
        }


def generate_org(
    out_dir: Path,
    *,
    people: int = 120,
    seed: int = 7,
    plant: bool = True,
    cycle_opens: date = DEFAULT_OPENS,
) -> OrgSummary:
    """Generate a company of `people` people and a year of evidence about them into
    `out_dir`: people.csv, records.jsonl, ratings.csv and labels.json, and cycle.toml: the
    set-up of a 2026-H2 review cycle whose phases run from `cycle_opens` (`cycle.py`).

    Everything is drawn from one `random.Random(seed)` in a fixed order, so the same seed
    and size give byte-identical files on any machine.

    With `plant=False` the org is the clean control of a bias eval: no harsh or lenient
    manager, no far-off rating, no biased feedback (nor its control records), and labels
    that list none. The planted patterns are still drawn and then dropped, so that the
    people and the ordinary records are exactly those of the planted org of the same seed
    and a detector's flags on the two can be compared; only the ratings after the first
    planted one are drawn differently (the random stream moves on differently).
    """
    rng = random.Random(seed)
    staff = make_people(rng, build_tree(rng, people))
    set_circles(rng, staff)
    assign_workstreams(rng, staff)
    records, scenes = write_year(rng, staff)
    pairs = plant_biased_feedback(rng, staff, scenes)
    if not plant:
        pairs = []
    records += [record for pair in pairs for record in (pair.biased, pair.control)]
    records = export_order(records)
    plan = plan_ratings(rng, staff)
    if not plant:
        plan = NOTHING_PLANTED
    ratings = rate(rng, staff, plan)
    labels = build_labels(
        seed=seed,
        people=staff,
        records=records,
        plan=plan,
        pairs=pairs,
        ratings_by_person={r.employee_id: r.rating for r in ratings},
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = OrgSummary(
        out_dir=out_dir,
        people_csv=out_dir / "people.csv",
        records_jsonl=out_dir / "records.jsonl",
        ratings_csv=out_dir / "ratings.csv",
        labels_json=out_dir / "labels.json",
        cycle_toml=out_dir / "cycle.toml",
        people=len(staff),
        records=len(records),
        ratings=len(ratings),
        records_by_kind=_by_kind(r.kind for r in records),
        planted=MappingProxyType(
            {
                "harsh_managers": len(plan.harsh),
                "lenient_managers": len(plan.lenient),
                "mismatched_ratings": len(plan.mismatched),
                "biased_feedback": len(pairs),
            }
        ),
    )
    write_people(summary.people_csv, staff)
    write_records(summary.records_jsonl, records)
    write_ratings(summary.ratings_csv, ratings)
    write_labels(summary.labels_json, labels)
    write_cycle(summary.cycle_toml, cycle_opens)
    return summary


def _by_kind(kinds: Any) -> MappingProxyType[str, int]:
    counts = Counter(kinds)
    return MappingProxyType({kind: counts[kind] for kind in RECORD_KINDS})
