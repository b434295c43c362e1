"""The synthetic org generator: deterministic files in the ingest formats, a sound
management tree, varied text, and planted patterns that match their labels.

No database: these tests read the generated files the way an ingest or an eval would.
"""

import csv
import json
import re
import string
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from domain.periods import parse_period
from domain.phases import Phase
from evals.synthetic_org import OrgSummary, bank, generate_org
from evals.synthetic_org.__main__ import main
from evals.synthetic_org.cycle import CYCLE, DEFAULT_OPENS
from evals.synthetic_org.text import KNOWN_SLOTS
from service.cycles.setup import read_setup_file
from service.cycles.setup_store import create_cycle, start_cycle
from service.cycles.tasks import tasks_of
from tests.cycle_org import build_cycle_org

PEOPLE_HEADER = (
    "employee_id,name,email,manager_id,level,job_family,department,location,hire_date,"
    "gender,ethnicity,age_band"
)
RATINGS_HEADER = "cycle,employee_id,rater_id,rating,calibrated_rating"
RECORD_KINDS = {"work_record", "one_on_one", "feedback", "recognition", "goal", "self_note"}
RECORD_FIELDS = {
    "source",
    "external_id",
    "kind",
    "subject",
    "author",
    "occurred_at",
    "title",
    "body",
    "metadata",
}
FILES = ("people.csv", "records.jsonl", "ratings.csv", "labels.json")


