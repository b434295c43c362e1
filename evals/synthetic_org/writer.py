"""Writes people.csv, records.jsonl and ratings.csv in the stable ingest formats of the
design notes, plus labels.json. Output is byte-for-byte deterministic: fixed column and
key order, "\\n" line endings, UTF-8."""

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.synthetic_org.model import Person, Rating, Record
from service.ingest.people import PEOPLE_COLUMNS
from service.ingest.ratings import RATING_COLUMNS

# The ingest formats are defined once, by the importers; the generator writes them.
PEOPLE_HEADER = (*PEOPLE_COLUMNS, "gender", "ethnicity", "age_band")
RATINGS_HEADER = (*RATING_COLUMNS, "calibrated_rating")


def write_people(path: Path, people: Sequence[Person]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(PEOPLE_HEADER)
        for p in people:
            manager = "" if p.manager is None else people[p.manager].employee_id
            out.writerow(
                (
                    p.employee_id,
                    p.name,
                    p.email,
                    manager,
                    p.level,
                    p.family,
                    p.department,
                    p.location,
                    p.hire_date.isoformat(),
                    p.gender,
                    p.ethnicity,
                    p.age_band,
                )
            )


def record_json(record: Record) -> dict[str, Any]:
    """One records.jsonl object, optional keys left out when empty."""
    data: dict[str, Any] = {
        "source": record.source,
        "external_id": record.external_id,
        "kind": record.kind,
        "subject": record.subject_ref,
    }
    if record.author is not None:
        data["author"] = record.author
    data["occurred_at"] = record.occurred_at.isoformat()
    if record.title is not None:
        data["title"] = record.title
    data["body"] = record.body
    if record.metadata:
        data["metadata"] = record.metadata
    return data


def write_records(path: Path, records: Sequence[Record]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record_json(record), ensure_ascii=False))
            handle.write("\n")


def write_ratings(path: Path, ratings: Sequence[Rating]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, lineterminator="\n")
        out.writerow(RATINGS_HEADER)
        for r in ratings:
            calibrated = "" if r.calibrated_rating is None else r.calibrated_rating
            out.writerow((r.cycle, r.employee_id, r.rater_id, r.rating, calibrated))


def write_labels(path: Path, labels: dict[str, Any]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        json.dump(labels, handle, ensure_ascii=False, indent=1)
        handle.write("\n")
