"""Review cycle benchmark: starting a cycle (everyone's tasks) on the 2,400-person org, and
reading "my tasks".

    FAIRDRAFT_HOME=... python -m evals.bench_cycle --home /tmp/bbhome-setup --people 2400

Generates (or keeps) the synthetic org in `--home`, ingests it with the hashing embedder,
sets up a cycle of BENCH_PERIOD for everyone with every review asked, then times
`start_cycle` (the one INSERT ... SELECT of every participant's tasks, the status change
and the audit event) and its commit: wall seconds, this process's CPU seconds and the
database backend's CPU seconds (from /proc, where the server runs on this machine). Then
reads `tasks_of` for TASK_READERS people (the managers first) and gives the p50 and p95.
The bench cycle is deleted before and after, so runs on a kept store start alike.

Later slices of issue 16 add the reminder run and the dashboard page here. Prints a table
and one JSON line.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from rich.console import Console
from sqlalchemy import Connection, Engine, delete, func, select, text

from domain.periods import parse_period
from domain.phases import CYCLE_REVIEWS
from evals.org_store import org_store
from evals.report import print_figures
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.cycles.tasks import tasks_of
from service.db.models import CycleTask, Person, ReviewCycle

BENCH_PERIOD = parse_period("2030-H1")  # a period no other benchmark uses
TASK_READERS = 200
TARGET_S = 5.0
PHASES = {
    "self_reflection": ("2030-07-01", "2030-07-12"),
    "peer_feedback": ("2030-07-08", "2030-07-19"),
    "manager_review": ("2030-07-15", "2030-07-26"),
    "calibration": ("2030-07-29", "2030-08-09"),
    "release": ("2030-08-12", "2030-08-14"),
    "sign_off": ("2030-08-14", "2030-08-23"),
}


def setup() -> CycleSetupIn:
    return CycleSetupIn.model_validate(
        {
            "title": "Benchmark cycle",
            "time_zone": "Europe/Lisbon",
            "participants": {"cutoff": "2030-06-30"},
            "reviews": list(CYCLE_REVIEWS),
            "scale": {
                "min": 1,
                "max": 5,
                "labels": ["Below", "Partially meets", "Meets", "Exceeds", "Exceptional"],
            },
            "phases": {p: {"opens": o, "due": d} for p, (o, d) in PHASES.items()},
        }
    )


def backend_cpu_s(conn: Connection) -> float | None:
    """CPU seconds the connection's server process has used (user + system), or None where
    the server's /proc entry cannot be read (a server on another machine)."""
    pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    conn.rollback()  # ends the read's transaction: the timed one begins on its own
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drop_bench_cycle(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(ReviewCycle).where(ReviewCycle.name == BENCH_PERIOD.name))


def time_start(engine: Engine, figures: dict[str, float | int | str]) -> None:
    with engine.begin() as conn:
        create_cycle(conn, BENCH_PERIOD, setup(), actor="bench")
    with engine.connect() as conn:
        server_before = backend_cpu_s(conn)
        started, cpu = time.perf_counter(), time.process_time()
        with conn.begin():
            summary = start_cycle(conn, BENCH_PERIOD.name, actor="bench")
        figures["start_s"] = round(time.perf_counter() - started, 3)
        figures["start_cpu_s"] = round(time.process_time() - cpu, 3)
        server_after = backend_cpu_s(conn)
    if server_before is not None and server_after is not None:
        figures["start_db_cpu_s"] = round(server_after - server_before, 3)
    figures["participants"] = summary.participants
    figures["tasks"] = sum(summary.tasks.values())


def time_task_reads(engine: Engine, figures: dict[str, float | int | str]) -> None:
    """`tasks_of` for the managers first, then others: the answers people wait for."""
    with engine.connect() as conn:
        managers = select(Person.manager_id).where(Person.manager_id.is_not(None)).distinct()
        found = conn.execute(managers.limit(TASK_READERS)).scalars()
        people = [p for p in found if p is not None]
        if len(people) < TASK_READERS:
            rest = select(Person.id).where(Person.id.not_in(people)).order_by(Person.id)
            people += list(conn.execute(rest.limit(TASK_READERS - len(people))).scalars())
        now = datetime.combine(date(2030, 7, 20), datetime.min.time(), tzinfo=UTC)
        seconds = []
        for person_id in people:
            started = time.perf_counter()
            tasks_of(conn, person_id, now=now, may_see=lambda _: True)
            seconds.append(time.perf_counter() - started)
        total = conn.execute(select(func.count()).select_from(CycleTask)).scalar_one()
    figures["task_reads"] = len(seconds)
    figures["my_tasks_p50_ms"] = round(statistics.median(seconds) * 1000, 2)
    figures["my_tasks_p95_ms"] = round(statistics.quantiles(seconds, n=20)[-1] * 1000, 2)
    figures["tasks_in_store"] = total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="keep the store here (a copy of one is fine)")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-bench-cycle-"))
    figures: dict[str, float | int | str] = {"people": args.people}
    try:
        with org_store(home, people=args.people, seed=args.seed) as (engine, _, _):
            drop_bench_cycle(engine)
            console.log(f"starting a cycle (load average {os.getloadavg()[0]:.2f})")
            time_start(engine, figures)
            time_task_reads(engine, figures)
            figures["load_average_1m"] = round(os.getloadavg()[0], 2)
            drop_bench_cycle(engine)
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    figures["target_start_s"] = TARGET_S
    print_figures(console, "review cycle benchmark", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