@dataclass(frozen=True)
class Org:
    """A generated org, parsed once for all the tests that only read it."""

    summary: OrgSummary
    people: list[dict[str, str]]
    records: list[dict[str, Any]]
    ratings: list[dict[str, str]]
    labels: dict[str, Any]

    @property
    def by_id(self) -> dict[str, dict[str, str]]:
        return {p["employee_id"]: p for p in self.people}

    @property
    def email_to_id(self) -> dict[str, str]:
        return {p["email"]: p["employee_id"] for p in self.people}

    def subject_id(self, record: dict[str, Any]) -> str:
        subject = str(record["subject"])
        return self.email_to_id.get(subject, subject)

    def record_index(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {(r["source"], r["external_id"]): r for r in self.records}


def read_org(folder: Path, summary: OrgSummary) -> Org:
    with (folder / "people.csv").open(encoding="utf-8", newline="") as handle:
        people = list(csv.DictReader(handle))
    with (folder / "ratings.csv").open(encoding="utf-8", newline="") as handle:
        ratings = list(csv.DictReader(handle))
    with (folder / "records.jsonl").open(encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    return Org(summary, people, records, ratings, labels)


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    folder = tmp_path_factory.mktemp("org120")
    return read_org(folder, generate_org(folder, people=120, seed=7))


def sentences(text: str) -> list[str]:
    """Sentences of a body as a reader sees them; bullets and headings split off."""
    found = []
    for line in text.splitlines():
        line = re.sub(r"^\s*-\s*", "", line)
        found += [s.strip() for s in re.split(r"(?<=[.!?])\s+", line) if s.strip()]
    return found


# Determinism


def test_same_seed_and_size_give_byte_identical_files(tmp_path: Path) -> None:
    generate_org(tmp_path / "a", people=60, seed=11)
    generate_org(tmp_path / "b", people=60, seed=11)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    generate_org(tmp_path / "a", people=60, seed=11)
    generate_org(tmp_path / "b", people=60, seed=12)
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes(), name


def test_an_org_too_small_for_a_real_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_org(tmp_path, people=10)


# File formats


def test_headers_are_exactly_the_ingest_headers(org: Org) -> None:
    folder = org.summary.out_dir
    assert (folder / "people.csv").read_text(encoding="utf-8").splitlines()[0] == PEOPLE_HEADER
    assert (folder / "ratings.csv").read_text(encoding="utf-8").splitlines()[0] == RATINGS_HEADER


def test_summary_counts_match_the_files(org: Org) -> None:
    assert org.summary.people == len(org.people) == 120
    assert org.summary.records == len(org.records)
    assert org.summary.ratings == len(org.ratings)
    assert dict(org.summary.records_by_kind) == dict(Counter(r["kind"] for r in org.records))
    assert org.summary.records_jsonl == org.summary.out_dir / "records.jsonl"


def test_records_use_only_ingest_fields_with_valid_values(org: Org) -> None:
    for record in org.records:
        assert set(record) <= RECORD_FIELDS
        assert record["kind"] in RECORD_KINDS
        for field in ("source", "external_id", "subject", "occurred_at", "body"):
            assert isinstance(record[field], str) and record[field], (field, record)
        assert isinstance(record.get("metadata", {}), dict)
    kinds = Counter(r["kind"] for r in org.records)
    assert set(kinds) == RECORD_KINDS
    titled = [r for r in org.records if r["kind"] in ("work_record", "goal", "recognition")]
    assert all(r.get("title") for r in titled)


def test_source_and_external_id_are_unique(org: Org) -> None:
    keys = Counter((r["source"], r["external_id"]) for r in org.records)
    assert [key for key, n in keys.items() if n > 1] == []


def test_occurred_at_is_an_aware_time_inside_the_year(org: Org) -> None:
    for record in org.records:
        moment = datetime.fromisoformat(record["occurred_at"])
        assert moment.tzinfo is not None
        assert date(2026, 1, 5) <= moment.date() <= date(2026, 11, 20)


def test_a_year_of_evidence_per_person(org: Org) -> None:
    per_person: dict[str, Counter[str]] = defaultdict(Counter)
    for record in org.records:
        per_person[org.subject_id(record)][record["kind"]] += 1
    assert set(per_person) == set(org.by_id)
    for counts in per_person.values():
        assert counts["goal"] >= 3
        assert counts["work_record"] >= 12
        assert counts["feedback"] >= 3
        assert counts["self_note"] >= 2
    assert 50 <= len(org.records) / len(org.people) <= 90


# References and the tree


def test_every_reference_is_an_existing_employee(org: Org) -> None:
    ids = set(org.by_id)
    for person in org.people:
        assert person["manager_id"] == "" or person["manager_id"] in ids
    for record in org.records:
        assert org.subject_id(record) in ids, record["subject"]
        assert "author" not in record or record["author"] in ids
    for rating in org.ratings:
        assert rating["employee_id"] in ids and rating["rater_id"] in ids
        assert rating["rater_id"] == org.by_id[rating["employee_id"]]["manager_id"]


def test_about_a_tenth_of_records_name_the_subject_by_email(org: Org) -> None:
    by_email = sum("@" in r["subject"] for r in org.records) / len(org.records)
    assert 0.07 <= by_email <= 0.13


def test_the_tree_has_one_root_no_cycles_and_realistic_spans(org: Org) -> None:
    roots = [p for p in org.people if p["manager_id"] == ""]
    assert [r["employee_id"] for r in roots] == ["E00001"]
    managers = {p["employee_id"]: p["manager_id"] for p in org.people}
    for start in managers:
        seen, current = set(), start
        while current:
            assert current not in seen, f"cycle through {current}"
            seen.add(current)
            current = managers[current]
    spans = Counter(p["manager_id"] for p in org.people if p["manager_id"])
    assert all(3 <= span <= 9 for span in spans.values()), spans
    for manager_id in spans:
        assert int(org.by_id[manager_id]["level"][1:]) >= 5
    assert {p["level"] for p in org.people} <= {f"L{n}" for n in range(1, 9)}


def test_people_have_unique_emails_and_demographic_columns(org: Org) -> None:
    emails = [p["email"] for p in org.people]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d*@example\.com", e) for e in emails)
    assert {p["gender"] for p in org.people} <= {"woman", "man", "nonbinary", "undisclosed"}
    assert {p["age_band"] for p in org.people} <= {"under_30", "30_39", "40_49", "50_plus"}
    assert len({p["ethnicity"] for p in org.people}) >= 5
    assert len({p["job_family"] for p in org.people}) == 9
    assert all(date.fromisoformat(p["hire_date"]) < date(2026, 1, 1) for p in org.people)


def test_one_on_ones_are_biweekly_notes_by_the_manager(org: Org) -> None:
    notes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in org.records:
        if record["kind"] == "one_on_one":
            notes[org.subject_id(record)].append(record)
    assert "E00001" not in notes
    for employee_id, person in org.by_id.items():
        if employee_id == "E00001":
            continue
        assert 12 <= len(notes[employee_id]) <= 24  # 23 slots, about 1 in 10 cancelled
        assert {n["author"] for n in notes[employee_id]} == {person["manager_id"]}


# Text


def test_bodies_are_varied_and_no_sentence_template_dominates(org: Org) -> None:
    found = [s for r in org.records for s in sentences(r["body"]) if len(s.split()) >= 4]
    assert len(set(found)) / len(found) > 0.7
    _, top = Counter(found).most_common(1)[0]
    assert top / len(found) < 0.01
    skeletons = Counter(re.sub(r"\b[A-Z][\w'&-]*|\$?\d[\d.,]*[%KMx]?", "X", s) for s in found)
    _, top_skeleton = skeletons.most_common(1)[0]
    assert top_skeleton / len(found) < 0.03


def test_notes_are_long_enough_to_chunk(org: Org) -> None:
    words: dict[str, list[int]] = {kind: [] for kind in RECORD_KINDS}
    for record in org.records:
        words[record["kind"]].append(len(record["body"].split()))
    one_on_ones = sorted(words["one_on_one"])
    assert 60 <= one_on_ones[len(one_on_ones) // 2] <= 250
    assert max(one_on_ones) <= 250
    assert sum(n > 300 for n in words["work_record"] + words["self_note"]) >= 20
    multi_paragraph = [r for r in org.records if r["kind"] == "one_on_one" and "\n\n" in r["body"]]
    assert len(multi_paragraph) / len(one_on_ones) > 0.5


def test_projects_recur_across_kinds_of_evidence(org: Org) -> None:
    kinds_by_project: dict[tuple[str, str], set[str]] = defaultdict(set)
    for record in org.records:
        project = record.get("metadata", {}).get("project")
        if project:
            kinds_by_project[(org.subject_id(record), project)].add(record["kind"])
    recurring = {
        person
        for (person, _), kinds in kinds_by_project.items()
        if {"work_record", "one_on_one", "goal"} <= kinds
    }
    assert len(recurring) >= 0.9 * (len(org.people) - 1)


def test_every_template_slot_is_one_the_generator_fills() -> None:
    fields = string.Formatter()
    for name in bank.BANKS:
        for text in bank.all_strings(bank.load(name)):
            used = {field for _, field, _, _ in fields.parse(text) if field}
            assert used <= KNOWN_SLOTS, (name, text, used - KNOWN_SLOTS)


def test_every_bank_says_where_it_comes_from() -> None:
    for path in sorted(bank.DATA_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data.get("_source"), str) and data["_source"], path.name
    assert {p.stem for p in bank.DATA_DIR.glob("*.json")} == set(bank.BANKS)


def test_evidence_follows_true_performance(org: Org) -> None:
    """Weak performers' work records talk about slips and rework far more often; strong
    performers collect more kudos."""
    setbacks = re.compile(
        r"slipped|redo|rework|reverted|second attempt|not finished|short of|barely moved", re.I
    )
    performance = org.labels["true_performance"]
    ranked = sorted(performance, key=performance.get)
    quarter = len(ranked) // 4
    bottom, top = set(ranked[:quarter]), set(ranked[-quarter:])
    work: dict[str, list[bool]] = defaultdict(list)
    kudos: Counter[str] = Counter()
    for record in org.records:
        subject = org.subject_id(record)
        if record["kind"] == "work_record":
            work[subject].append(bool(setbacks.search(record["body"])))
        elif record["kind"] == "recognition":
            kudos[subject] += 1

    def setback_rate(group: set[str]) -> float:
        flags = [flag for person in group for flag in work[person]]
        return sum(flags) / len(flags)

    assert setback_rate(bottom) > 2.5 * setback_rate(top)
    assert sum(kudos[p] for p in top) > 1.5 * sum(kudos[p] for p in bottom)


# Planted patterns


def test_harsh_and_lenient_managers_rate_away_from_the_evidence(org: Org) -> None:
    fair = org.labels["fair_rating"]
    assert org.labels["harsh_managers"] and org.labels["lenient_managers"]
    for key, sign in (("harsh_managers", -1), ("lenient_managers", 1)):
        for entry in org.labels[key]:
            rows = [r for r in org.ratings if r["rater_id"] == entry["manager_id"]]
            assert len(rows) >= 4 and entry["offset"] == sign
            gap = sum(int(r["rating"]) - fair[r["employee_id"]] for r in rows) / len(rows)
            assert gap * sign >= 0.5, (key, entry, gap)


def test_ratings_elsewhere_mostly_match_the_evidence(org: Org) -> None:
    fair = org.labels["fair_rating"]
    planted = org.labels["harsh_managers"] + org.labels["lenient_managers"]
    skewed = {entry["manager_id"] for entry in planted}
    others = [r for r in org.ratings if r["rater_id"] not in skewed]
    exact = sum(int(r["rating"]) == fair[r["employee_id"]] for r in others) / len(others)
    assert exact > 0.7
    filled = [r for r in org.ratings if r["calibrated_rating"]]
    assert 0.7 < len(filled) / len(org.ratings) < 1
    assert all(abs(int(r["calibrated_rating"]) - int(r["rating"])) <= 1 for r in filled)


def test_mismatched_ratings_are_two_or_more_from_fair(org: Org) -> None:
    ratings = {r["employee_id"]: int(r["rating"]) for r in org.ratings}
    assert len(org.labels["mismatched_ratings"]) >= 3
    for entry in org.labels["mismatched_ratings"]:
        assert ratings[entry["employee_id"]] == entry["rating"]
        assert entry["fair_rating"] == org.labels["fair_rating"][entry["employee_id"]]
        assert abs(entry["rating"] - entry["fair_rating"]) >= 2


def test_biased_feedback_has_a_matched_control_about_someone_else(org: Org) -> None:
    index = org.record_index()
    entries = org.labels["biased_feedback"]
    assert len(entries) >= 5
    targets = {e["subject"] for e in entries}
    for entry in entries:
        biased = index[(entry["source"], entry["external_id"])]
        control = index[(entry["control"]["source"], entry["control"]["external_id"])]
        assert biased["kind"] == control["kind"] == "feedback"
        assert org.subject_id(biased) == entry["subject"]
        assert biased["author"] == entry["author"]
        assert org.subject_id(control) == entry["control"]["subject"] not in targets
        assert entry["style"] in ("gender_coded", "personality")
        assert biased["body"] and control["body"] and biased["body"] != control["body"]
    styles = Counter(e["style"] for e in entries)
    assert styles["gender_coded"] and styles["personality"]
    genders = Counter(org.by_id[e]["gender"] for e in targets)
    assert genders["woman"] > genders["man"]


def test_coded_wording_appears_only_in_labelled_biased_feedback(org: Org) -> None:
    terms = bank.texts(bank.load("bias")["coded_terms"])
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, terms)) + r")\b", re.IGNORECASE)
    biased = {(e["source"], e["external_id"]) for e in org.labels["biased_feedback"]}
    coded = {(r["source"], r["external_id"]) for r in org.records if pattern.search(r["body"])}
    assert coded <= biased
    assert len(coded) >= len(biased) // 2


