"""Background jobs on procrastinate, against real Postgres and real workers: queueing in the
caller's transaction, restarts, a dead worker's job taken over, retries with back-off,
permanent failures, errors and logs without evidence text, the API's polling flow, the
periodic tasks, the migration from the old queue, and the handlers that draft, ingest and
report in the background."""

import asyncio
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from procrastinate import App, PsycopgConnector
from sqlalchemy import Engine, func, select, text, update

from domain.errors import Invalid, Unavailable
from service.access.sessions import SessionLifetime, open_session
from service.app import create_app
from service.db.migrate import downgrade, upgrade
from service.db.models import (
    PROCRASTINATE_JOBS,
    AuditEvent,
    Draft,
    DraftCheck,
    Job,
    Person,
    WebSession,
)
from service.drafting.store import load_version
from service.ingest.directory import find_person
from service.ingest.errors import IngestRefused, RowError
from service.ingest.run import Ingestor, ingest_path
from service.ingest.uploads import remove_stale_uploads, uploads_dir
from service.jobs.handlers import HANDLERS, JobContext, JobRejected, describe_error, register
from service.jobs.periodic import (
    PERIODIC_QUEUE,
    PERIODIC_RUNS_KEPT_HOURS,
    WORKER_LOST,
    take_over_stalled_jobs,
)
from service.jobs.queue import JobView, enqueue, job_status
from service.jobs.runner import backoff_s
from service.jobs.tasks import build_app
from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import ApiOrg
from tests.conftest import FIXTURES

SECRET = "Cy quietly missed the Q2 deadline"  # stands in for evidence text
REPO = Path(__file__).parents[1]


# --- helpers ------------------------------------------------------------------------------


def add_job(
    engine: Engine,
    kind: str = "echo",
    payload: dict[str, Any] | None = None,
    *,
    max_attempts: int = 3,
    requested_by: int | None = None,
) -> int:
    with engine.begin() as conn:
        return enqueue(
            conn,
            kind,
            payload if payload is not None else {"n": 1},
            requested_by=requested_by,
            max_attempts=max_attempts,
            actor="test",
        )


def status_of(engine: Engine, job_id: int) -> JobView:
    with engine.connect() as conn:
        view = job_status(conn, job_id)
    assert view is not None
    return view


