"""HR's connectors page and a person's sources page over HTTP (issue 17), the API's opt-out
that deletes, and the connector families /metrics reads from the database.

A source's text (an identity's name, a run's error) is shown as text; the forms that
delete (a purge, an opt-out) are refused without their confirmation; everyone but HR gets
the HR page's 403.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from retrieval.schema import Record
from service.app import create_app
from service.connectors.identities import Match, count_unmatched, list_identities, match
from service.connectors.model import Identity, SourceRecord
from service.connectors.sync import run_sync
from service.metrics import ConnectorCollector
from service.settings import Settings
from tests.conftest import CountingEmbedder
from tests.cycle_org import CycleOrg, build_cycle_org
from tests.test_connector_sync import ListConnector
from tests.test_web_cycle import post, sign_in
from tests.test_web_escaping import injected

HOSTILE = '<img src=x onerror="window.__pwned=1">{{7*191}}'
BEA = Identity("chat", "U-bea", "Bea", "bea@example.com")
STRANGER = Identity("chat", "U-x", HOSTILE, None)


@pytest.fixture
def org(engine: Engine) -> CycleOrg:
    return build_cycle_org(engine)


@pytest.fixture
def web(engine: Engine, settings: Settings, org: CycleOrg) -> Iterator[TestClient]:
    app = create_app(settings, engine=engine, worker=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _kudos(number: int, who: Identity) -> SourceRecord:
    return SourceRecord(
        external_id=f"k-{number}",
        kind="recognition",
        subject=who,
        occurred_at=datetime(2026, 11, number, tzinfo=UTC),
        body=f"Thanks for the migration runbook, take {number}.",
    )


@pytest.fixture
def synced(engine: Engine, settings: Settings, org: CycleOrg, embedder: CountingEmbedder) -> None:
    """A 'chat' connector run: Bea's two kudos stored, one for a stranger held back."""
    connector = ListConnector(
        items={r.external_id: r for r in (_kudos(1, BEA), _kudos(2, BEA), _kudos(3, STRANGER))}
    )
    summary = run_sync(engine, settings, connector, actor="t", embedder=lambda: embedder)
    assert (summary.inserted, summary.skipped) == (2, 1)


def _records(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Record)).scalar_one())


def test_hr_sees_runs_and_unmatched_people_as_text_and_no_one_else_sees_the_page(
    web: TestClient, org: CycleOrg, synced: None
) -> None:
    sign_in(web, org, "hana")
    page = web.get("/hr/connectors")
    assert page.status_code == 200
    assert "U-x" in page.text and "&lt;img src=x" in page.text
    assert not injected(page.text)
    assert "its person is not matched" in page.text  # the run's skip reason
    for who in ("mia", "bea"):
        sign_in(web, org, who)
        assert web.get("/hr/connectors").status_code == 403
        _, shown = post(web, "/hr/connectors/sources/slack/purge", {"confirm": "yes"})
        assert "connectors are HR" in shown


def test_hr_matches_an_unmatched_person_by_hand_on_the_page(
    web: TestClient, engine: Engine, org: CycleOrg, synced: None
) -> None:
    sign_in(web, org, "hana")
    status, page = post(web, "/hr/connectors/identities/chat/U-x", {"employee_id": "C004"})
    assert status == 303 and "is now C004" in page
    with engine.connect() as conn:
        assert list_identities(conn, unmatched_only=True, limit=5) == []
    status, page = post(web, "/hr/connectors/identities/chat/U-x", {"employee_id": "C999"})
    assert "no employee" in page and "C999" in page


