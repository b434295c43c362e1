"""Retrieval eval: does the evidence pack hold the records a good draft must draw on?

    python -m evals.eval_retrieval --people 120

Generates the synthetic org, ingests and embeds it with the configured model into a fresh
embedded database, then for every person, period (2026-H1, 2026-H2) and draft kind builds
the pack with the hybrid ranking, vector-only and text-only. The generator's labels name,
per person and period, the key accomplishments, feedback themes and goals; we score the
pack's first ten distinct records against them:

- recall@10: labelled records among the first ten / labelled records (at most ten);
- nDCG@10: binary relevance, log2 discount.

Prints a table per kind and ranking and ends with one JSON line of the figures.
"""

import argparse
import json
import math
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from statistics import mean
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select

from domain.periods import parse_period
from evals.synthetic_org import generate_org
from retrieval.embedding import PRECISION_SETTINGS, precision_here
from retrieval.evidence import EvidencePack
from retrieval.queries import draft_kinds
from retrieval.search import RANKINGS, retrieve_evidence
from service.db.models import Person
from service.ingest.progress import RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings
from service.store import embedder_from, open_store

CUTOFF = 10
PERIODS = tuple(parse_period(name) for name in ("2026-H1", "2026-H2"))
BASELINE = Path(__file__).parent / "baselines" / "retrieval.json"


def first_records(pack: EvidencePack, cutoff: int = CUTOFF) -> list[tuple[str, str]]:
    """The pack's distinct records in pick order (a record may own several chunks)."""
    seen: list[tuple[str, str]] = []
    for item in pack.items:
        key = (item.source, item.external_id)
        if key not in seen:
            seen.append(key)
    return seen[:cutoff]


def recall_at(ranked: list[tuple[str, str]], relevant: set[tuple[str, str]]) -> float:
    return len(set(ranked) & relevant) / min(len(relevant), CUTOFF)


def ndcg_at(ranked: list[tuple[str, str]], relevant: set[tuple[str, str]]) -> float:
    gains = sum(1 / math.log2(rank + 2) for rank, key in enumerate(ranked) if key in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(relevant), CUTOFF)))
    return gains / ideal


Results = dict[tuple[str, str], dict[str, float]]


def evaluate(
    engine: Engine, settings: Settings, labels: dict[str, Any], rankings: Sequence[str] = RANKINGS
) -> tuple[Results, Counter[tuple[str, str]]]:
    """Mean recall@10 and nDCG@10 per (draft kind, ranking), and the hybrid's misses: how
    many labelled records of each role were left out, and which kinds took the slots."""
    key_evidence: dict[str, dict[str, list[dict[str, str]]]] = labels["key_evidence"]
    embedder = embedder_from(settings)
    scores: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    misses: Counter[tuple[str, str]] = Counter()
    with engine.connect() as conn:
        ids = {
            row.employee_id: row.id for row in conn.execute(select(Person.employee_id, Person.id))
        }
        for employee_id, periods in sorted(key_evidence.items()):
            for period in PERIODS:
                relevant = {(r["source"], r["external_id"]) for r in periods.get(period.name, [])}
                if not relevant:
                    continue
                for kind in draft_kinds():
                    for ranking in rankings:
                        pack = retrieve_evidence(
                            conn,
                            embedder,
                            subject_id=ids[employee_id],
                            period=period,
                            draft_kind=kind,
                            ranking=ranking,
                        )
                        ranked = first_records(pack)
                        scores[(kind, ranking)]["recall@10"].append(recall_at(ranked, relevant))
                        scores[(kind, ranking)]["ndcg@10"].append(ndcg_at(ranked, relevant))
                        if ranking == "hybrid":
                            misses.update(_misses(pack, ranked, periods[period.name]))
    results = {
        key: {metric: round(mean(values), 3) for metric, values in metrics.items()}
        for key, metrics in scores.items()
    }
    return results, misses


