"""The job queue and worker on real Postgres: claims under a lease, retries, take-overs after a
worker died, and the handlers that draft, ingest and report in the background."""

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from service.db.models import AuditEvent, Person
from service.drafting.store import load_version
from service.ingest.directory import find_person
from service.ingest.run import Ingestor, ingest_path
from service.ingest.uploads import uploads_dir
from service.jobs.handlers import HANDLERS, JobContext, describe_error, register
from service.jobs.queue import (
    JobView,
    claim,
    complete,
    enqueue,
    fail,
    heartbeat,
    job_status,
)
from service.jobs.worker import Worker, backoff_s, start_in_thread
from service.settings import Settings
from tests.conftest import FIXTURES

SECRET = "Cy quietly missed the Q2 deadline"  # stands in for evidence text


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


def wait_until_finished(engine: Engine, ids: Sequence[int], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(status_of(engine, i).status in ("done", "failed") for i in ids):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs not finished: {[status_of(engine, i) for i in ids]}")


def echo(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": payload["n"] * 2}


def boom(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    raise ValueError(f"could not parse: {SECRET}")


def slow(_: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(payload["seconds"])
    return {"slept": payload["seconds"]}


@pytest.fixture
def test_handlers() -> Iterator[None]:
    """echo, boom and slow registered for this test only."""
    for kind, handler in (("echo", echo), ("boom", boom), ("slow", slow)):
        register(kind, handler)
    yield
    for kind in ("echo", "boom", "slow"):
        HANDLERS.pop(kind, None)


@pytest.fixture
def fast(settings: Settings) -> Settings:
    """Settings of a worker that polls often, so tests do not wait."""
    return settings.model_copy(update={"job_poll_s": 0.05})


@pytest.fixture
def store(ingestor: Ingestor, org_dir: Path) -> Ingestor:
    ingest_path(ingestor, org_dir)
    return ingestor


def person_id(engine: Engine, reference: str) -> int:
    with engine.connect() as conn:
        return find_person(conn, reference).id


# --- the queue ----------------------------------------------------------------------------


def test_a_queued_job_is_claimed_once_completed_with_its_result_and_audited(
    engine: Engine,
) -> None:
    job_id = add_job(engine, payload={"n": 21})

    claimed = claim(engine, "w1", lease_s=60)
    nothing_left = claim(engine, "w2", lease_s=60)
    stored = complete(engine, job_id, "w1", {"doubled": 42})

    assert claimed is not None and claimed.id == job_id and claimed.attempts == 1
    assert claimed.kind == "echo" and claimed.payload == {"n": 21}
    assert nothing_left is None
    assert stored
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result, view.error) == (
        "done",
        1,
        {"doubled": 42},
        None,
    )
    with engine.connect() as conn:
        event = conn.execute(select(AuditEvent).where(AuditEvent.action == "job_queued")).one()
    assert (event.actor, event.entity, event.entity_id) == ("test", "job", str(job_id))
    assert event.after == {"kind": "echo"}


def test_an_unknown_job_id_has_no_status(engine: Engine) -> None:
    with engine.connect() as conn:
        assert job_status(conn, 404) is None


def test_two_concurrent_claimers_never_take_the_same_job(engine: Engine) -> None:
    ids = {add_job(engine, payload={"n": n}) for n in range(60)}
    taken: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def drain(worker_id: str) -> None:
        start.wait()
        while (job := claim(engine, worker_id, lease_s=60)) is not None:
            taken[worker_id].append(job.id)
            assert complete(engine, job.id, worker_id, {"by": worker_id})

    threads = [threading.Thread(target=drain, args=(w,)) for w in taken]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not set(taken["a"]) & set(taken["b"]), "a job was claimed by both"
    assert sorted(taken["a"] + taken["b"]) == sorted(ids), "every job exactly once"
    views = [status_of(engine, i) for i in ids]
    assert {(v.status, v.attempts) for v in views} == {("done", 1)}


def test_an_expired_lease_is_claimed_again_and_the_first_workers_late_writes_are_ignored(
    engine: Engine,
) -> None:
    job_id = add_job(engine)
    first = claim(engine, "dead-worker", lease_s=0.01)
    time.sleep(0.1)  # the first worker's lease runs out

    second = claim(engine, "w2", lease_s=60)
    late_complete = complete(engine, job_id, "dead-worker", {"from": "dead-worker"})
    late_fail = fail(engine, job_id, "dead-worker", "late", retry_in_s=0)
    late_beat = heartbeat(engine, job_id, "dead-worker", lease_s=60)
    finished = complete(engine, job_id, "w2", {"from": "w2"})

    assert first is not None and second is not None
    assert second.id == job_id and second.attempts == 2
    assert (late_complete, late_fail, late_beat) == (False, None, False)
    assert finished
    view = status_of(engine, job_id)
    assert (view.status, view.result, view.error) == ("done", {"from": "w2"}, None)


def test_a_running_job_within_its_lease_is_not_claimed_again(engine: Engine) -> None:
    add_job(engine)
    assert claim(engine, "w1", lease_s=60) is not None

    assert claim(engine, "w2", lease_s=60) is None


def test_a_heartbeat_keeps_a_long_job_from_being_taken_over(engine: Engine) -> None:
    job_id = add_job(engine)
    assert claim(engine, "w1", lease_s=0.3) is not None

    for _ in range(4):
        time.sleep(0.1)
        assert heartbeat(engine, job_id, "w1", lease_s=0.3)
        assert claim(engine, "w2", lease_s=60) is None

    time.sleep(0.4)
    taken_over = claim(engine, "w2", lease_s=60)
    assert taken_over is not None and taken_over.id == job_id


def test_a_failing_job_is_retried_after_its_backoff_then_fails_with_its_error_kept(
    engine: Engine,
) -> None:
    job_id = add_job(engine, max_attempts=2)

    assert claim(engine, "w1", lease_s=60) is not None
    first = fail(engine, job_id, "w1", "model server answered 503", retry_in_s=60)
    not_yet = claim(engine, "w1", lease_s=60)
    after_first = status_of(engine, job_id)

    assert first == "queued" and not_yet is None, "not claimable before its back-off"
    assert (after_first.status, after_first.error) == ("queued", "model server answered 503")

    job_id_b = add_job(engine, max_attempts=2)
    assert claim(engine, "w1", lease_s=60) is not None
    assert fail(engine, job_id_b, "w1", "first failure", retry_in_s=0) == "queued"
    retried = claim(engine, "w2", lease_s=60)
    last = fail(engine, job_id_b, "w2", "second failure", retry_in_s=0)

    assert retried is not None and retried.id == job_id_b and retried.attempts == 2
    assert last == "failed"
    view = status_of(engine, job_id_b)
    assert (view.status, view.attempts, view.error) == ("failed", 2, "second failure")
    assert claim(engine, "w3", lease_s=60) is None, "a failed job is never run again"


def test_a_failure_without_retry_fails_the_job_at_once(engine: Engine) -> None:
    job_id = add_job(engine, max_attempts=5)
    assert claim(engine, "w1", lease_s=60) is not None

    status = fail(engine, job_id, "w1", "unknown job kind", retry_in_s=None)

    assert status == "failed" and status_of(engine, job_id).attempts == 1


def test_a_job_whose_worker_died_on_its_last_attempt_fails_instead_of_running_again(
    engine: Engine,
) -> None:
    job_id = add_job(engine, max_attempts=1)
    assert claim(engine, "dead-worker", lease_s=0.01) is not None
    time.sleep(0.1)

    again = claim(engine, "w2", lease_s=60)

    assert again is None
    view = status_of(engine, job_id)
    assert view.status == "failed" and view.attempts == 1
    assert view.error is not None and "lease ran out" in view.error


def test_back_off_doubles_per_attempt_and_is_capped_at_a_minute() -> None:
    assert [backoff_s(a) for a in (1, 2, 3, 6, 20)] == [2, 4, 8, 60, 60]


# --- the worker ---------------------------------------------------------------------------


@pytest.mark.usefixtures("test_handlers")
def test_the_worker_thread_runs_jobs_records_failures_and_stops_on_the_event(
    engine: Engine, fast: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fairdraft.jobs")
    echoed = add_job(engine, "echo", {"n": 4})
    broken = add_job(engine, "boom", {"note": SECRET}, max_attempts=1)
    unknown = add_job(engine, "no_such_kind", {"note": SECRET}, max_attempts=3)

    thread, stop = start_in_thread(engine, fast)
    try:
        wait_until_finished(engine, [echoed, broken, unknown])
    finally:
        stop.set()
        thread.join(timeout=10)

    assert not thread.is_alive(), "the worker stops when the event is set"
    assert status_of(engine, echoed).result == {"doubled": 8}
    boom_view = status_of(engine, broken)
    assert boom_view.status == "failed" and boom_view.error is not None
    assert "ValueError" in boom_view.error and SECRET not in boom_view.error
    unknown_view = status_of(engine, unknown)
    assert (unknown_view.status, unknown_view.attempts) == ("failed", 1), "no retry"
    assert (
        unknown_view.error is not None and "unknown job kind 'no_such_kind'" in unknown_view.error
    )
    assert SECRET not in caplog.text, "no payload or error text in the log"
    finished = [r for r in caplog.records if getattr(r, "job_id", None) == echoed]
    assert any(getattr(r, "status", None) == "done" for r in finished)


@pytest.mark.usefixtures("test_handlers")
def test_a_failing_handler_is_retried_by_the_worker_with_back_off(
    engine: Engine, fast: Settings
) -> None:
    job_id = add_job(engine, "boom", max_attempts=3)
    worker = Worker(engine, fast, worker_id="w1")

    worked = worker.run_once()
    view = status_of(engine, job_id)

    assert worked and (view.status, view.attempts) == ("queued", 1)
    assert worker.run_once() is False, "waits out its back-off"


@pytest.mark.usefixtures("test_handlers")
def test_the_worker_heartbeat_keeps_its_job_while_the_handler_runs_past_the_lease(
    engine: Engine, fast: Settings
) -> None:
    short_lease = fast.model_copy(update={"job_lease_s": 0.6})
    job_id = add_job(engine, "slow", {"seconds": 1.5})
    thread, stop = start_in_thread(engine, short_lease)
    try:
        time.sleep(1.0)  # past the first lease: only the heartbeat keeps the job
        stolen = claim(engine, "thief", lease_s=60)
        wait_until_finished(engine, [job_id])
    finally:
        stop.set()
        thread.join(timeout=10)

    assert stolen is None
    view = status_of(engine, job_id)
    assert (view.status, view.attempts, view.result) == ("done", 1, {"slept": 1.5})


def test_the_worker_command_runs_jobs_until_sigterm_then_exits_cleanly(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    job_id = add_job(engine, "draft_cycle", {"period": "2026-H1", "kinds": ["self_reflection"]})
    env = {
        **os.environ,
        "FAIRDRAFT_DATABASE_URL": database_url,
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_JOB_POLL_S": "0.05",
    }
    code = (
        "from service.jobs.worker import run_worker\n"
        "from service.settings import Settings\n"
        "run_worker(Settings(_env_file=None), concurrency=2)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1])
    try:
        wait_until_finished(engine, [job_id], timeout_s=120)
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)

    assert exit_code == 0
    view = status_of(engine, job_id)
    assert view.status == "done" and view.result is not None, view.error
    assert view.result["drafted"] == 0, "an empty store has nobody to draft"


def test_unexpected_errors_are_stored_by_type_only() -> None:
    assert describe_error(KeyError(SECRET)) == ("unexpected KeyError (details in the worker log)")


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


def test_a_cycle_job_drafts_everyone_and_a_bias_report_job_stores_the_report(
    engine: Engine, fast: Settings, store: Ingestor
) -> None:
    cycle = add_job(engine, "draft_cycle", {"period": "2026-H1", "kinds": ["self_reflection"]})
    worker = Worker(engine, fast)
    assert worker.run_once()
    report = add_job(engine, "bias_report", {"cycle": "2026-H1"})
    assert worker.run_once()

    cycle_view, report_view = status_of(engine, cycle), status_of(engine, report)
    assert cycle_view.status == "done" and cycle_view.result is not None, cycle_view.error
    assert cycle_view.result["drafted"] == 3 and cycle_view.result["failed"] == 0
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
