"""Bias eval: does the bias check find what the synthetic org plants, and stay quiet on the
clean control org?

    python -m evals.eval_bias --seeds 10 --people 120

For each seed it generates two orgs into a temporary folder, the planted one and the clean
control (`generate_org(plant=False)`: the same people and ordinary records, nothing
planted), reads the files as an ingest would (people.csv, records.jsonl, ratings.csv; the
labels only to score) and runs the bias stage's pure functions on them. No database.

Patterns, and when an instance counts as found:

- `harsh_manager` / `generous_manager`: the labelled manager (offset -1 / +1) is flagged
  by `manager_leniency` with that direction (`check_ratings(...).managers`).
- `mismatched_rating`: the labelled person is listed by `mismatched_ratings` (outside the
  prediction interval; `check_ratings(...).mismatched`).
- `biased_feedback` (the gender-coded or personality-focused wording): the planted record
  gets at least one flag of a `PATTERN_FLAGS` kind from `profile_text`, with the sense
  parser as the gate and the report use it (`--no-parse`: word lists alone). Those are the
  flags that judge who a person is rather than what they did: personality criticism,
  gender-coded descriptors, and vague praise (whose list holds the personality praise,
  "lovely personality", "pleasure to work with"). Hedging and doubt raisers are the
  writer's uncertainty, a different pattern the generator does not plant; ordinary
  feedback carries a few ("tends to"), so they are reported as a rate per 100 ordinary
  feedback records and not counted as false flags of this pattern.

A seed finds a pattern when every planted instance of it is found (one harsh and one
generous manager, three far-off ratings, ~12 biased records at 120 people); instance
recall is reported too. A false flag is a flag of a pattern on anything not planted with
it: another manager, another person, an ordinary feedback record or a planted record's
matched control. A clean seed raises a false flag for a pattern when it flags anything for
it (nothing is planted there).

Ratings are each person's manager rating (`rating`, not the panel's `calibrated_rating`:
the planted offsets are the manager's) of the latest cycle in ratings.csv, 2026-H1. Their
evidence features come from the person's records dated inside that cycle's period
(`domain.periods.parse_period`), as the bias check of that cycle would see them;
`--evidence year` uses every record of the year instead, which a real H1 cycle could not
(most of it is dated after the cycle closed): a diagnostic of how detection depends on the
amount of evidence, not a figure to compare with the targets.

Prints a table per pattern and ends with one JSON line of the figures.
"""

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from statistics import mean
from typing import Any

from rich.console import Console
from rich.table import Table

from domain.periods import Period, parse_period
from evals.synthetic_org import generate_org
from service.bias.evidence_features import evidence_features
from service.bias.language import FLAG_PRIORITY, name_words, profile_text
from service.bias.nlp import SenseParser, load_sense_parser
from service.bias.ratings import PersonRating, RatingsCheck, check_ratings

PATTERNS = ("harsh_manager", "generous_manager", "mismatched_rating", "biased_feedback")
ANY_FLAG_ROW = "biased_feedback_any_flag"  # the same pattern, counting every flag kind
PATTERN_FLAGS = frozenset({"personality_criticism", "gender_coded", "vague_praise"})
EVIDENCE_WINDOWS = ("cycle", "year")
TARGET_FOUND = 0.9  # issue 6: every pattern found in at least 9 of 10 seeds
TARGET_FALSE = 0.1  # and false flags in at most 1 of 10 clean seeds

Row = dict[str, str]
Record = dict[str, Any]


@dataclass(frozen=True)
class OrgFiles:
    """A generated org as its files say it: rows and records as read, labels as truth."""

    people: list[Row]
    records: list[Record]
    ratings: list[Row]
    labels: dict[str, Any]