def wait_for_status(
    engine: Engine, ids: Sequence[int], statuses: Sequence[str], timeout_s: float = 30
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(status_of(engine, i).status in statuses for i in ids):
            return
        time.sleep(0.02)
    raise AssertionError(f"jobs not {statuses}: {[status_of(engine, i) for i in ids]}")


def wait_until_finished(engine: Engine, ids: Sequence[int], timeout_s: float = 30) -> None:
    wait_for_status(engine, ids, ("done", "failed"), timeout_s)


def time_passes(engine: Engine) -> None:
    """Every job waiting out a back-off is due now."""
    with engine.begin() as conn:
        conn.execute(update(PROCRASTINATE_JOBS).values(scheduled_at=func.now()))


def libpq(database_url: str) -> str:
    return database_url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def running_worker(engine: Engine, settings: Settings, **options: Any) -> Iterator[Worker]:
    """A real worker in a thread for the block's length, stopped (and joined) after it."""
    worker = Worker(engine, settings, **options)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive(), "the worker stops when told to"


def claim_as_dead_worker(database_url: str) -> int:
    """What the database sees of a worker that took the next job and was never heard of
    again (killed, its machine gone): it registered, fetched the job, and went silent.
    Returns procrastinate's id of the job."""

    async def claim() -> int:
        app = App(connector=PsycopgConnector(conninfo=libpq(database_url)))
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            job = await app.job_manager.fetch_job(queues=None, worker_id=worker_id)
            assert job is not None and job.id is not None
            return job.id

    return asyncio.run(claim())


def take_over_now(database_url: str, engine: Engine, stalled_s: float) -> int:
    async def take_over() -> int:
        app = App(connector=PsycopgConnector(conninfo=libpq(database_url)))
        async with app.open_async():
            return await take_over_stalled_jobs(app.job_manager, engine, stalled_s=stalled_s)

    return asyncio.run(take_over())


ran: list[int] = []  # payload "n" of every echo run, in order


def echo(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    ran.append(payload["n"])
    return {"doubled": payload["n"] * 2}


def boom(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"could not parse: {SECRET}")


def refuse(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """A domain error raised while handling another that quotes evidence: the message is
    ours, the chained one is not."""
    try:
        raise KeyError(SECRET)
    except KeyError:
        raise Invalid("payload field 'n' is out of range", field="n") from None


def flaky(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The model server is away on the first attempt and back on the second."""
    with context.engine.connect() as conn:
        tries = conn.execute(
            select(PROCRASTINATE_JOBS.c.attempts)
            .join(Job, Job.procrastinate_job_id == PROCRASTINATE_JOBS.c.id)
            .where(Job.id == context.job_id)
        ).scalar_one()
    if tries == 0:
        raise Unavailable("the model server did not answer")
    return {"ok": True}


def slow(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(payload["seconds"])
    return {"slept": payload["seconds"]}


def finish_at_once(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"finished_by": "successor"}


@pytest.fixture
def test_handlers() -> Iterator[None]:
    """echo, boom, refuse, flaky and slow registered for this test only."""
    kinds = {"echo": echo, "boom": boom, "refuse": refuse, "flaky": flaky, "slow": slow}
    for kind, handler in kinds.items():
        register(kind, handler)
    ran.clear()
    yield
    for kind in kinds:
        HANDLERS.pop(kind, None)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """A worker that polls often and counts a worker dead after a second of silence."""
    return settings.model_copy(update={"job_poll_s": 0.05, "job_stalled_s": 1.0})


@pytest.fixture
def store(ingestor: Ingestor, org_dir: Path) -> Ingestor:
    ingest_path(ingestor, org_dir)
    return ingestor


def person_id(engine: Engine, reference: str) -> int:
    with engine.connect() as conn:
        return find_person(conn, reference).id


# --- queueing -----------------------------------------------------------------------------


@pytest.mark.usefixtures("test_handlers")
def test_a_queued_job_runs_once_and_its_result_is_stored_and_the_queueing_audited(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine, payload={"n": 21})
    queued = status_of(engine, job_id)
    worker = Worker(engine, fast)

    assert worker.run_once()
    assert not worker.run_once(), "nothing is left to run"

    assert (queued.status, queued.attempts, queued.result) == ("queued", 0, None)
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result, view.error) == (
        "done",
        1,
        {"doubled": 42},
        None,
    )
    assert ran == [21] and view.updated_at > queued.updated_at
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "job_queued")).one()
    assert (event.actor, event.entity, event.entity_id) == ("test", "job", str(job_id))
    assert event.after == {"kind": "echo"}


def test_an_unknown_job_id_has_no_status(engine: Engine) -> None:
    with engine.connect() as conn:
        assert job_status(conn, 404) is None


def test_an_unknown_kind_is_refused_when_queued_and_nothing_is_stored(engine: Engine) -> None:
    with pytest.raises(JobRejected, match="unknown job kind 'no_such_kind'"):
        add_job(engine, "no_such_kind", {"note": SECRET})

    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Job)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(PROCRASTINATE_JOBS)).scalar_one() == 0


@pytest.mark.usefixtures("test_handlers")
def test_a_job_exists_only_if_the_callers_transaction_commits(
    engine: Engine, fast: Settings
) -> None:
    with engine.connect() as conn:
        enqueue(conn, "echo", {"n": 1}, requested_by=None, max_attempts=3, actor="test")
        conn.rollback()

    assert not Worker(engine, fast).run_once()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Job)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(PROCRASTINATE_JOBS)).scalar_one() == 0


# --- workers ------------------------------------------------------------------------------


@pytest.mark.usefixtures("test_handlers")
def test_a_queued_job_survives_a_worker_restart_and_runs(engine: Engine, fast: Settings) -> None:
    with running_worker(engine, fast):
        first = add_job(engine, payload={"n": 1})
        wait_until_finished(engine, [first])
    waiting = add_job(engine, payload={"n": 2})  # queued while no worker runs
    time.sleep(0.3)
    assert status_of(engine, waiting).status == "queued"

    with running_worker(engine, fast):
        wait_until_finished(engine, [waiting])

    assert status_of(engine, waiting).result == {"doubled": 4}
    assert ran == [1, 2]


@pytest.mark.usefixtures("test_handlers")
def test_two_workers_share_the_queue_and_never_run_a_job_twice(
    engine: Engine, fast: Settings
) -> None:
    with (
        running_worker(engine, fast, name="a", concurrency=2),
        running_worker(engine, fast, name="b", concurrency=2),
    ):
        ids = [add_job(engine, payload={"n": n}) for n in range(40)]
        wait_until_finished(engine, ids)

    assert sorted(ran) == list(range(40)), "every job exactly once"
    assert {(status_of(engine, i).status, status_of(engine, i).attempts) for i in ids} == {
        ("done", 1)
    }


@pytest.mark.usefixtures("test_handlers")
def test_a_dead_workers_job_is_taken_over_by_the_next_worker_and_run_to_the_end(
    engine: Engine, fast: Settings, database_url: str, tmp_path: Path
) -> None:
    """A `fairdraft worker` process is killed (SIGKILL: no clean-up of any kind) while its
    job runs; the next worker to start finds it silent and runs the job again."""
    job_id = add_job(engine, "slow", {"seconds": 300})
    env = {
        **os.environ,
        "FAIRDRAFT_DATABASE_URL": database_url,
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_JOB_POLL_S": "0.05",
        "FAIRDRAFT_JOB_STALLED_S": "1",
    }
    code = (
        "from service.jobs.handlers import register\n"
        "from tests.test_jobs import slow\n"
        "register('slow', slow)\n"
        "from service.jobs.worker import run_worker\n"
        "from service.settings import Settings\n"
        "run_worker(Settings(_env_file=None))\n"
    )
    doomed = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO)
    try:
        wait_for_status(engine, [job_id], ("running",), timeout_s=120)
    finally:
        doomed.kill()
        doomed.wait(timeout=30)
    time.sleep(fast.job_stalled_s + 0.2)  # its last heartbeat is now older than that
    register("slow", finish_at_once)  # this time the job finishes at once

    with running_worker(engine, fast):
        wait_until_finished(engine, [job_id])

    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result) == (
        "done",
        2,
        {"finished_by": "successor"},
    ), view.error


@pytest.mark.usefixtures("test_handlers")
def test_a_job_whose_worker_died_on_its_last_attempt_fails_and_says_why(
    engine: Engine, fast: Settings, database_url: str
) -> None:
    job_id = add_job(engine, max_attempts=1)
    claim_as_dead_worker(database_url)
    assert status_of(engine, job_id).status == "running"
    time.sleep(fast.job_stalled_s + 0.2)

    with running_worker(engine, fast):
        wait_until_finished(engine, [job_id])

    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.error) == ("failed", 1, WORKER_LOST)
    assert ran == [], "never run again"


@pytest.mark.usefixtures("test_handlers")
def test_a_live_workers_long_job_is_not_taken_over(
    engine: Engine, fast: Settings, database_url: str
) -> None:
    """Its worker's heartbeat goes on while the job runs past the time that makes a silent
    worker dead."""
    job_id = add_job(engine, "slow", {"seconds": 2.5})
    with running_worker(engine, fast):
        wait_for_status(engine, [job_id], ("running",))
        time.sleep(fast.job_stalled_s + 0.8)
        taken = take_over_now(database_url, engine, fast.job_stalled_s)
        wait_until_finished(engine, [job_id])

    assert taken == 0
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result) == ("done", 1, {"slept": 2.5})


@pytest.mark.usefixtures("test_handlers")
def test_the_worker_command_runs_jobs_and_on_sigterm_finishes_the_running_one_and_exits(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    cycle = add_job(engine, "draft_cycle", {"period": "2026-H1", "kinds": ["self_reflection"]})
    env = {
        **os.environ,
        "FAIRDRAFT_DATABASE_URL": database_url,
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_JOB_POLL_S": "0.05",
    }
    code = (
        "from service.jobs.handlers import register\n"
        "from tests.test_jobs import slow\n"
        "register('slow', slow)\n"
        "from service.jobs.worker import run_worker\n"
        "from service.settings import Settings\n"
        "run_worker(Settings(_env_file=None), concurrency=2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO)
    try:
        wait_until_finished(engine, [cycle], timeout_s=120)
        running = add_job(engine, "slow", {"seconds": 1.5})
        wait_for_status(engine, [running], ("running",))
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)

    assert exit_code == 0
    view = status_of(engine, cycle)
    assert view.status == "done" and view.result is not None, view.error
    assert view.result["drafted"] == 0, "an empty store has nobody to draft"
    last = status_of(engine, running)
    assert (last.status, last.attempts, last.result) == ("done", 1, {"slept": 1.5})


# --- retries and failures -----------------------------------------------------------------


@pytest.mark.usefixtures("test_handlers")
def test_an_unexpected_error_is_retried_after_its_back_off_then_fails_with_its_error_kept(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine, "boom", max_attempts=2)
    worker = Worker(engine, fast)

    assert worker.run_once()
    first = status_of(engine, job_id)
    assert not worker.run_once(), "not run again before its back-off"
    with engine.connect() as conn:
        due_in = conn.execute(
            select(PROCRASTINATE_JOBS.c.scheduled_at - func.now()).join(
                Job, Job.procrastinate_job_id == PROCRASTINATE_JOBS.c.id
            )
        ).scalar_one()
    time_passes(engine)
    assert worker.run_once()
    time_passes(engine)
    assert not worker.run_once(), "a failed job is never run again"

    assert (first.status, first.attempts, first.error) == (
        "queued",
        1,
        "internal error (ValueError)",
    )
    assert timedelta(seconds=1) < due_in <= timedelta(seconds=backoff_s(1))
    last = status_of(engine, job_id)
    assert (last.status, last.attempts, last.error) == ("failed", 2, "internal error (ValueError)")


@pytest.mark.usefixtures("test_handlers")
def test_an_unavailable_service_is_retried_and_the_job_then_succeeds(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine, "flaky", max_attempts=3)
    worker = Worker(engine, fast)

    worker.run_once()
    first = status_of(engine, job_id)
    time_passes(engine)
    worker.run_once()

    assert (first.status, first.error) == ("queued", "the model server did not answer")
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result, view.error) == (
        "done",
        2,
        {"ok": True},
        None,
    )


@pytest.mark.usefixtures("test_handlers")
def test_an_error_whose_class_is_permanent_fails_the_job_at_once(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine, "refuse", max_attempts=5)

    Worker(engine, fast).run_once()
    time_passes(engine)

    assert not Worker(engine, fast).run_once()
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.error) == (
        "failed",
        1,
        "payload field 'n' is out of range",
    )


@pytest.mark.usefixtures("test_handlers")
def test_no_evidence_text_reaches_a_stored_error_or_any_log_line(
    engine: Engine, fast: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither ours nor procrastinate's, whose failure lines carry the task's exception."""
    caplog.set_level(logging.DEBUG)
    boomed = add_job(engine, "boom", {"note": SECRET}, max_attempts=1)
    refused = add_job(engine, "refuse", {"note": SECRET}, max_attempts=1)

    with running_worker(engine, fast):
        wait_until_finished(engine, [boomed, refused])

    assert status_of(engine, boomed).error == "internal error (ValueError)"
    assert status_of(engine, refused).error == "payload field 'n' is out of range"
    assert caplog.records, "the worker logged"
    assert SECRET not in caplog.text
    finished = [r for r in caplog.records if getattr(r, "job_id", None) == boomed]
    assert any(getattr(r, "error_type", None) == "ValueError" for r in finished)
    assert any(getattr(r, "status", None) == "failed" for r in finished)


def test_a_stored_error_is_fairdrafts_own_message_or_the_type_alone() -> None:
    refused = IngestRefused("people.csv", [RowError(3, "email", "not an email address")])

    assert describe_error(KeyError(SECRET)) == "internal error (KeyError)"
    assert describe_error(Unavailable("the model server did not answer")) == (
        "the model server did not answer"
    )
    assert describe_error(refused) == (
        "people.csv: refused, 1 invalid row (1 problem); nothing was written: "
        "line 3, email: not an email address"
    )


def test_back_off_doubles_per_attempt_and_is_capped_at_a_minute() -> None:
    assert [backoff_s(a) for a in (1, 2, 3, 6, 20)] == [2, 4, 8, 60, 60]


# --- the API's polling flow ---------------------------------------------------------------


def test_a_draft_asked_for_over_the_api_is_polled_to_done_by_its_requester_only(
    engine: Engine, fast: Settings, api_org: ApiOrg
) -> None:
    with TestClient(create_app(fast, engine=engine, worker=True)) as client:
        asked = client.post(
            f"/api/v1/people/{api_org.ids['cy']}/drafts",
            json={"kind": "promotion_packet", "period": "2026-H1"},
            headers=api_org.auth("bo"),
        )
        assert asked.status_code == 202, asked.text
        location = asked.headers["Location"]
        deadline = time.monotonic() + 60
        job = asked.json()
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(location, headers=api_org.auth("bo")).json()
        others = [client.get(location, headers=api_org.auth(who)) for who in ("cy", "eve")]
        hr = client.get(location, headers=api_org.auth("hal"))

    assert asked.json()["status"] == "queued" and location == f"/api/v1/jobs/{job['id']}"
    assert set(job) == {
        "id",
        "kind",
        "status",
        "attempts",
        "result",
        "error",
        "created_at",
        "updated_at",
    }
    assert (job["kind"], job["status"], job["attempts"], job["error"]) == ("draft", "done", 1, None)
    assert isinstance(job["result"]["draft_id"], int)
    assert [r.status_code for r in others] == [404, 404]
    assert hr.status_code == 200 and hr.json() == job


# --- periodic tasks -----------------------------------------------------------------------


def test_a_long_running_worker_schedules_the_periodic_tasks_and_a_drain_none(
    database_url: str,
) -> None:
    connector = PsycopgConnector(conninfo=libpq(database_url))

    app = build_app(connector, HANDLERS, periodic=True)
    drain = build_app(connector, HANDLERS, periodic=False)

    scheduled = {
        task.name: (p.cron, task.queue, task.queueing_lock)
        for p in app.periodic_registry.periodic_tasks.values()
        for task in [p.task]
    }
    assert set(scheduled) == {
        "take_over_stalled_jobs",
        "remove_ended_sessions",
        "prune_periodic_runs",
        "send_reminders",
        "sync_connectors",
        "deactivate_leavers",
    }
    assert scheduled["take_over_stalled_jobs"][0] == "* * * * *"
    assert scheduled["send_reminders"][0] == Settings(_env_file=None).reminders_cron
    assert scheduled["sync_connectors"][0] == Settings(_env_file=None).connectors_cron
    assert {queue for _, queue, _ in scheduled.values()} == {PERIODIC_QUEUE}
    assert all(lock == name for name, (_, _, lock) in scheduled.items())
    assert set(HANDLERS) <= set(app.tasks) and set(HANDLERS) <= set(drain.tasks)
    assert not drain.periodic_registry.periodic_tasks


def finished_runs(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(PROCRASTINATE_JOBS)
            .where(
                PROCRASTINATE_JOBS.c.task_name == name,
                PROCRASTINATE_JOBS.c.status.in_(("succeeded", "failed")),
            )
        ).scalar_one()


def run_periodic(engine: Engine, name: str) -> None:
    """Queue a run of a periodic task, as its schedule does, and wait for a running worker
    to finish it."""
    before = finished_runs(engine, name)
    deferrer = App(connector=PsycopgConnector())
    with engine.begin() as conn:
        deferrer.configure_task(
            name, queue=PERIODIC_QUEUE, connection=conn.connection.driver_connection
        ).defer(timestamp=int(time.time()))
    deadline = time.monotonic() + 30
    while finished_runs(engine, name) == before:
        assert time.monotonic() < deadline, f"{name} did not run"
        time.sleep(0.05)


@pytest.mark.usefixtures("test_handlers")
def test_the_periodic_take_over_queues_a_silent_workers_job_again_when_run(
    engine: Engine, fast: Settings, database_url: str
) -> None:
    patient = fast.model_copy(update={"job_stalled_s": 2.0})
    job_id = add_job(engine, payload={"n": 7})
    claim_as_dead_worker(database_url)  # silent, but not for long enough yet
    with running_worker(engine, patient):  # its own take-over as it starts finds nothing
        time.sleep(0.3)
        assert status_of(engine, job_id).status == "running"
        time.sleep(patient.job_stalled_s)

        run_periodic(engine, "take_over_stalled_jobs")
        wait_until_finished(engine, [job_id])

    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result) == ("done", 2, {"doubled": 14})


def test_the_periodic_session_cleanup_removes_only_sessions_no_one_can_use(
    engine: Engine, fast: Settings, api_org: ApiOrg
) -> None:
    lifetime = SessionLifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=12))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        ids = {
            name: open_session(conn, api_org.ids["cy"], lifetime=lifetime).id
            for name in ("live", "signed_out", "expired", "idle")
        }
        changes = {
            "signed_out": {"ended_at": now},
            "expired": {"expires_at": now - timedelta(minutes=1)},
            "idle": {"last_seen_at": now - timedelta(minutes=31)},
        }
        for name, values in changes.items():
            conn.execute(update(WebSession).where(WebSession.id == ids[name]).values(**values))

    with running_worker(engine, fast):
        run_periodic(engine, "remove_ended_sessions")

    with engine.connect() as conn:
        left = set(conn.execute(select(WebSession.id)).scalars())
    assert left == {ids["live"]}


@pytest.mark.usefixtures("test_handlers")
def test_the_periodic_prune_removes_old_periodic_runs_and_keeps_our_jobs(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine)
    Worker(engine, fast).run_once()
    with running_worker(engine, fast):
        run_periodic(engine, "remove_ended_sessions")
    old = datetime.now(UTC) - timedelta(hours=PERIODIC_RUNS_KEPT_HOURS + 1)
    with engine.begin() as conn:
        conn.execute(text("UPDATE procrastinate_events SET at = :old"), {"old": old})
        conn.execute(text("DELETE FROM procrastinate_periodic_defers"))  # none the latest now
        old_runs = set(
            conn.execute(
                select(PROCRASTINATE_JOBS.c.id).where(
                    PROCRASTINATE_JOBS.c.queue_name == PERIODIC_QUEUE
                )
            ).scalars()
        )

    with running_worker(engine, fast):
        run_periodic(engine, "prune_periodic_runs")

    with engine.connect() as conn:
        left = set(conn.execute(select(PROCRASTINATE_JOBS.c.id)).scalars())
    assert old_runs and not old_runs & left, "the old periodic runs went"
    view = status_of(engine, job_id)
    assert (view.status, view.result) == ("done", {"doubled": 2}), "our job and its row stay"


def test_a_stale_upload_is_swept_unless_an_ingest_job_still_waits_for_it(
    engine: Engine, fast: Settings
) -> None:
    uploads = uploads_dir(fast)
    uploads.mkdir(parents=True)
    waiting = Path(shutil.copy(FIXTURES / "org" / "people.csv", uploads / "waiting.csv"))
    orphan = Path(shutil.copy(FIXTURES / "org" / "people.csv", uploads / "orphan.csv"))
    add_job(engine, "ingest", {"path": str(waiting)})
    hour_ago = time.time() - 3600
    for path in (waiting, orphan):
        os.utime(path, (hour_ago, hour_ago))

    with engine.connect() as conn:
        removed = remove_stale_uploads(conn, fast, older_than_s=60)

    assert removed == 1
    assert waiting.exists() and not orphan.exists()


# --- the migration from the old queue -----------------------------------------------------


@pytest.mark.usefixtures("test_handlers")
def test_the_old_queues_jobs_are_carried_over_by_the_migration_and_queued_ones_run(
    engine: Engine, fast: Settings
) -> None:
    downgrade(engine, "0006")
    old = {"queued": (0, 3), "running": (2, 3), "done": (1, 3), "failed": (3, 3)}
    with engine.begin() as conn:
        for status, (attempts, max_attempts) in old.items():
            conn.execute(
                text(
                    "INSERT INTO jobs (kind, payload, status, attempts, max_attempts, result)"
                    " VALUES ('echo', CAST(:payload AS jsonb), :status, :attempts, :max,"
                    " CAST(:result AS jsonb))"
                ),
                {
                    "payload": json.dumps({"n": attempts}),
                    "status": status,
                    "attempts": attempts,
                    "max": max_attempts,
                    "result": '{"doubled": 2}' if status == "done" else None,
                },
            )
    upgrade(engine)

    with engine.connect() as conn:
        rows = conn.execute(select(Job.id, Job.payload["n"].as_integer())).all()
    ids: dict[int, int] = {row[0]: row[1] for row in rows}
    by_status = {status_of(engine, i).status for i in ids}
    assert by_status == {"queued", "done", "failed"}, "a running job's worker is gone"
    while Worker(engine, fast).run_once():
        pass
    views = {ids[i]: status_of(engine, i) for i in ids}
    assert (views[0].status, views[0].attempts) == ("done", 1)
    assert (views[2].status, views[2].attempts) == ("done", 2), "its lost attempt not counted"
    assert (views[1].status, views[1].result) == ("done", {"doubled": 2})
    assert views[3].status == "failed"


# --- the handlers -------------------------------------------------------------------------


def test_a_draft_job_stores_a_draft_on_behalf_of_its_requester(
    engine: Engine, fast: Settings, store: Ingestor
) -> None:
    cy = person_id(engine, "cy.diaz@example.com")
    bo = person_id(engine, "bo.chen@example.com")
    job_id = add_job(
        engine,
        "draft",
        {"person_id": cy, "kind": "self_reflection", "period": "2026-H1"},
        requested_by=bo,
    )

    assert Worker(engine, fast).run_once()

    view = status_of(engine, job_id)
    assert view.status == "done" and view.result is not None, view.error
    assert view.result["version"] == 1 and view.result["message"] is None
    with engine.connect() as conn:
        stored = load_version(conn, view.result["draft_id"], 1)
    assert stored.origin == "offline"
    assert stored.author == f"job:{job_id} for bo.chen@example.com"
    assert stored.body.sentences(), "the draft has cited sentences"


def test_a_draft_job_for_a_missing_person_or_bad_payload_fails_without_retry(
    engine: Engine, fast: Settings
) -> None:
    missing = add_job(
        engine, "draft", {"person_id": 999, "kind": "self_reflection", "period": "2026-H1"}
    )
    bad = add_job(engine, "draft", {"person_id": "1", "kind": "self_reflection"})
    worker = Worker(engine, fast)

    while worker.run_once():
        pass

    missing_view, bad_view = status_of(engine, missing), status_of(engine, bad)
    assert (missing_view.status, missing_view.attempts) == ("failed", 1)
    assert missing_view.error == "no person with id 999"
    assert (bad_view.status, bad_view.error) == (
        "failed",
        "payload field 'person_id' must be int",
    )


def test_a_cycle_job_drafts_and_checks_everyone_and_a_bias_report_job_stores_the_report(
    engine: Engine, fast: Settings, store: Ingestor
) -> None:
    cycle = add_job(engine, "draft_cycle", {"period": "2026-H1", "kinds": ["self_reflection"]})
    worker = Worker(engine, fast)
    assert worker.run_once()
    with engine.connect() as conn:
        statuses = conn.execute(select(Draft.status)).scalars().all()
        checks = conn.execute(select(DraftCheck.language)).scalars().all()
    report = add_job(engine, "bias_report", {"cycle": "2026-H1"})
    assert worker.run_once()

    cycle_view, report_view = status_of(engine, cycle), status_of(engine, report)
    assert cycle_view.status == "done" and cycle_view.result is not None, cycle_view.error
    assert cycle_view.result["drafted"] == 3 and cycle_view.result["failed"] == 0
    # new drafts arrive checked, each check keeping the profile the report reuses
    assert cycle_view.result["checked"] == 3 and statuses == ["checked"] * 3
    assert len(checks) == 3 and all(c is not None for c in checks)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DraftCheck)).scalar_one() == 3
    assert report_view.status == "done" and report_view.result is not None, report_view.error
    assert report_view.result["version"] == 1
    assert isinstance(report_view.result["findings"], int)


