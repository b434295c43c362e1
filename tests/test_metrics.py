"""/metrics for operators (service/metrics.py): a scrape after a few requests and jobs finds
every family with sane values; labels are route templates, never paths; the families of
several processes add up in multiprocess mode; the queue is read from the database and a
scrape still answers while it is away. Who may read /metrics is in the authorization
matrix (tests/test_api_authorization.py)."""

import asyncio
import json
import math
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from evals.llm_stub import Reply, Stub, running_stub
from retrieval.embedding import HashingEmbedder
from service.app import create_app
from service.db.engine import make_engine
from service.drafting.llm import DraftingFailed, chat_model, draft_with_model
from service.drafting.prompting import RenderedPrompt
from service.jobs.queue import enqueue, job_status
from service.jobs.worker import Worker
from service.metrics import (
    MULTIPROC_ENV,
    Metrics,
    exposition,
    metered,
    prepare_multiprocess,
    process_metrics,
    status_class,
)
from service.settings import Settings
from tests.api_org import CYCLE, ApiOrg

ROOT = Path(__file__).resolve().parent.parent
TOKEN = secrets.token_urlsafe(32)
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FAMILIES = (
    "fairdraft_http_request_duration_seconds",
    "fairdraft_job_duration_seconds",
    "fairdraft_job_queue_depth",
    "fairdraft_job_queue_oldest_age_seconds",
    "fairdraft_draft_duration_seconds",
    "fairdraft_drafts",
    "fairdraft_llm_call_duration_seconds",
    "fairdraft_llm_tokens",
    "fairdraft_embedding_texts",
    "fairdraft_embedding_seconds",
    "fairdraft_bias_report_duration_seconds",
    "fairdraft_db_pool_connections",
    "fairdraft_db_pool_max_connections",
    "fairdraft_database_up",
)
NEW_RECORDS = "".join(
    json.dumps(
        {
            "source": "jira",
            "external_id": f"MET-{n}",
            "kind": "work_record",
            "subject": "E003",
            "occurred_at": f"2026-04-0{n}T10:00:00+00:00",
            "title": f"Metrics ticket {n}",
            "body": f"Shipped dashboard number {n} for the payments on-call rotation.",
        }
    )
    + "\n"
    for n in (1, 2, 3)
)


# --- reading a scrape ---------------------------------------------------------------------


def parse(text: str) -> tuple[set[str], Samples]:
    """Family names and every sample by (sample name, labels)."""
    families, samples = set(), {}
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return families, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient) -> tuple[str, set[str], Samples]:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return (response.text, *parse(response.text))


def insane(samples: Samples) -> list[str]:
    """Values no family may have: NaN, negative counts or seconds, a histogram whose
    buckets do not rise to its count."""
    problems = [f"{name} {dict(labels)} = {v}" for (name, labels), v in samples.items() if v < 0]
    problems += [f"{name} is NaN" for (name, _), v in samples.items() if math.isnan(v)]
    for (name, labels), count in samples.items():
        if not name.endswith("_count"):
            continue
        base = name.removesuffix("_count")
        buckets = sorted(
            (float(dict(lb)["le"]), v)
            for (n, lb), v in samples.items()
            if n == f"{base}_bucket" and lb - {("le", dict(lb)["le"])} == labels
        )
        if not buckets:
            continue
        counts = [v for _, v in buckets]
        if counts != sorted(counts) or buckets[-1] != (math.inf, count):
            problems.append(f"{base} {dict(labels)}: buckets {buckets} against count {count}")
    return problems


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def stub() -> Iterator[Stub]:
    with running_stub() as running:
        yield running


@pytest.fixture
def metered_settings(settings: Settings, stub: Stub) -> Settings:
    """The metrics token set, drafts written by the stub model, a worker polling fast."""
    return settings.model_copy(
        update={
            "metrics_token": SecretStr(TOKEN),
            "llm_model": "stub",
            "llm_base_url": stub.base_url,
            "llm_max_retries": 0,
            "job_poll_s": 0.05,
        }
    )


@pytest.fixture
def app(engine: Engine, metered_settings: Settings, api_org: ApiOrg) -> FastAPI:
    return create_app(metered_settings, engine=engine, worker=False)


# --- the families -------------------------------------------------------------------------