def read_org(folder: Path) -> OrgFiles:
    with (folder / "people.csv").open(encoding="utf-8", newline="") as handle:
        people = list(csv.DictReader(handle))
    with (folder / "ratings.csv").open(encoding="utf-8", newline="") as handle:
        ratings = list(csv.DictReader(handle))
    with (folder / "records.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    return OrgFiles(people, records, ratings, labels)


@dataclass(frozen=True)
class PatternScore:
    """One pattern in one org: planted instances, those found, and flags on anything else."""

    planted: int
    found: int
    false_flags: int

    @property
    def all_found(self) -> bool:
        return self.found == self.planted


@dataclass(frozen=True)
class FeedbackScore:
    """The feedback-language half of one org's score."""

    pattern: PatternScore  # flags of a PATTERN_FLAGS kind
    any_flag: PatternScore  # the same with every flag kind counted (doubt raisers, hedging)
    by_style: dict[str, tuple[int, int]]  # labelled style -> (found, planted)
    ordinary: int  # feedback records neither planted nor a planted one's control
    ordinary_flags: dict[str, int]  # flag measure -> ordinary records with that flag
    missed: list[str]


@dataclass(frozen=True)
class OrgScore:
    patterns: dict[str, PatternScore]  # PATTERNS, plus ANY_FLAG_ROW
    feedback: FeedbackScore
    r_squared: float  # of the evidence model behind the ratings analyses
    missed: list[str]  # planted instances not found, for the report


# ---------------------------------------------------------------- feedback language


def _key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return (str(entry["source"]), str(entry["external_id"]))


def flag_kinds(
    text: str,
    names: frozenset[str] = frozenset(),
    *,
    parser: SenseParser | None = None,
    subject: str = "",
) -> set[str]:
    """The measures of the flags `profile_text` puts on one text about `subject`."""
    return {
        flag.measure for flag in profile_text(text, names, parser=parser, subject=subject).flags
    }


def score_feedback(org: OrgFiles, parser: SenseParser | None = None) -> FeedbackScore:
    """Planted biased records found, and flags on their controls and on ordinary feedback,
    counting PATTERN_FLAGS kinds and, separately, any flag at all. With `parser` the flags
    are the product's (only those whose phrase describes the person); without, the word
    lists' alone."""
    planted = {_key(e): str(e["style"]) for e in org.labels["biased_feedback"]}
    controls = {_key(e["control"]) for e in org.labels["biased_feedback"]}
    found: Counter[str] = Counter()
    found_any = false_flags = false_any = ordinary = 0
    ordinary_flags: Counter[str] = Counter()
    missed: list[str] = []
    names = name_words(row["name"] for row in org.people)
    subjects = {row[k]: row["name"] for row in org.people for k in ("employee_id", "email")}
    for record in org.records:
        if record.get("kind") != "feedback":
            continue
        key = _key(record)
        subject = subjects.get(str(record.get("subject")), "")
        kinds = flag_kinds(str(record.get("body") or ""), names, parser=parser, subject=subject)
        hit = bool(kinds & PATTERN_FLAGS)
        if key in planted:
            found[planted[key]] += hit
            found_any += bool(kinds)
            if not hit:
                missed.append(f"biased_feedback {key[1]} ({planted[key]}: {sorted(kinds)})")
            continue
        false_flags += hit
        false_any += bool(kinds)
        if key not in controls:
            ordinary += 1
            ordinary_flags.update(kinds)
    styles = Counter(planted.values())
    return FeedbackScore(
        pattern=PatternScore(len(planted), sum(found.values()), false_flags),
        any_flag=PatternScore(len(planted), found_any, false_any),
        by_style={style: (found[style], n) for style, n in sorted(styles.items())},
        ordinary=ordinary,
        ordinary_flags={measure: ordinary_flags[measure] for measure in FLAG_PRIORITY},
        missed=missed,
    )


# ---------------------------------------------------------------- ratings


def latest_cycle(ratings: Sequence[Row]) -> str:
    """The cycle the eval scores: the latest one in ratings.csv (cycle names sort by
    time: 2026-H1 < 2026-H2)."""
    cycles = sorted({row["cycle"] for row in ratings})
    if not cycles:
        raise ValueError("ratings.csv holds no rating")
    return cycles[-1]


def _day(record: Mapping[str, Any]) -> date:
    return datetime.fromisoformat(str(record["occurred_at"])).date()


def records_by_person(org: OrgFiles, window: Period | None) -> dict[str, list[Record]]:
    """Each person's records (by employee id; a subject may be given by email) dated inside
    `window`, or all of them when `window` is None."""
    ids = {row["email"]: row["employee_id"] for row in org.people}
    out: dict[str, list[Record]] = {}
    for record in org.records:
        subject = str(record["subject"])
        if window is not None and not window.start <= _day(record) <= window.end:
            continue
        out.setdefault(ids.get(subject, subject), []).append(record)
    return out


def person_ratings(org: OrgFiles, evidence: str = "cycle") -> tuple[list[PersonRating], str]:
    """One PersonRating per rated person of the latest cycle: the manager's rating, the
    manager from people.csv, and evidence features over the cycle period (or the year)."""
    if evidence not in EVIDENCE_WINDOWS:
        raise ValueError(f"evidence must be one of {EVIDENCE_WINDOWS}")
    cycle = latest_cycle(org.ratings)
    window = parse_period(cycle) if evidence == "cycle" else None
    records = records_by_person(org, window)
    number = {row["employee_id"]: i for i, row in enumerate(org.people)}
    manager = {row["employee_id"]: row["manager_id"] for row in org.people}
    out = []
    for row in org.ratings:
        if row["cycle"] != cycle:
            continue
        person = row["employee_id"]
        boss = manager.get(person) or None
        out.append(
            PersonRating(
                person_id=number[person],
                manager_id=number[boss] if boss else None,
                rating=float(row["rating"]),
                evidence=evidence_features(records.get(person, [])),
            )
        )
    return out, cycle


def score_ratings(
    org: OrgFiles, evidence: str = "cycle"
) -> tuple[dict[str, PatternScore], float, list[str]]:
    """Harsh and generous managers and far-off ratings found, and flags on anyone else."""
    ratings, _ = person_ratings(org, evidence)
    return score_check(org, check_ratings(ratings))


def planted_ratings(org: OrgFiles) -> dict[str, set[int]]:
    """The labelled ratings patterns, as the person numbers `person_ratings` uses."""
    number = {row["employee_id"]: i for i, row in enumerate(org.people)}
    labels = org.labels
    return {
        "harsh_manager": {number[e["manager_id"]] for e in labels["harsh_managers"]},
        "generous_manager": {number[e["manager_id"]] for e in labels["lenient_managers"]},
        "mismatched_rating": {number[e["employee_id"]] for e in labels["mismatched_ratings"]},
    }


def score_check(
    org: OrgFiles, check: RatingsCheck
) -> tuple[dict[str, PatternScore], float, list[str]]:
    """`score_ratings` from a check already run (one evidence fit and one mixed model for
    managers, single ratings and R^2, as the bias report runs them)."""
    name = {i: row["employee_id"] for i, row in enumerate(org.people)}
    planted = planted_ratings(org)
    leniency = [m for m in check.managers if m.flagged]
    flagged = {
        "harsh_manager": {m.manager_id for m in leniency if m.direction == "harsh"},
        "generous_manager": {m.manager_id for m in leniency if m.direction == "generous"},
        "mismatched_rating": {m.person_id for m in check.mismatched},
    }
    scores = {}
    missed = []
    for pattern, truth in planted.items():
        hits = flagged[pattern]
        scores[pattern] = PatternScore(len(truth), len(truth & hits), len(hits - truth))
        missed += [f"{pattern} {name[i]}" for i in sorted(truth - hits)]
    return scores, check.model.r_squared, missed


# ---------------------------------------------------------------- one org, many seeds


def score_org(
    org: OrgFiles, evidence: str = "cycle", parser: SenseParser | None = None
) -> OrgScore:
    feedback = score_feedback(org, parser)
    ratings, r_squared, missed = score_ratings(org, evidence)
    return OrgScore(
        patterns={
            **ratings,
            "biased_feedback": feedback.pattern,
            ANY_FLAG_ROW: feedback.any_flag,
        },
        feedback=feedback,
        r_squared=r_squared,
        missed=missed + feedback.missed,
    )


@dataclass(frozen=True)
class SeedScore:
    seed: int
    planted: OrgScore
    clean: OrgScore


def score_seed(
    seed: int,
    people: int,
    folder: Path,
    evidence: str = "cycle",
    parser: SenseParser | None = None,
) -> SeedScore:
    """Generate the planted and the clean org of one seed under `folder` and score both."""
    scores = {}
    for name, plant in (("planted", True), ("clean", False)):
        out = folder / f"seed-{seed}-{name}"
        generate_org(out, people=people, seed=seed, plant=plant)
        scores[name] = score_org(read_org(out), evidence, parser)
        shutil.rmtree(out, ignore_errors=True)
    return SeedScore(seed, scores["planted"], scores["clean"])


def summarise(seeds: Sequence[SeedScore]) -> dict[str, float | int | str]:
    """The figures over all seeds, flat, for the table and the JSON line."""
    n = len(seeds)
    figures: dict[str, float | int | str] = {"seeds": n}
    for pattern in (*PATTERNS, ANY_FLAG_ROW):
        planted = [s.planted.patterns[pattern] for s in seeds]
        clean = [s.clean.patterns[pattern] for s in seeds]
        total = sum(p.planted for p in planted)
        figures[f"{pattern}.seeds_found"] = sum(p.all_found for p in planted)
        figures[f"{pattern}.instance_recall"] = _ratio(sum(p.found for p in planted), total)
        figures[f"{pattern}.planted"] = total
        figures[f"{pattern}.planted_org_false_flags"] = sum(p.false_flags for p in planted)
        figures[f"{pattern}.clean_seeds_flagged"] = sum(c.false_flags > 0 for c in clean)
        figures[f"{pattern}.clean_false_flags"] = sum(c.false_flags for c in clean)
    for style in sorted({k for s in seeds for k in s.planted.feedback.by_style}):
        found = sum(s.planted.feedback.by_style.get(style, (0, 0))[0] for s in seeds)
        total = sum(s.planted.feedback.by_style.get(style, (0, 0))[1] for s in seeds)
        figures[f"biased_feedback.{style}.instance_recall"] = _ratio(found, total)
    ordinary = sum(s.clean.feedback.ordinary for s in seeds)
    for measure in FLAG_PRIORITY:
        count = sum(s.clean.feedback.ordinary_flags.get(measure, 0) for s in seeds)
        figures[f"clean_feedback.{measure}_per_100"] = round(100 * count / max(ordinary, 1), 2)
    figures["clean_feedback.records"] = ordinary
    figures["evidence_r2_planted_mean"] = round(mean(s.planted.r_squared for s in seeds), 3)
    figures["evidence_r2_clean_mean"] = round(mean(s.clean.r_squared for s in seeds), 3)
    figures["patterns_meeting_found_target"] = sum(
        int(figures[f"{p}.seeds_found"]) >= TARGET_FOUND * n for p in PATTERNS
    )
    figures["patterns_meeting_false_flag_target"] = sum(
        int(figures[f"{p}.clean_seeds_flagged"]) <= TARGET_FALSE * n for p in PATTERNS
    )
    return figures


def _ratio(found: int, total: int) -> float:
    return round(found / total, 3) if total else 0.0


# ---------------------------------------------------------------- output


def print_patterns(console: Console, figures: Mapping[str, float | int | str], title: str) -> None:
    n = figures["seeds"]
    table = Table(title=title)
    columns = (
        "pattern",
        f"seeds found (of {n})",
        "instance recall",
        "false flags, planted orgs",
        f"clean seeds with a false flag (of {n})",
        "false flags, clean orgs",
    )
    for column in columns:
        if column == "pattern":
            table.add_column(column, no_wrap=True)
        else:
            table.add_column(column, justify="right")
    for pattern in (*PATTERNS, ANY_FLAG_ROW):
        table.add_row(
            pattern,
            str(figures[f"{pattern}.seeds_found"]),
            f"{figures[f'{pattern}.instance_recall']:.3f} of {figures[f'{pattern}.planted']}",
            str(figures[f"{pattern}.planted_org_false_flags"]),
            str(figures[f"{pattern}.clean_seeds_flagged"]),
            str(figures[f"{pattern}.clean_false_flags"]),
        )
    console.print(table)


def print_feedback_rates(console: Console, figures: Mapping[str, float | int | str]) -> None:
    table = Table(
        title=f"clean orgs: flags on {figures['clean_feedback.records']} feedback records"
    )
    table.add_column("flag")
    table.add_column("records flagged per 100", justify="right")
    table.add_column("counts as biased_feedback", justify="right")
    for measure in FLAG_PRIORITY:
        value = figures[f"clean_feedback.{measure}_per_100"]
        table.add_row(measure, f"{value:.2f}", "yes" if measure in PATTERN_FLAGS else "no")
    console.print(table)


def print_misses(console: Console, seeds: Iterable[SeedScore]) -> None:
    for seed in seeds:
        if seed.planted.missed:
            console.print(
                f"seed {seed.seed} missed: " + "; ".join(seed.planted.missed), markup=False
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 1..N (default 10)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument(
        "--evidence",
        choices=EVIDENCE_WINDOWS,
        default="cycle",
        help="records behind the ratings analyses: the rated cycle's period (default) or "
        "the whole year (a diagnostic; a real cycle cannot see later records)",
    )
    parser.add_argument(
        "--no-parse",
        action="store_true",
        help="flag feedback with the word lists alone (the report and the gate use the parser)",
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    console = Console(width=None if sys.stdout.isatty() else 140)
    sense = None if args.no_parse else load_sense_parser()
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="fairdraft-eval-bias-"))
    try:
        seeds = [
            score_seed(seed, args.people, folder, args.evidence, sense)
            for seed in range(args.first_seed, args.first_seed + args.seeds)
        ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    figures: dict[str, float | int | str] = {
        "people": args.people,
        "first_seed": args.first_seed,
        "evidence": args.evidence,
        "parser": "none" if sense is None else sense.name,
        **summarise(seeds),
        "seconds": round(time.perf_counter() - started, 1),
    }
    title = (
        f"bias eval: {args.seeds} seeds x (planted org, clean org), {args.people} people, "
        f"evidence: {args.evidence}"
    )
    print_patterns(console, figures, title)
    print_feedback_rates(console, figures)
    print_misses(console, seeds)
    console.print(json.dumps(figures), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