def test_a_purge_needs_its_confirmation_and_then_deletes_the_sources_records(
    web: TestClient, engine: Engine, org: CycleOrg, synced: None
) -> None:
    sign_in(web, org, "hana")
    _, page = post(web, "/hr/connectors/sources/slack/purge", {})
    assert "tick the box" in page
    # the list connector's source is "chat", which fairdraft does not know as a source
    _, page = post(web, "/hr/connectors/sources/chat/purge", {"confirm": "yes"})
    assert "no source &#39;chat&#39;" in page
    assert _records(engine) == 2
    _, page = post(web, "/hr/connectors/sources/slack/purge", {"confirm": "yes"})
    assert "0 slack records deleted; slack is stopped" in page and _records(engine) == 2
    assert "Resume slack" in page and "by hana@example.com" in page
    _, page = post(web, "/hr/connectors/slack/resume", {})
    assert "slack may sync again" in page and "Resume slack" not in page


def test_a_sync_of_a_connector_that_is_not_configured_is_refused_on_the_page(
    web: TestClient, org: CycleOrg
) -> None:
    sign_in(web, org, "hana")
    status, page = post(web, "/hr/connectors/github/sync", {"full": "true"})
    assert status == 303 and "not configured" in page


def test_a_person_keeps_a_source_out_only_with_the_confirmation_and_may_let_it_in(
    web: TestClient, engine: Engine, org: CycleOrg
) -> None:
    sign_in(web, org, "bea")
    answer = web.get("/me/sources")
    assert answer.status_code == 200 and "Keep github out" in answer.text
    _, page = post(web, "/me/sources/github", {"opted_out": "true"})
    assert "tick the box" in page
    _, page = post(web, "/me/sources/github", {"opted_out": "true", "confirm": "yes"})
    assert "kept out of your evidence" in page and "Let github in again" in page
    _, page = post(web, "/me/sources/github", {"opted_out": "false"})
    assert "Keep github out" in page
    _, page = post(web, "/me/sources/nowhere", {"opted_out": "true"})
    assert "no source &#39;nowhere&#39;" in page


def test_opting_out_through_the_api_deletes_the_callers_records_of_that_source_only(
    web: TestClient, engine: Engine, settings: Settings, org: CycleOrg, embedder: CountingEmbedder
) -> None:
    connector = ListConnector(items={"k-1": _kudos(1, BEA)}, name="slack", system="chat")
    run_sync(engine, settings, connector, actor="t", embedder=lambda: embedder)
    assert _records(engine) == 1
    answer = web.put("/api/v1/me/sources/slack", json={"opted_out": True}, headers=org.auth("al"))
    assert answer.status_code == 200 and _records(engine) == 1  # Al's, not Bea's
    answer = web.put("/api/v1/me/sources/slack", json={"opted_out": True}, headers=org.auth("bea"))
    assert answer.json() == {"source": "slack", "opted_out": True} and _records(engine) == 0
    listed = web.get("/api/v1/me/sources", headers=org.auth("bea")).json()
    assert {"source": "slack", "opted_out": True} in listed


def test_metrics_read_connector_runs_and_unmatched_people_from_the_database(
    engine: Engine, synced: None
) -> None:
    families = {f.name: f for f in ConnectorCollector(engine).collect()}
    records = {
        tuple(s.labels.values()): s.value
        for s in families["fairdraft_connector_records"].samples
        if s.name.endswith("_total")
    }
    assert records[("chat", "inserted")] == 2 and records[("chat", "skipped")] == 1
    unmatched = families["fairdraft_connector_unmatched_identities"].samples
    assert [(s.labels["system"], s.value) for s in unmatched] == [("chat", 1)]
    waits = families["fairdraft_connector_rate_limit_waits"].samples
    assert [s.value for s in waits if s.name.endswith("_total")] == [1]


def test_metrics_count_unmatched_people_as_the_hr_page_does_not_those_unmatched_on_purpose(
    engine: Engine, synced: None
) -> None:
    with engine.begin() as conn:
        match(conn, [Match("chat", "U-x", None)], actor="hr", by="hand")
        assert count_unmatched(conn) == {}
    families = {f.name: f for f in ConnectorCollector(engine).collect()}
    assert families["fairdraft_connector_unmatched_identities"].samples == []
