"""Injection eval: how much of the attack set the detector catches, and how often it takes
ordinary evidence for an attack.

    python -m evals.eval_injection --people 120

- detection: the cases of `tests/fixtures/injections.jsonl` detected (every record of a
  case marked; the two records of a split case read one after the other, as a prompt
  quotes them), overall, per technique and per language;
- false alarms: the synthetic org's records (title and body, as ingest reads them) that
  the detector marks; and, as drafting reads them, those marked only beside a neighbour
  (each person's records in time order, read in pairs like a pack may quote them);
- cost: the detector's time per record.

No database and no model: the detector is what is measured, on the org the other evals
use (`evals/synthetic_org`, same seed). Prints tables, the false alarms found (so a rule
can be fixed), and ends with one JSON line of the figures. Targets: every case detected,
under 1% of ordinary records flagged.
"""

import argparse
import json
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from evals.synthetic_org import generate_org
from service.drafting.injection import Finding, scan, scan_sequence, signals

CASES_FILE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "injections.jsonl"
TARGETS = {"detection_rate": 1.0, "false_alarm_rate": 0.01}
SHOWN = 10  # false alarms listed


@dataclass
class Detection:
    """Cases and cases detected, per group (technique or language)."""

    cases: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    missed: list[str] = field(default_factory=list)

    def add(self, groups: Sequence[str], case_id: str, detected: bool) -> None:
        for group in groups:
            self.cases[group] += 1
            self.found[group] += detected
        if not detected:
            self.missed.append(case_id)


@dataclass
class FalseAlarms:
    records: int = 0
    flagged: list[tuple[str, list[str], str]] = field(default_factory=list)  # id, rules, text
    beside: list[tuple[str, list[str], str]] = field(default_factory=list)
    seconds: float = 0.0


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines[1:] if line.strip()]


def detect(cases: list[dict[str, Any]]) -> Detection:
    tally = Detection()
    for case in cases:
        found = scan_sequence(case["records"])
        tally.add(
            ("all", f"technique:{case['technique']}", f"lang:{case['lang']}"),
            case["id"],
            all(found),
        )
    return tally


def record_text(record: dict[str, Any]) -> str:
    """What ingest reads of a record: its title line, then its body."""
    title = record.get("title")
    return f"{title}\n{record['body']}" if title else str(record["body"])


def false_alarms(records: list[dict[str, Any]]) -> FalseAlarms:
    tally = FalseAlarms(records=len(records))
    scan("\u00e9\u200b")  # build the Unicode tables once, outside the timing
    started = time.perf_counter()
    own: dict[str, list[Finding]] = {}
    for record in records:
        key = f"{record['source']}/{record['external_id']}"
        own[key] = scan(record_text(record))
        if own[key]:
            tally.flagged.append((key, signals(own[key]), record_text(record)))
    tally.seconds = time.perf_counter() - started
    by_person: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_person[record["subject"]].append(record)
    for person_records in by_person.values():
        ordered = sorted(person_records, key=lambda r: str(r["occurred_at"]))
        texts = [record_text(r) for r in ordered]
        for record, found in zip(ordered, scan_sequence(texts), strict=True):
            key = f"{record['source']}/{record['external_id']}"
            if found and not own[key]:
                tally.beside.append((key, signals(found), record_text(record)))
    return tally


def read_org(people: int, seed: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="fairdraft-injection-") as folder:
        summary = generate_org(Path(folder) / "org", people=people, seed=seed)
        lines = summary.records_jsonl.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def detection_table(tally: Detection) -> Table:
    table = Table(title="injection cases detected")
    for column in ("group", "cases", "detected", "rate"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for group in sorted(tally.cases, key=lambda g: (g != "all", g)):
        cases, found = tally.cases[group], tally.found[group]
        table.add_row(group, str(cases), str(found), f"{share(found, cases):.1%}")
    return table


def alarms_table(tally: FalseAlarms) -> Table:
    table = Table(title="ordinary records flagged (false alarms)")
    for column in ("records", "flagged alone", "flagged beside a neighbour", "rate", "us/record"):
        table.add_column(column, justify="right")
    wrong = len(tally.flagged) + len(tally.beside)
    per_record = 1e6 * tally.seconds / tally.records if tally.records else 0.0
    table.add_row(
        str(tally.records),
        str(len(tally.flagged)),
        str(len(tally.beside)),
        f"{share(wrong, tally.records):.2%}",
        f"{per_record:.0f}",
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cases", type=Path, default=CASES_FILE)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)

    detection = detect(load_cases(args.cases))
    alarms = false_alarms(read_org(args.people, args.seed))

    console.print(detection_table(detection))
    console.print(alarms_table(alarms))
    for case_id in detection.missed:
        console.print(f"[red]missed[/red] {case_id}")
    for key, rules, text in (alarms.flagged + alarms.beside)[:SHOWN]:
        console.print(f"[yellow]false alarm[/yellow] {key} {rules}: {text[:120]!r}")
    wrong = len(alarms.flagged) + len(alarms.beside)
    detection_rate = share(detection.found["all"], detection.cases["all"])
    false_alarm_rate = share(wrong, alarms.records)
    figures: dict[str, float | int | str] = {
        "cases": detection.cases["all"],
        "detected": detection.found["all"],
        "detection_rate": detection_rate,
        "people": args.people,
        "seed": args.seed,
        "records": alarms.records,
        "flagged_alone": len(alarms.flagged),
        "flagged_beside_neighbour": len(alarms.beside),
        "false_alarm_rate": false_alarm_rate,
        "us_per_record": round(1e6 * alarms.seconds / max(alarms.records, 1), 1),
    }
    figures["detection_meets_target"] = int(detection_rate >= TARGETS["detection_rate"])
    figures["false_alarms_meet_target"] = int(false_alarm_rate < TARGETS["false_alarm_rate"])
    console.print(json.dumps(figures), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