def test_a_scrape_after_requests_and_jobs_finds_every_family_with_sane_values(
    app: FastAPI,
    engine: Engine,
    metered_settings: Settings,
    api_org: ApiOrg,
    stub: Stub,
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(NEW_RECORDS, encoding="utf-8")
    cy = api_org.ids["cy"]
    with TestClient(app) as client:
        _, _, before = scrape(client)
        answers = [
            client.get("/api/v1/me", headers=api_org.auth("cy")),
            client.get("/api/v1/me", headers=api_org.auth("cy")),
            client.get(f"/api/v1/people/{cy}", headers=api_org.auth("bo")),
            client.get("/api/v1/people/987654321", headers=api_org.auth("hal")),
            client.get("/api/v1/me"),
            client.get("/no/such/page-4242"),
            client.post(
                f"/api/v1/people/{cy}/drafts",
                json={"kind": "self_reflection", "period": CYCLE},
                headers=api_org.auth("cy"),
            ),
            client.post(f"/api/v1/cycles/{CYCLE}/bias-report", headers=api_org.auth("hal")),
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 404, 401, 404, 202, 202]
        with engine.begin() as conn:
            ingest = enqueue(
                conn,
                "ingest",
                {"path": str(records), "format": "records"},
                requested_by=None,
                max_attempts=1,
                actor="test",
            )
        _, _, queued = scrape(client)
        worker = Worker(engine, metered_settings)
        while worker.run_once():
            pass
        text, families, after = scrape(client)
        with engine.connect() as conn:
            ran = [
                job_status(conn, job)
                for job in (answers[-2].json()["id"], answers[-1].json()["id"], ingest)
            ]

    assert [(j.kind, j.status, j.error) for j in ran if j] == [
        ("draft", "done", None),
        ("bias_report", "done", None),
        ("ingest", "done", None),
    ]
    assert set(FAMILIES) <= families, sorted(set(FAMILIES) - families)
    assert not insane(after), insane(after)
    # requests: by the route's template and the status class, never the path sent
    http = "fairdraft_http_request_duration_seconds_count"
    me = {"method": "GET", "route": "/api/v1/me"}
    assert delta(before, after, http, **me, status="2xx") == 2
    assert delta(before, after, http, **me, status="4xx") == 1
    person = {"method": "GET", "route": "/api/v1/people/{person_id}"}
    assert delta(before, after, http, **person, status="2xx") == 1
    assert delta(before, after, http, **person, status="4xx") == 1
    assert delta(before, after, http, method="GET", route="unmatched", status="4xx") == 1
    drafts_route = {"method": "POST", "route": "/api/v1/people/{person_id}/drafts"}
    assert delta(before, after, http, **drafts_route, status="2xx") == 1
    assert delta(before, after, http, method="GET", route="/metrics", status="2xx") == 2
    # no id or raw path in any label (values are numbers: a timestamp may hold the digits)
    labels = {
        value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert not [v for v in labels if "987654321" in v or "4242" in v or f"/people/{cy}" in v]
    # the queue, read from the database: three jobs waited, none is left
    depth, age = "fairdraft_job_queue_depth", "fairdraft_job_queue_oldest_age_seconds"
    for kind in ("draft", "bias_report", "ingest"):
        assert value(queued, depth, kind=kind, state="waiting") == 1, kind
        assert 0 <= value(queued, age, kind=kind) < 120, kind
        assert value(after, depth, kind=kind, state="waiting") == 0, kind
        assert value(after, age, kind=kind) == 0, kind
    assert value(after, depth, kind="draft_cycle", state="running") == 0  # every kind shown
    # jobs, each attempt by kind and outcome
    jobs = "fairdraft_job_duration_seconds"
    for kind in ("draft", "bias_report", "ingest"):
        assert delta(before, after, f"{jobs}_count", kind=kind, outcome="done") == 1, kind
        assert delta(before, after, f"{jobs}_sum", kind=kind, outcome="done") > 0, kind
    # the draft, the model call behind it and its tokens as the stub's usage said
    draft = {"kind": "self_reflection", "drafter": "llm"}
    assert delta(before, after, "fairdraft_draft_duration_seconds_count", **draft) == 1
    assert delta(before, after, "fairdraft_draft_duration_seconds_sum", **draft) > 0
    stored = {"kind": "self_reflection", "outcome": "drafted"}
    assert delta(before, after, "fairdraft_drafts_total", **stored) == 1
    calls = len(stub.requests)
    assert calls >= 1
    llm = "fairdraft_llm_call_duration_seconds"
    assert delta(before, after, f"{llm}_count", outcome="ok") == calls
    prompt_words = sum(
        len(str(message["content"]).split()) for r in stub.requests for message in r["messages"]
    )
    tokens = "fairdraft_llm_tokens_total"
    assert delta(before, after, tokens, type="prompt") == prompt_words
    assert delta(before, after, tokens, type="completion") > 0
    # embedding: the ingest's chunks (and the draft's queries) at a finite rate
    texts = delta(before, after, "fairdraft_embedding_texts_total", model="hashing-384")
    seconds = delta(before, after, "fairdraft_embedding_seconds_total", model="hashing-384")
    assert texts >= 3 and 0 < seconds < 60
    # the bias report job
    report = "fairdraft_bias_report_duration_seconds"
    assert delta(before, after, f"{report}_count", outcome="done") == 1
    assert delta(before, after, f"{report}_sum", outcome="done") > 0
    # the pool, as it is at the scrape (make_engine: 5 kept, 5 more on demand)
    assert value(after, "fairdraft_db_pool_max_connections") == 10
    in_use = value(after, "fairdraft_db_pool_connections", state="in_use")
    idle = value(after, "fairdraft_db_pool_connections", state="idle")
    assert 0 <= in_use <= 10 and 1 <= in_use + idle <= 10
    assert value(after, "fairdraft_database_up") == 1


def test_a_connection_in_use_shows_in_the_pool_at_the_next_scrape(
    app: FastAPI, engine: Engine
) -> None:
    with TestClient(app) as client:
        _, _, idle = scrape(client)
        with engine.connect(), engine.connect():
            _, _, busy = scrape(client)

    in_use = "fairdraft_db_pool_connections"
    assert value(busy, in_use, state="in_use") == value(idle, in_use, state="in_use") + 2


def test_an_unhandled_error_counts_as_a_5xx_of_its_route(app: FastAPI) -> None:
    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/boom/{thing}", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        _, _, before = scrape(client)
        assert client.get("/boom/1").status_code == 500
        _, _, after = scrape(client)

    route = {"method": "GET", "route": "/boom/{thing}"}
    count = "fairdraft_http_request_duration_seconds_count"
    assert delta(before, after, count, **route, status="5xx") == 1


def test_a_method_no_client_should_send_is_one_label_not_a_new_series(app: FastAPI) -> None:
    with TestClient(app) as client:
        client.request("GETX", "/api/v1/me")
        text, _, _ = scrape(client)

    assert "GETX" not in text
    assert 'method="other"' in text


def test_the_queue_says_the_database_is_away_and_the_scrape_still_answers(
    metered_settings: Settings,
) -> None:
    unreachable = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/nothing")
    app = create_app(metered_settings, engine=unreachable, worker=False)
    try:
        with TestClient(app) as client:
            _, families, samples = scrape(client)
    finally:
        unreachable.dispose()

    assert value(samples, "fairdraft_database_up") == 0
    assert "fairdraft_job_queue_depth" not in families
    assert "fairdraft_http_request_duration_seconds" in families


# --- the model call -----------------------------------------------------------------------


PROMPT = RenderedPrompt(
    template="t", template_hash="h", system="You write drafts.", user="Evidence [E1]: shipped."
)


def ask(settings: Settings) -> None:
    model = chat_model(settings)
    asyncio.run(draft_with_model(model, PROMPT, format_retries=0))


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [(Reply.error(500), "http_error"), (Reply.delay(3.0), "timeout")],
)
def test_a_failed_model_call_is_counted_by_what_ended_it(
    settings: Settings, reply: Reply, outcome: str
) -> None:
    registry = process_metrics().registry
    name, labels = "fairdraft_llm_call_duration_seconds", {"outcome": outcome}
    count = registry.get_sample_value(f"{name}_count", labels) or 0.0
    with running_stub([reply]) as stub:
        failing = settings.model_copy(
            update={
                "llm_model": "stub",
                "llm_base_url": stub.base_url,
                "llm_max_retries": 0,
                "llm_timeout_s": 0.5,
            }
        )
        with pytest.raises(DraftingFailed):
            ask(failing)

    assert registry.get_sample_value(f"{name}_count", labels) == count + 1
    assert (registry.get_sample_value(f"{name}_sum", labels) or 0.0) > 0


# --- pieces -------------------------------------------------------------------------------


def test_an_embedder_wrapped_twice_counts_each_text_once() -> None:
    metrics = Metrics(CollectorRegistry())
    once = metered(HashingEmbedder(16), metrics)
    twice = metered(once, metrics)
    twice.embed(["one text", "another"])

    assert twice is once
    texts = metrics.registry.get_sample_value(
        "fairdraft_embedding_texts_total", {"model": "hashing-16"}
    )
    assert texts == 2


def test_status_codes_are_reduced_to_their_class() -> None:
    assert [status_class(s) for s in (200, 302, 404, 503, 99, 600)] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
        "other",
    ]


