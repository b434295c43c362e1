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

Then HR's dashboard page of the started cycle (`/hr/cycles/<cycle>/dashboard`, signed in
as an HR admin), DASHBOARD_REQUESTS times through the app with FastAPI's TestClient (the
whole ASGI stack in this process, no network): wall p50 and p95 (target p95 under
DASHBOARD_TARGET_MS), this process's CPU per request, and Python's full garbage
collections meanwhile (a slow request among fast ones is most often one of them).

Then one reminder pass (service/cycles/reminder_pass.py) on a day after the cycle's last
due day, every task of it open, so each is an overdue nudge, plus the managers' digests:
the claim (one INSERT ... SELECT) and every email sent to a local SMTP server
(evals/smtp_sink.py, aiosmtpd in its own process), wall seconds (target under
REMINDER_TARGET_S for at least 10,000 tasks), and what the server counted.
Prints a table and one JSON line.
"""

import argparse
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Connection, Engine, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from domain.periods import parse_period
from domain.phases import CYCLE_REVIEWS
from domain.reminders import Channel
from evals.org_store import org_store
from evals.report import print_figures
from service.access.tokens import issue_token
from service.app import create_app
from service.cycles.dashboard import dashboard
from service.cycles.reminder_pass import run_pass
from service.cycles.reminders import digest_key
from service.cycles.setup import CycleSetupIn
from service.cycles.setup_store import create_cycle, start_cycle
from service.cycles.tasks import tasks_of
from service.db.models import CycleTask, Person, PersonRole, Reminder, ReviewCycle
from service.settings import Settings

BENCH_PERIOD = parse_period("2030-H1")  # a period no other benchmark uses
TASK_READERS = 200
TARGET_S = 5.0
DASHBOARD_WARMUP = 3
DASHBOARD_REQUESTS = 50
DASHBOARD_TARGET_MS = 200.0
REMINDER_TARGET_S = 30.0
REMINDER_DAY = datetime(2030, 8, 26, 9, 0, tzinfo=UTC)  # after sign-off's due day
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


class GcPauses:
    """Python's full (generation 2) collections while the dashboard is timed, and their
    time: a whole-heap pass over the app's few hundred thousand objects is what a slow
    request beside fast ones most often is."""

    def __init__(self) -> None:
        self.full = 0
        self.full_s = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.full += 1
            self.full_s += time.perf_counter() - self._started


def time_dashboard(
    engine: Engine, settings: Settings, figures: dict[str, float | int | str]
) -> None:
    """HR's dashboard page of the started bench cycle, DASHBOARD_REQUESTS times through the
    app (FastAPI's TestClient: the whole ASGI stack in this process, session sign-in, page
    rendering; no network), after a few warm-up requests; p50 and p95. To give it work, a
    share of the self-reflection phase is marked done and its open tasks' due day moved
    three days back, so the overdue list runs to thousands of tasks (paged on the page)."""
    with engine.begin() as conn:
        cycle_id = conn.execute(
            select(ReviewCycle.id).where(ReviewCycle.name == BENCH_PERIOD.name)
        ).scalar_one()
        phase = (CycleTask.cycle_id == cycle_id) & (CycleTask.phase == "self_reflection")
        conn.execute(
            update(CycleTask)
            .where(phase, CycleTask.id % 5 < 2)
            .values(status="done", done_at=func.now())
        )
        conn.execute(
            update(CycleTask)
            .where(phase, CycleTask.status == "open")
            .values(due_on=func.current_date() - 3)
        )
        hr_id = conn.execute(select(func.min(Person.id))).scalar_one()
        granted = conn.execute(
            pg_insert(PersonRole)
            .values(person_id=hr_id, role="hr_admin", granted_by="bench")
            .on_conflict_do_nothing()
            .returning(PersonRole.person_id)
        ).first()
        token = issue_token(conn, hr_id, days=1, label="bench", actor="bench").token
    url = f"/hr/cycles/{BENCH_PERIOD.name}/dashboard"
    seconds: list[float] = []
    cpu: list[float] = []  # this process's CPU (app and client): what load does not inflate
    pauses = GcPauses()
    try:
        with TestClient(create_app(settings, engine=engine, worker=False)) as client:
            signed = client.post(
                "/sign-in",
                data={"token": token, "next": url},
                headers={"Origin": "http://testserver"},
                follow_redirects=False,
            )
            assert signed.status_code == 303, signed.text
            for attempt in range(DASHBOARD_WARMUP + DASHBOARD_REQUESTS):
                if attempt == DASHBOARD_WARMUP:
                    gc.callbacks.append(pauses)
                started, cpu_started = time.perf_counter(), time.process_time()
                page = client.get(url)
                elapsed = time.perf_counter() - started
                assert page.status_code == 200, page.text[:500]
                if attempt >= DASHBOARD_WARMUP:
                    seconds.append(elapsed)
                    cpu.append(time.process_time() - cpu_started)
            with engine.connect() as conn:
                board = dashboard(conn, BENCH_PERIOD.name, now=datetime.now(UTC), limit=1)
    finally:
        if pauses in gc.callbacks:
            gc.callbacks.remove(pauses)
        if granted is not None:
            with engine.begin() as conn:
                conn.execute(
                    delete(PersonRole).where(
                        PersonRole.person_id == hr_id, PersonRole.role == "hr_admin"
                    )
                )
    figures["dashboard_requests"] = len(seconds)
    figures["dashboard_overdue"] = board.overdue.total
    figures["dashboard_page_p50_ms"] = round(statistics.median(seconds) * 1000, 2)
    figures["dashboard_page_p95_ms"] = round(statistics.quantiles(seconds, n=20)[-1] * 1000, 2)
    figures["dashboard_page_cpu_p50_ms"] = round(statistics.median(cpu) * 1000, 2)
    figures["dashboard_full_gcs"] = pauses.full
    figures["dashboard_full_gc_ms"] = round(pauses.full_s * 1000, 1)
    figures["target_dashboard_p95_ms"] = DASHBOARD_TARGET_MS


def time_reminders(
    engine: Engine, settings: Settings, figures: dict[str, float | int | str]
) -> None:
    """One reminder pass over the bench cycle, every task open and overdue on
    REMINDER_DAY, emails to a local SMTP server in another process."""
    with engine.begin() as conn:
        cycle_id = conn.execute(
            select(ReviewCycle.id).where(ReviewCycle.name == BENCH_PERIOD.name)
        ).scalar_one()
        conn.execute(
            update(CycleTask)
            .where(CycleTask.cycle_id == cycle_id)
            .values(status="open", done_at=None)
        )
        conn.execute(delete(Reminder).where(Reminder.key == digest_key(REMINDER_DAY)))
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="fairdraft-sink-") as folder:
        count_file = Path(folder) / "count.json"
        command = [sys.executable, "-m", "evals.smtp_sink", "--port", str(port)]
        sink = subprocess.Popen([*command, "--count-file", str(count_file)])
        try:
            deadline = time.monotonic() + 30
            while not count_file.exists():
                assert time.monotonic() < deadline and sink.poll() is None, "no SMTP sink"
                time.sleep(0.05)
            mail = settings.model_copy(
                update={
                    "smtp_host": "127.0.0.1",
                    "smtp_port": port,
                    "smtp_security": "none",
                    "smtp_sender": "reviews@fairdraft.example",
                }
            )
            started, cpu = time.perf_counter(), time.process_time()
            summary = run_pass(engine, mail, now=REMINDER_DAY, cycle_id=cycle_id)
            figures["reminder_pass_s"] = round(time.perf_counter() - started, 3)
            figures["reminder_pass_cpu_s"] = round(time.process_time() - cpu, 3)
        finally:
            sink.send_signal(signal.SIGTERM)
            sink.wait(timeout=30)
        received = json.loads(count_file.read_text())
    with engine.begin() as conn:
        due = conn.execute(
            select(func.count()).where(Reminder.task_id.is_not(None), Reminder.cycle_id == cycle_id)
        ).scalar_one()
        conn.execute(delete(Reminder).where(Reminder.key == digest_key(REMINDER_DAY)))
    email = summary.outcomes[Channel.EMAIL]
    figures["reminder_due_tasks"] = int(due)
    figures["reminders_claimed"] = sum(c.count for c in summary.claimed)
    figures["reminders_sent"] = email.sent
    figures["reminders_failed"] = email.failed + email.gave_up + email.not_tried
    figures["smtp_received"] = int(received.get("messages", -1))
    figures["smtp_distinct_message_ids"] = int(received.get("message_ids", -1))
    figures["target_reminder_pass_s"] = REMINDER_TARGET_S


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
        with org_store(home, people=args.people, seed=args.seed) as (engine, settings, _):
            drop_bench_cycle(engine)
            console.log(f"starting a cycle (load average {os.getloadavg()[0]:.2f})")
            time_start(engine, figures)
            time_task_reads(engine, figures)
            time_dashboard(engine, settings, figures)
            console.log("one reminder pass")
            time_reminders(engine, settings, figures)
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
