"""python -m evals.synthetic_org --people 120 --seed 7 --out DIR [--clean] [--cycle-opens DAY]

Writes the synthetic org into DIR (with --clean, the clean control org: nothing planted),
with cycle.toml, a 2026-H2 review cycle's set-up whose phases run from --cycle-opens,
prints a table of counts and ends with one JSON line of the figures, like the other
benchmarks and generators in evals/.
"""

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path

from evals.synthetic_org.cycle import DEFAULT_OPENS
from evals.synthetic_org.generate import OrgSummary, generate_org
from evals.synthetic_org.tree import MIN_PEOPLE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--people", type=int, default=120, help="company size (default 120)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument(
        "--clean", action="store_true", help="plant no bias pattern (the clean control org)"
    )
    parser.add_argument(
        "--cycle-opens",
        type=date.fromisoformat,
        default=DEFAULT_OPENS,
        help=f"the day cycle.toml's first phase opens (default {DEFAULT_OPENS})",
    )
    args = parser.parse_args(argv)
    if args.people < MIN_PEOPLE:
        parser.error(f"--people must be at least {MIN_PEOPLE}")
    started = time.perf_counter()
    summary = generate_org(
        args.out,
        people=args.people,
        seed=args.seed,
        plant=not args.clean,
        cycle_opens=args.cycle_opens,
    )
    seconds = round(time.perf_counter() - started, 2)
    _print_table(summary)
    figures = {**summary.figures(), "seed": args.seed, "seconds": seconds}
    print(json.dumps(figures))  # noqa: T201
    return 0


def _print_table(summary: OrgSummary) -> None:
    rows = [
        ("people.csv", summary.people),
        ("records.jsonl", summary.records),
        *((f"  {kind}", count) for kind, count in summary.records_by_kind.items()),
        ("ratings.csv", summary.ratings),
        ("cycle.toml (2026-H2 set-up)", 1),
        *((f"planted: {name}", count) for name, count in summary.planted.items()),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"synthetic org written to {summary.out_dir}")  # noqa: T201
    for label, count in rows:
        print(f"{label:<{width}}  {count:>8}")  # noqa: T201


if __name__ == "__main__":
    sys.exit(main())
