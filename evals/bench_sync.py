"""Connector sync benchmark: a full GitHub-shaped sync into a fresh store, then an
incremental one after 1 % of the pull requests changed, then one over an unchanged source.

    python -m evals.bench_sync --pulls 50000 --reviews 1 --people 300

A local GitHub (evals/github_stand_in.py, in a process of its own so that it does not
share the sync's interpreter) serves generated pull requests and reviews in the shapes of
tests/fixtures/github/ (the documented examples), paged by 100 with Link headers and
ETags. The store is the embedded Postgres with `--people` people whose GitHub logins are
matched by an identities CSV. Records are written by the connector framework's run_sync
through the ingest path, with 384-dim vectors from the hashing embedder (as
`make bench-ingest`'s database side), so the model's time does not hide the database's:
`db_records_per_s` counts the records written over the time spent outside the connector
(resolving people, hashing, chunking, the hashing embedder, upserts, COPY, the cursor),
and `fetch_s` is the time inside it (HTTP, JSON, parsing). The model's own rate is
`make bench-ingest`'s `embed_chunks_per_s`.

Prints a table and ends with one JSON line of the figures.
"""

import argparse
import csv
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from evals.github_stand_in import GitHubStandIn, JsonObject, serve
from evals.report import print_figures
from retrieval.embedding import HashingEmbedder
from service.connectors.github import GitHubConnector, from_settings
from service.connectors.identities import import_identities
from service.connectors.model import Batch, Cursor, WaitObserver
from service.connectors.runs import RunSummary
from service.connectors.sync import run_sync
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor
from service.settings import Settings
from service.store import open_store

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "github"
ORG = "bench"
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
WORDS = [
    "retry",
    "checkout",
    "refund",
    "ledger",
    "invoice",
    "webhook",
    "cache",
    "latency",
    "onboarding",
    "search",
    "export",
    "billing",
    "audit",
    "reconciliation",
    "alerting",
    "dashboard",
    "migration",
    "schema",
    "pagination",
]


def _login(number: int) -> str:
    return f"dev-{number:04d}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Shape:
    """How much the stand-in holds."""

    pulls: int
    reviews: int
    repos: int
    people: int


def generate(shape: Shape) -> GitHubStandIn:
    """Pull requests and reviews built on the fixtures' documented objects (a shallow copy
    each, with its own number, people, text and times)."""
    pull_template: JsonObject = json.loads((FIXTURES / "pulls.json").read_text())[0]
    review_template: JsonObject = json.loads((FIXTURES / "reviews_1347.json").read_text())[0]
    users = [
        {**pull_template["user"], "login": _login(n), "id": 10_000 + n} for n in range(shape.people)
    ]
    stand_in = GitHubStandIn(
        repos=[
            {"name": f"repo-{r:02d}", "full_name": f"{ORG}/repo-{r:02d}"}
            for r in range(shape.repos)
        ]
    )
    for index in range(shape.pulls):
        repo = f"{ORG}/repo-{index % shape.repos:02d}"
        number = index // shape.repos + 1
        merged = START + timedelta(minutes=index)
        word, other = WORDS[index % len(WORDS)], WORDS[(index * 7 + 3) % len(WORDS)]
        pull = {
            **pull_template,
            "id": 5_000_000 + index,
            "number": number,
            "title": f"Improve {word} handling for {other} ({index})",
            "body": (
                f"Makes {word} faster when {other} is busy; change {index} of the quarter.\n\n"
                f"```python\nrun_{word}({index})\n```\n\nMeasured {index % 97} ms less at p95."
            ),
            "user": users[index % shape.people],
            "html_url": f"https://github.com/{repo}/pull/{number}",
            "created_at": _iso(merged - timedelta(days=1)),
            "merged_at": _iso(merged),
            "closed_at": _iso(merged),
            "updated_at": _iso(merged + timedelta(seconds=30)),
        }
        stand_in.pulls.setdefault(repo, {})[number] = pull
        stand_in.reviews.setdefault(repo, {})[number] = [
            {
                **review_template,
                "id": 9_000_000 + index * shape.reviews + k,
                "user": users[(index * 7 + 1 + k) % shape.people],
                "body": f"Checked the {word} path ({index}/{k}); the {other} case is covered.",
                "submitted_at": _iso(merged - timedelta(minutes=5 + k)),
                "html_url": f"https://github.com/{repo}/pull/{number}#pullrequestreview-{k}",
            }
            for k in range(shape.reviews)
        ]
    for repo in stand_in.pulls:
        stand_in.issues[repo] = {}
    return stand_in


def touch(stand_in: GitHubStandIn, fraction: float) -> int:
    """Edit the title and description of every n-th pull request (as GitHub does, that
    moves its updated_at past every other)."""
    step = max(1, round(1 / fraction))
    later = START + timedelta(days=400)
    count = 0
    for repo_pulls in stand_in.pulls.values():
        for pull in repo_pulls.values():
            if pull["id"] % step == 0:
                count += 1
                pull["title"] += " (edited)"
                pull["body"] += "\n\nEdited after review."
                pull["updated_at"] = _iso(later + timedelta(seconds=count))
    stand_in.changed()
    return count


def serve_forever(shape: Shape, control: Connection) -> None:
    """The stand-in's process: generates, serves, and answers the parent's commands."""
    stand_in = generate(shape)
    with serve(stand_in) as url:
        control.send(url)
        while True:
            command, argument = control.recv()
            if command == "touch":
                control.send(touch(stand_in, float(argument)))
            elif command == "stats":
                statuses = Counter(seen.status for seen in stand_in.seen)
                control.send({"requests": len(stand_in.seen), "not_modified": statuses[304]})
                stand_in.seen.clear()
            else:
                control.send(None)
                return


