"""Drafting eval: does every sentence of an offline draft rest on evidence that says it?

    python -m evals.eval_drafting --people 60

Generates the synthetic org, ingests and embeds it with the configured model into a fresh
embedded database (or the one kept in `--home`), then for each person (or an evenly spread
`--sample`) and each draft kind builds the evidence pack for 2026-H1, drafts it with the
offline drafter and runs the citation check every draft goes through. Figures per kind:

- supported share: sentences left with at least one valid citation / sentences;
- citation precision: (sentence, cited item) pairs where the item supports the sentence,
  judged by `evals.citation_support` (content-word coverage >= 0.6 and every number
  present) / pairs;
- control: the same judge with each sentence scored against a different item of its pack
  (the next one); it must stay far below the precision, or the judge is too lenient;
- quoted share: sentences quoting their evidence rather than restating it;
- sentences per draft, and drafts left empty.

Prints a table per kind and ends with one JSON line of the figures.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, Engine, select

from domain.periods import parse_period
from evals.citation_support import supports
from evals.synthetic_org import generate_org
from retrieval.embedding import Embedder
from retrieval.evidence import EvidencePack
from retrieval.search import retrieve_evidence
from service.db.models import Person
from service.drafting.citations import check_citations
from service.drafting.offline import draft_offline
from service.drafting.structure import DRAFT_KINDS, DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.progress import RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings
from service.store import embedder_from, open_store

PERIOD = "2026-H1"
_COUNTS = (
    *("drafts", "empty", "sentences", "supported", "pairs", "precise"),
    *("control_pairs", "control_precise", "quoted", "seconds"),
)
TARGETS = {"supported_share": 0.95, "citation_precision": 0.9}


@dataclass
class Tally:
    """Counts for one draft kind."""

    drafts: int = 0
    empty: int = 0
    sentences: int = 0
    supported: int = 0
    pairs: int = 0
    precise: int = 0
    control_pairs: int = 0
    control_precise: int = 0
    quoted: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, float]:
        def share(part: int, whole: int) -> float:
            return round(part / whole, 3) if whole else 0.0

        return {
            "drafts": self.drafts,
            "empty_drafts": self.empty,
            "sentences_per_draft": round(self.sentences / self.drafts, 1) if self.drafts else 0.0,
            "supported_share": share(self.supported, self.sentences),
            "citation_precision": share(self.precise, self.pairs),
            "control_precision": share(self.control_precise, self.control_pairs),
            "quoted_share": share(self.quoted, self.sentences),
            "ms_per_draft": round(1000 * self.seconds / self.drafts, 1) if self.drafts else 0.0,
        }


def score_draft(tally: Tally, body: DraftBody, pack: EvidencePack, subject: DraftSubject) -> None:
    """Add one draft's sentences, citations and control pairs to the kind's tally."""
    texts = {item.id: item.text for item in pack.items}
    order = [item.id for item in pack.items]
    checked, report = check_citations(body, texts)
    tally.drafts += 1
    tally.empty += not checked.sections
    tally.sentences += report.sentences
    tally.supported += report.supported
    names = subject.name.split()
    for sentence in checked.sentences():
        tally.quoted += "\u201c" in sentence.text
        for cited in sentence.evidence:
            tally.pairs += 1
            if supports(sentence.text, texts[cited], ignore=names):
                tally.precise += 1
            elif len(tally.failures) < 5:
                tally.failures.append(f"{sentence.text} [{cited}: {texts[cited][:160]!r}]")
            if len(order) > 1:
                other = order[(order.index(cited) + 1) % len(order)]
                tally.control_pairs += 1
                tally.control_precise += supports(sentence.text, texts[other], ignore=names)


def sample_people(conn: Connection, sample: int | None) -> list[Any]:
    """Everyone, or `sample` people spread evenly over the org (deterministic)."""
    columns = (Person.id, Person.name, Person.level, Person.job_family)
    people = list(conn.execute(select(*columns).order_by(Person.employee_id)))
    if sample is None or sample >= len(people):
        return people
    step = len(people) / sample
    return [people[int(i * step)] for i in range(sample)]


def evaluate(engine: Engine, embedder: Embedder, sample: int | None) -> dict[str, Tally]:
    tallies: dict[str, Tally] = defaultdict(Tally)
    period = parse_period(PERIOD)
    with engine.connect() as conn:
        for person in sample_people(conn, sample):
            for kind in DRAFT_KINDS:
                pack = retrieve_evidence(
                    conn, embedder, subject_id=person.id, period=period, draft_kind=kind
                )
                subject = DraftSubject(
                    name=person.name,
                    first_name=person.name.split()[0],
                    level=person.level,
                    job_family=person.job_family,
                    kind=kind,
                )
                started = time.perf_counter()
                body = draft_offline(pack, subject)
                tallies[kind].seconds += time.perf_counter() - started
                score_draft(tallies[kind], body, pack, subject)
    return tallies


def print_results(console: Console, tallies: dict[str, Tally]) -> None:
    table = Table(title=f"drafting eval: offline drafts, {PERIOD}")
    columns = list(Tally().figures())
    table.add_column("draft kind")
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for kind, tally in tallies.items():
        figures = tally.figures()
        table.add_row(kind, *(str(figures[c]) for c in columns))
    console.print(table)
    for kind, tally in tallies.items():
        for failure in tally.failures[:2]:
            console.print(f"[dim]not supported ({kind}):[/dim] {failure}", soft_wrap=True)


def overall(tallies: dict[str, Tally]) -> dict[str, float]:
    total = Tally()
    for tally in tallies.values():
        for name in _COUNTS:
            setattr(total, name, getattr(total, name) + getattr(tally, name))
    return total.figures()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sample", type=int, help="draft for this many people, spread evenly")
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument(
        "--home", type=Path, help="keep the store here: a rerun re-ingests nothing unchanged"
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 160)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-eval-"))
    try:
        generate_org(home / "org", people=args.people, seed=args.seed)
        settings = Settings(_env_file=None, home=home, embedding_model=args.model)
        with open_store(settings) as engine:
            ingestor = Ingestor(engine, settings, actor="eval", progress=RichProgress())
            ingest_path(ingestor, home / "org")
            tallies = evaluate(engine, embedder_from(settings), args.sample)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    print_results(console, tallies)
    figures: dict[str, float | int | str] = {
        "people": args.people,
        "sample": args.sample or args.people,
        "model": args.model,
        "period": PERIOD,
    }
    figures.update(overall(tallies))
    for kind, tally in tallies.items():
        for name, value in tally.figures().items():
            figures[f"{kind}.{name}"] = value
    for name, target in TARGETS.items():
        figures[f"{name}_meets_target"] = int(float(figures[name]) >= target)
    console.print(json.dumps(figures), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