def test_a_clean_org_plants_nothing_and_keeps_the_same_people_and_ordinary_records(
    tmp_path: Path,
) -> None:
    planted = generate_org(tmp_path / "planted", people=60, seed=11)
    clean = generate_org(tmp_path / "clean", people=60, seed=11, plant=False)
    org = read_org(tmp_path / "clean", clean)
    labels = org.labels
    assert dict(clean.planted) == dict.fromkeys(planted.planted, 0)
    assert not labels["harsh_managers"] and not labels["lenient_managers"]
    assert not labels["mismatched_ratings"] and not labels["biased_feedback"]
    fair = labels["fair_rating"]
    assert all(abs(int(r["rating"]) - fair[r["employee_id"]]) <= 1 for r in org.ratings)
    terms = bank.texts(bank.load("bias")["coded_terms"])
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, terms)) + r")\b", re.IGNORECASE)
    assert not [r for r in org.records if pattern.search(r["body"])]
    assert (tmp_path / "clean" / "people.csv").read_bytes() == (
        tmp_path / "planted" / "people.csv"
    ).read_bytes()
    full = read_org(tmp_path / "planted", planted)
    entries = full.labels["biased_feedback"]
    pairs = {(e["source"], e["external_id"]) for e in entries}
    pairs |= {(e["control"]["source"], e["control"]["external_id"]) for e in entries}
    kept = [r for r in full.records if (r["source"], r["external_id"]) not in pairs]
    assert org.records == kept