class TimedConnector:
    """The connector, timing what it spends inside itself (fetching and parsing)."""

    def __init__(self, inner: GitHubConnector) -> None:
        self.inner = inner
        self.fetch_s = 0.0
        self.name, self.system = inner.name, inner.system
        self.complete_on_full = inner.complete_on_full

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        self.fetch_s = 0.0
        batches = self.inner.sync(cursor, full=full, waits=waits)
        while True:
            started = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                self.fetch_s += time.perf_counter() - started
                return
            self.fetch_s += time.perf_counter() - started
            yield batch


def write_people(folder: Path, people: int) -> tuple[Path, Path]:
    """people.csv (one manager over the rest) and identities.csv (each login's employee)."""
    people_csv, identities_csv = folder / "people.csv", folder / "identities.csv"
    with people_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "employee_id",
                "name",
                "email",
                "manager_id",
                "level",
                "job_family",
                "department",
                "location",
                "hire_date",
            ]
        )
        for n in range(people):
            writer.writerow(
                [
                    f"B{n:04d}",
                    f"Dev {n}",
                    f"dev{n}@bench.example",
                    "" if n == 0 else "B0000",
                    "L4",
                    "engineering",
                    "Platform",
                    "Remote",
                    "2022-01-10",
                ]
            )
    with identities_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["system", "external_id", "employee_id"])
        for n in range(people):
            writer.writerow(["github", _login(n), f"B{n:04d}"])
    return people_csv, identities_csv


def run_figures(
    prefix: str, summary: RunSummary, fetch_s: float, stats: dict[str, int]
) -> dict[str, Any]:
    written = summary.inserted + summary.updated
    db_s = max(summary.seconds - fetch_s, 1e-9)
    figures: dict[str, Any] = {
        f"{prefix}_status": summary.status,
        f"{prefix}_s": round(summary.seconds, 2),
        f"{prefix}_fetch_s": round(fetch_s, 2),
        f"{prefix}_db_s": round(db_s, 2),
        f"{prefix}_requests": stats["requests"],
        f"{prefix}_not_modified": stats["not_modified"],
        f"{prefix}_fetched": summary.fetched,
        f"{prefix}_inserted": summary.inserted,
        f"{prefix}_updated": summary.updated,
        f"{prefix}_unchanged": summary.unchanged,
        f"{prefix}_chunks_embedded": summary.chunks_embedded,
    }
    if written:
        figures[f"{prefix}_db_records_per_s"] = round(written / db_s, 1)
        figures[f"{prefix}_records_per_s"] = round(written / summary.seconds, 1)
    return figures


def bench(args: argparse.Namespace, home: Path, console: Console) -> dict[str, Any]:
    shape = Shape(args.pulls, args.reviews, args.repos, args.people)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve_forever, args=(shape, child), daemon=True)
    started = time.perf_counter()
    server.start()
    url = parent.recv()
    console.print(f"stand-in generated and serving in {time.perf_counter() - started:.1f} s")

    def ask(command: str, argument: object = None) -> Any:
        parent.send((command, argument))
        return parent.recv()

    settings = Settings(
        _env_file=None,
        home=home,
        embedding_model="hashing-384",
        progress=False,
        github_org=ORG,
        github_token=SecretStr("bench-token"),
        github_api_url=url,
        github_pull_sizes=not args.no_sizes,
    )
    people_csv, identities_csv = write_people(home, args.people)
    result: dict[str, Any] = {
        "pulls": args.pulls,
        "reviews_per_pull": args.reviews,
        "repos": args.repos,
        "people": args.people,
        "pull_sizes": not args.no_sizes,
        "vectors": "hashing-384",
    }
    try:
        with open_store(settings) as engine:
            ingestor = Ingestor(engine, settings, actor="bench", progress=NoProgress())
            ingestor.ingest(people_csv, "people", skip_invalid=False)
            with engine.begin() as conn:
                # matching people asks for a full pass: the first run is one, as in life
                import_identities(conn, identities_csv, actor="bench")
            embedder = HashingEmbedder(384)
            for prefix in ("full", "incremental", "unchanged"):
                if prefix == "incremental":
                    result["changed_pulls"] = ask("touch", args.changed)
                connector = from_settings(settings)
                assert connector is not None
                connector.batch_records = args.batch_records
                timed = TimedConnector(connector)
                summary = run_sync(
                    engine, settings, timed, actor="bench", embedder=lambda: embedder
                )
                result.update(run_figures(prefix, summary, timed.fetch_s, ask("stats")))
                console.print(f"{prefix} run: {summary.status} in {summary.seconds:.1f} s")
    finally:
        ask("stop")
        server.join(timeout=10)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulls", type=int, default=50_000)
    parser.add_argument("--reviews", type=int, default=1, help="reviews per pull request")
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--people", type=int, default=300)
    parser.add_argument("--changed", type=float, default=0.01, help="fraction edited")
    parser.add_argument("--no-sizes", action="store_true", help="skip the per-pull size request")
    parser.add_argument("--batch-records", type=int, default=1000, help="records a batch")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = Path(tempfile.mkdtemp(prefix="fairdraft-bench-sync-"))
    try:
        result = bench(args, home, console)
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print_figures(console, "connector sync benchmark (GitHub)", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