def test_a_probe_job_without_a_model_says_why_it_probed_nobody(
    engine: Engine, fast: Settings, store: Ingestor
) -> None:
    """The offline drafter writes from the evidence's wording alone, so a swap cannot move
    it by the model's judgement: the probe is for LLM drafts (measured with fake models in
    tests/test_counterfactual.py); the job says so instead of reporting zero shifts."""
    payload = {"period": "2026-H1", "kind": "self_reflection", "sample": 3, "seed": 1}
    job = add_job(engine, "bias_probe", payload)
    assert Worker(engine, fast).run_once()

    view = status_of(engine, job)
    assert view.status == "done" and view.result is not None, view.error
    assert view.result["skipped"] and view.result["probed"] == 0
    assert "@example.com" not in str(view.result)


def test_an_ingest_job_lands_the_upload_and_deletes_it_and_a_refused_upload_too(
    engine: Engine, fast: Settings
) -> None:
    uploads = uploads_dir(fast)
    uploads.mkdir(parents=True)
    good = shutil.copy(FIXTURES / "org" / "people.csv", uploads / "people.csv")
    refused = shutil.copy(
        FIXTURES / "bad" / "people_wrong_header.csv", uploads / "people_wrong_header.csv"
    )
    landed = add_job(engine, "ingest", {"path": str(good), "format": None, "skip_invalid": False})
    kept = add_job(engine, "ingest", {"path": str(refused), "format": "people"})
    worker = Worker(engine, fast)

    while worker.run_once():
        pass

    landed_view, kept_view = status_of(engine, landed), status_of(engine, kept)
    assert landed_view.status == "done" and landed_view.result is not None, landed_view.error
    [summary] = landed_view.result["files"]
    assert summary["format"] == "people" and summary["inserted"] == 4
    assert summary["refused"] == 0 and summary["refused_rows"] == []
    assert not Path(good).exists(), "a landed upload is deleted"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 4
    assert (kept_view.status, kept_view.attempts) == ("failed", 1), "a refusal is not retried"
    assert kept_view.error is not None and "refused" in kept_view.error
    assert not Path(refused).exists(), "a refused upload is removed: no one can retry it"


def test_an_ingest_job_never_deletes_a_file_outside_the_uploads_folder(
    engine: Engine, fast: Settings, tmp_path: Path
) -> None:
    outside = shutil.copy(FIXTURES / "org" / "people.csv", tmp_path / "people.csv")
    job_id = add_job(engine, "ingest", {"path": str(outside)})

    assert Worker(engine, fast).run_once()

    assert status_of(engine, job_id).status == "done"
    assert Path(outside).exists()