def test_a_short_metrics_token_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ValidationError, match=r"at least 32 characters.*token_urlsafe"):
        Settings(_env_file=None, metrics_token="guessable")


def test_wrong_metrics_tokens_are_throttled_like_other_failed_authentications(
    engine: Engine, metered_settings: Settings
) -> None:
    strict = metered_settings.model_copy(update={"auth_failure_limit": 2})
    with TestClient(create_app(strict, engine=engine, worker=False)) as client:
        wrong = [
            client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code
            for _ in range(3)
        ]
        right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert wrong == [401, 401, 429]
    assert right.status_code == 200


@pytest.mark.parametrize(
    "header",
    [f"Bearer {'x' * 8000}", "Bearer \xe9\xff\u00a0", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}"],
    ids=["long", "latin-1", "basic", "one-short"],
)
def test_a_hostile_authorization_header_is_a_401_that_quotes_nothing(
    app: FastAPI, header: str
) -> None:
    with TestClient(app) as client:
        answer = client.get("/metrics", headers={b"Authorization": header.encode("latin-1")})

    assert answer.status_code == 401
    assert answer.json()["errors"] == [
        {"field": "Authorization", "reason": "the metrics token is required"}
    ]
    assert TOKEN[:8] not in answer.text


# --- several processes --------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import sys
    from service.metrics import Metrics

    class Pool:  # a QueuePool's counters, as the pool gauges read them
        _max_overflow = 5
        def size(self): return 5
        def checkedout(self): return int(sys.argv[1])
        def checkedin(self): return 1

    metrics = Metrics()
    metrics.job("draft", "done", 0.5)
    metrics.request("GET", "/api/v1/me", 200, 0.01)
    metrics.pool(Pool())
    print("recorded", flush=True)
    sys.stdin.readline()  # live until told to end
    """
)


def child(directory: Path, in_use: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(in_use)],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", MULTIPROC_ENV: str(directory)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "recorded"
    return process


def end(process: subprocess.Popen[str]) -> None:
    process.communicate("\n", timeout=30)


def test_processes_add_up_and_an_ended_ones_pool_is_dropped(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `fairdraft serve --workers N` relies on: each process writes its own files in
    the shared folder; a scrape, answered by any of them, sums them all."""
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "metrics"))
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_1.db").write_bytes(b"an earlier run's")
    directory = prepare_multiprocess(Settings(_env_file=None, home=tmp_path / "home"))
    assert directory == tmp_path / "metrics" and list(directory.iterdir()) == []

    first, second = child(directory, 2), child(directory, 3)
    both = parse(exposition(Metrics(CollectorRegistry()), engine, [], directory=directory).decode())
    end(first)
    one = parse(exposition(Metrics(CollectorRegistry()), engine, [], directory=directory).decode())
    end(second)

    samples = both[1]
    assert value(samples, "fairdraft_job_duration_seconds_count", kind="draft", outcome="done") == 2
    http = {"method": "GET", "route": "/api/v1/me", "status": "2xx"}
    assert value(samples, "fairdraft_http_request_duration_seconds_count", **http) == 2
    assert value(samples, "fairdraft_db_pool_connections", state="in_use") == 5
    assert value(samples, "fairdraft_db_pool_max_connections") == 20
    left = one[1]
    assert value(left, "fairdraft_db_pool_connections", state="in_use") == 3
    assert value(left, "fairdraft_job_duration_seconds_count", kind="draft", outcome="done") == 2