def _misses(
    pack: EvidencePack, ranked: list[tuple[str, str]], labelled: list[dict[str, str]]
) -> Counter[tuple[str, str]]:
    """("missed", role) per labelled record outside the first ten; ("took", kind) per
    unlabelled record inside them."""
    keys = {(r["source"], r["external_id"]) for r in labelled}
    counts: Counter[tuple[str, str]] = Counter(
        ("missed", r["why"]) for r in labelled if (r["source"], r["external_id"]) not in ranked
    )
    kinds = {(item.source, item.external_id): item.kind for item in pack.items}
    counts.update(("took", kinds[key]) for key in ranked if key not in keys)
    return counts


def print_misses(console: Console, misses: Counter[tuple[str, str]]) -> None:
    table = Table(title="hybrid, all kinds: labelled records missed, and who took the slots")
    for column in ("", "role or kind", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for (what, name), count in sorted(misses.items(), key=lambda m: (m[0][0], -m[1])):
        table.add_row(what, name, str(count))
    console.print(table)


def print_results(console: Console, results: Results, baseline: dict[str, float]) -> None:
    """The figures, and how far each moved from the stored baseline."""
    table = Table(title="retrieval eval: first 10 distinct records of the pack vs labels")
    for column in ("draft kind", "ranking", "recall@10", "vs baseline", "nDCG@10", "vs baseline"):
        table.add_column(column, justify="left" if column in ("draft kind", "ranking") else "right")
    for (kind, ranking), metrics in sorted(results.items()):
        cells = [kind, ranking]
        for metric in ("recall@10", "ndcg@10"):
            value = metrics[metric]
            before = baseline.get(f"{kind}.{ranking}.{metric}")
            cells += [f"{value:.3f}", "" if before is None else f"{value - before:+.3f}"]
        table.add_row(*cells)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=120)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument(
        "--precision",
        choices=PRECISION_SETTINGS,
        default="auto",
        help="what the model computes in (FAIRDRAFT_EMBEDDING_PRECISION); fp32 for a baseline",
    )
    parser.add_argument(
        "--home", type=Path, help="keep the store here: a rerun re-ingests nothing unchanged"
    )
    parser.add_argument(
        "--ranking", nargs="+", default=list(RANKINGS), choices=RANKINGS, help="default: all"
    )
    parser.add_argument("--write-baseline", action="store_true", help=f"store as {BASELINE.name}")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-eval-"))
    try:
        summary = generate_org(home / "org", people=args.people, seed=args.seed)
        labels = json.loads(summary.labels_json.read_text())
        settings = Settings(
            _env_file=None,
            home=home,
            embedding_model=args.model,
            embedding_precision=args.precision,
        )
        with open_store(settings) as engine:
            ingestor = Ingestor(engine, settings, actor="eval", progress=RichProgress())
            ingest_path(ingestor, home / "org")
            results, misses = evaluate(engine, settings, labels, args.ranking)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    stored = json.loads(BASELINE.read_text()) if BASELINE.exists() else {}
    if stored and (stored.get("people"), stored.get("model")) != (args.people, args.model):
        console.print(
            f"note: the baseline was measured on {stored.get('people')} people with "
            f"{stored.get('model')}; differences below compare unlike runs"
        )
    baseline = {k: v for k, v in stored.items() if isinstance(v, float)}
    print_results(console, results, baseline)
    print_misses(console, misses)
    figures: dict[str, float | str | int] = {
        "people": args.people,
        "model": args.model,
        "precision": precision_here(args.precision, settings.embedding_device),
    }
    for (kind, ranking), metrics in sorted(results.items()):
        for metric, value in metrics.items():
            figures[f"{kind}.{ranking}.{metric}"] = value
    figures["hybrid_recall@10_min"] = min(
        m["recall@10"] for (_, ranking), m in results.items() if ranking == "hybrid"
    )
    if args.write_baseline:
        BASELINE.parent.mkdir(exist_ok=True)
        stamped = {"_source": f"python -m evals.eval_retrieval --people {args.people}", **figures}
        BASELINE.write_text(json.dumps(stamped, indent=2, sort_keys=True) + "\n")
    console.print(json.dumps(figures), soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