def test_command_line_clean_flag_writes_a_clean_org(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--people", "40", "--seed", "3", "--out", str(tmp_path), "--clean"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["planted_biased_feedback"] == 0 and figures["planted_harsh_managers"] == 0
    assert json.loads((tmp_path / "labels.json").read_text())["biased_feedback"] == []


def test_key_evidence_points_to_the_persons_records_in_that_period(org: Org) -> None:
    index = org.record_index()
    bounds = {
        name: (date.fromisoformat(a), date.fromisoformat(b))
        for name, (a, b) in org.labels["period_bounds"].items()
    }
    assert set(bounds) == {"2026-H1", "2026-H2"}
    evidence = org.labels["key_evidence"]
    assert set(evidence) == set(org.by_id)
    for employee_id, periods in evidence.items():
        for period, entries in periods.items():
            assert 4 <= len(entries) <= 10, (employee_id, period)
            whys = Counter(e["why"] for e in entries)
            assert set(whys) <= {"accomplishment", "feedback_theme", "goal"}
            assert whys["accomplishment"] >= 1
            for entry in entries:
                record = index[(entry["source"], entry["external_id"])]
                assert org.subject_id(record) == employee_id
                start, end = bounds[period]
                assert start <= datetime.fromisoformat(record["occurred_at"]).date() <= end


def test_labels_hold_latent_traits_for_everyone(org: Org) -> None:
    labels = org.labels
    assert labels["seed"] == 7 and labels["people"] == 120
    for key in ("true_performance", "potential"):
        assert set(labels[key]) == set(org.by_id)
        assert all(1.0 <= value <= 5.0 for value in labels[key].values())
    for employee_id, value in labels["true_performance"].items():
        assert labels["fair_rating"][employee_id] == max(1, min(5, int(value + 0.5)))


# Command line and scale


def test_command_line_writes_the_org_and_ends_with_one_json_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--people", "40", "--seed", "3", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    figures = json.loads(lines[-1])
    assert figures["people"] == 40 and figures["records"] > 0 and figures["seconds"] >= 0
    assert all((tmp_path / name).exists() for name in FILES)
    assert any("records.jsonl" in line for line in lines[:-1])


@pytest.mark.slow
def test_a_company_of_2400_people_generates_in_under_a_minute(tmp_path: Path) -> None:
    started = time.perf_counter()
    summary = generate_org(tmp_path, people=2400, seed=7)
    assert time.perf_counter() - started < 60
    assert summary.people == 2400 and summary.records > 100_000


# The review cycle in progress


def test_the_org_comes_with_a_cycle_that_is_in_progress_on_the_days_after_it_opens(
    org: Org, engine: Engine
) -> None:
    setup = read_setup_file(org.summary.cycle_toml)
    assert setup.phases[Phase.SELF_REFLECTION].opens == DEFAULT_OPENS
    people = build_cycle_org(engine)  # a few people are enough to start it
    with engine.begin() as conn:
        create_cycle(conn, parse_period(CYCLE), setup, actor="t")
        start_cycle(conn, CYCLE, actor="t")
    day = datetime.combine(setup.phases[Phase.PEER_FEEDBACK].due, datetime.min.time(), tzinfo=UTC)
    with engine.connect() as conn:
        lines, _ = tasks_of(conn, people.ids["bea"], now=day, may_see=lambda _: True)
    overdue = {line.kind for line in lines if line.overdue}
    assert "write_self_reflection" in overdue and "acknowledge_review" not in overdue
    later = generate_org(
        org.summary.out_dir.parent / "later", people=60, cycle_opens=date(2027, 1, 4)
    )
    assert "self_reflection = { opens = 2027-01-04" in later.cycle_toml.read_text()
