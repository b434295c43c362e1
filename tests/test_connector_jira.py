"""The Jira Cloud connector against a local server serving Jira's documented answers
(tests/fixtures/jira/): pages by nextPageToken, JQL on `updated` in the account's time
zone, ADF as plain text with no code, epics and story points, a 429 waited out, a longer
one pausing the run, a malformed page failing it, edits and reopened issues followed, and
a second run that changes nothing and embeds nothing."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from werkzeug import Request, Response

from service.connectors.http import SourceFailed
from service.connectors.identities import list_identities
from service.connectors.jira import SEARCH_PATH, JiraConnector, from_settings
from service.connectors.model import Batch
from service.connectors.runs import load_state
from service.connectors.sync import UNMATCHED, run_sync
from service.db.models import Record
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder, Sleeps

JIRA = FIXTURES / "jira"
Handler = Callable[[Request], Response]


def _json(name: str) -> Any:
    return json.loads((JIRA / name).read_text(encoding="utf-8"))


def _reply(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


class FakeJira:
    """Serves the fixture pages: the first run's two pages (by nextPageToken), the
    incremental page for any JQL on `updated`. `limits` are answered (429) before the
    page they stand in front of, once each."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.full = [_json("search_full_1.json"), _json("search_full_2.json")]
        self.incremental: Any = _json("search_incremental.json")
        self.limits: dict[str, str] = {}  # nextPageToken ("" for the first) -> Retry-After
        self.searches: list[dict[str, str]] = []
        server.expect_request("/rest/api/3/myself").respond_with_json(_json("myself.json"))
        server.expect_request(SEARCH_PATH).respond_with_handler(self.search)

    def search(self, request: Request) -> Response:
        args = dict(request.args)
        self.searches.append(args)
        token = args.get("nextPageToken", "")
        if token in self.limits:
            retry_after = self.limits.pop(token)
            return _reply(
                {"errorMessages": ["Rate limit exceeded."]}, 429, {"Retry-After": retry_after}
            )
        if "updated >=" in args["jql"]:
            if isinstance(self.incremental, str):  # an answer that is not JSON at all
                return Response(self.incremental, status=200, content_type="text/html")
            return _reply(self.incremental)
        return _reply(self.full[1] if token == "CAEaAggD" else self.full[0])

    def paths(self) -> list[str]:
        return [request.path for request, _ in self.server.log]


@pytest.fixture
def jira(httpserver: HTTPServer) -> FakeJira:
    return FakeJira(httpserver)


def _settings(base: Settings | None, server: HTTPServer, **extra: object) -> Settings:
    values: dict[str, object] = {
        "jira_url": server.url_for("/").rstrip("/"),
        "jira_email": "fairdraft-sync@example.com",
        "jira_api_token": SecretStr("atlassian-api-token"),
    }
    values.update(extra)
    if base is None:
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return base.model_copy(update=values)


def _connector(settings: Settings, sleeps: Sleeps | None = None) -> JiraConnector:
    connector = from_settings(settings, sleeper=sleeps or Sleeps())
    assert isinstance(connector, JiraConnector)
    return connector


def _batches(connector: JiraConnector, cursor: dict[str, Any] | None = None) -> list[Batch]:
    waits: list[tuple[float, str]] = []
    return list(connector.sync(cursor or {}, full=False, waits=lambda s, r: waits.append((s, r))))


# --- the connector's batches, read directly -------------------------------------------


def test_a_first_sync_reads_done_issues_page_by_page_as_work_records(
    jira: FakeJira, httpserver: HTTPServer
) -> None:
    batches = _batches(_connector(_settings(None, httpserver)))
    assert len(batches) == 2
    assert [s["jql"] for s in jira.searches] == ["statusCategory = Done ORDER BY updated ASC"] * 2
    assert "nextPageToken" not in jira.searches[0]
    assert jira.searches[1]["nextPageToken"] == "CAEaAggD"
    assert "customfield_10016" in jira.searches[0]["fields"].split(",")
    assert jira.paths() == [SEARCH_PATH, SEARCH_PATH]  # a first run needs no time zone
    first = batches[0]
    assert first.cursor == {"updated": "2026-11-20T17:00:01+00:00"}
    assert [s.reason for s in first.skipped] == ["a done issue with no assignee"]
    record = first.records[0]
    assert record.external_id == "issue:10001"
    assert record.kind == "work_record"
    assert record.subject.system == "jira"
    assert record.subject.external_id == "5b10a2844c20165700ede21g"
    assert record.subject.email == "ana.lima@example.com"
    assert record.occurred_at.isoformat() == "2026-11-20T16:02:11+00:00"
    assert batches[1].cursor == {"updated": "2026-11-21T09:30:00+00:00"}
    assert batches[1].records[1].subject.email is None  # hidden by the user's privacy


def test_a_description_in_adf_becomes_plain_text_without_its_code(
    jira: FakeJira, httpserver: HTTPServer
) -> None:
    record = _batches(_connector(_settings(None, httpserver)))[0].records[0]
    assert record.body == (
        "Why\n\nPaired with @Bo Chen to halve retries; see the runbook.\n\n"
        "- Retry storms gone\n- Latency p99 down 30%"
    )
    assert "secret_code_line" not in record.body
    assert record.title == "PAY-101: Cut payment retries <script>alert(1)</script>"


def test_epic_story_points_and_links_go_to_metadata(jira: FakeJira, httpserver: HTTPServer) -> None:
    batches = _batches(_connector(_settings(None, httpserver)))
    story = batches[0].records[0].metadata
    assert story["epic"] == {"key": "PAY-100", "summary": "Payment reliability"}
    assert story["story_points"] == 5.0
    assert story["project"] == "PAY"
    assert story["labels"] == ["reliability", "q4"]
    assert story["url"] == httpserver.url_for("/browse/PAY-101")
    bug = batches[1].records[0].metadata
    assert bug["epic"] == {"key": "WEB-1"}  # the older Epic Link field
    assert bug["story_points"] == 3


def test_an_incremental_jql_starts_before_the_cursor_in_the_accounts_time_zone(
    jira: FakeJira, httpserver: HTTPServer
) -> None:
    settings = _settings(None, httpserver, jira_projects=["PAY", "WEB"])
    batches = _batches(_connector(settings), {"updated": "2026-11-21T09:30:00+00:00"})
    # 09:30 UTC less 5 minutes of overlap, in New York (UTC-5 in November)
    assert jira.searches[0]["jql"] == (
        'project in ("PAY", "WEB") AND updated >= "2026/11/21 04:25" AND '
        '(statusCategory = Done OR status CHANGED AFTER "2026/11/21 04:25") '
        "ORDER BY updated ASC"
    )
    assert jira.paths() == ["/rest/api/3/myself", SEARCH_PATH]
    assert batches[0].deleted == ["issue:10003"]  # reopened: no longer done
    assert batches[0].cursor == {"updated": "2026-11-22T11:00:00+00:00"}


def test_basic_and_bearer_auth_are_sent_as_jira_cloud_expects(
    jira: FakeJira, httpserver: HTTPServer
) -> None:
    _batches(_connector(_settings(None, httpserver)))
    basic = httpserver.log[0][0].headers["Authorization"]
    assert basic == "Basic ZmFpcmRyYWZ0LXN5bmNAZXhhbXBsZS5jb206YXRsYXNzaWFuLWFwaS10b2tlbg=="
    httpserver.clear_log()
    bearer = _settings(
        None,
        httpserver,
        jira_email=None,
        jira_api_token=None,
        jira_bearer_token=SecretStr("oauth-access-token"),
    )
    _batches(_connector(bearer))
    assert httpserver.log[0][0].headers["Authorization"] == "Bearer oauth-access-token"


def test_a_page_token_given_twice_stops_the_run_rather_than_loop(
    jira: FakeJira, httpserver: HTTPServer
) -> None:
    jira.full[1].update(nextPageToken="CAEaAggD", isLast=False)
    with pytest.raises(SourceFailed, match="the same nextPageToken twice"):
        _batches(_connector(_settings(None, httpserver)))
    assert len(jira.searches) == 2


def test_settings_refuse_a_site_without_one_way_in_and_a_project_key_that_is_jql() -> None:
    with pytest.raises(ValidationError, match="FAIRDRAFT_JIRA_API_TOKEN"):
        Settings(_env_file=None, jira_url="https://example.atlassian.net")
    with pytest.raises(ValidationError, match="is not a project key"):
        Settings(_env_file=None, jira_projects=['PAY") OR project = "HR'])
    assert from_settings(Settings(_env_file=None)) is None


# --- end to end through run_sync ----------------------------------------------------


@pytest.fixture
def people(ingestor: Ingestor) -> None:
    ingestor.ingest(FIXTURES / "org" / "people.csv", "people", skip_invalid=False)


def _stored(engine: Engine) -> dict[str, tuple[str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(Record.external_id, Record.title, Record.body).where(Record.source == "jira")
        )
        return {r.external_id: (r.title, r.body) for r in rows}


def _cursor(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(load_state(conn, "jira").cursor)


def test_a_first_run_writes_matched_issues_and_lists_the_unmatched_assignee(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    summary = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert summary.status == "succeeded"
    assert (summary.fetched, summary.inserted) == (4, 2)
    assert summary.skip_reasons == {"a done issue with no assignee": 1, UNMATCHED: 1}
    stored = _stored(engine)
    assert sorted(stored) == ["issue:10001", "issue:10003"]
    assert stored["issue:10001"][0] == "PAY-101: Cut payment retries <script>alert(1)</script>"
    with engine.connect() as conn:
        unmatched = list_identities(conn, unmatched_only=True, limit=10)
    assert [(i.system, i.external_id, i.records_waiting) for i in unmatched] == [
        ("jira", "712020:0a1b2c3d-zed", 1)
    ]
    assert _cursor(engine) == {"updated": "2026-11-21T09:30:00+00:00"}


def test_an_incremental_run_fetches_only_changes_and_follows_an_edit_and_a_reopen(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    jira.searches.clear()
    summary = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert summary.status == "succeeded"
    assert len(jira.searches) == 1 and 'updated >= "2026/11/21 04:25"' in jira.searches[0]["jql"]
    assert (summary.fetched, summary.inserted, summary.updated, summary.deleted) == (2, 0, 1, 1)
    stored = _stored(engine)
    assert sorted(stored) == ["issue:10001"]
    assert stored["issue:10001"] == (
        "PAY-101: Cut payment retries by half",
        "Retries halved with @Bo Chen; no more retry storms.",
    )


def test_a_second_run_over_unchanged_answers_changes_nothing_and_embeds_nothing(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    embedded = len(embedder.texts)
    before = _stored(engine)
    again = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert again.status == "succeeded"
    assert (again.inserted, again.updated, again.deleted, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.unchanged == 1
    assert len(embedder.texts) == embedded
    assert _stored(engine) == before


def test_an_issue_deleted_in_jira_goes_on_a_full_run(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    jira.full[1]["issues"] = [i for i in jira.full[1]["issues"] if i["id"] != "10003"]
    jira.searches.clear()
    full = run_sync(engine, settings, connector, actor="test", full=True)
    assert (full.status, full.deleted, full.chunks_embedded) == ("succeeded", 1, 0)
    assert jira.searches[0]["jql"] == "statusCategory = Done ORDER BY updated ASC"
    assert sorted(_stored(engine)) == ["issue:10001"]


def test_a_429_mid_sync_is_waited_out_and_the_run_goes_on(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    jira.limits["CAEaAggD"] = "7"
    sleeps = Sleeps()
    connector = _connector(_settings(settings, httpserver), sleeps)
    summary = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert summary.status == "succeeded"
    assert (summary.rate_limit_waits, summary.waited_s) == (1, 7.0)
    assert sleeps.slept == [7.0]
    assert [s.get("nextPageToken") for s in jira.searches] == [None, "CAEaAggD", "CAEaAggD"]
    assert sorted(_stored(engine)) == ["issue:10001", "issue:10003"]


def test_a_rate_limit_longer_than_allowed_pauses_and_the_next_run_resumes(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    jira.limits["CAEaAggD"] = "3600"
    connector = _connector(_settings(settings, httpserver, connector_max_wait_s=60))
    paused = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert paused.status == "paused"
    assert paused.error is not None and "3600 s" in paused.error
    assert _cursor(engine) == {"updated": "2026-11-20T17:00:01+00:00"}  # page one kept
    assert sorted(_stored(engine)) == ["issue:10001"]
    jira.searches.clear()
    resumed = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert resumed.status == "succeeded"
    # 17:00 UTC less the overlap, in New York
    assert 'updated >= "2026/11/20 11:55"' in jira.searches[0]["jql"]


def test_a_malformed_page_fails_the_run_clearly_and_keeps_the_cursor(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    jira.incremental = {"issues": [{"id": "10009", "key": "PAY-109", "fields": {"summary": 3}}]}
    failed = run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error.startswith("jira answered a search page not shaped as Jira's: issues.0")
    assert _cursor(engine) == {"updated": "2026-11-21T09:30:00+00:00"}
    jira.incremental = "<html>Service unavailable</html>"
    not_json = run_sync(engine, settings, connector, actor="test")
    assert (not_json.status, not_json.error) == (
        "failed",
        "jira answered with something that is not JSON",
    )
    assert _cursor(engine) == {"updated": "2026-11-21T09:30:00+00:00"}


def test_a_huge_description_is_bounded_and_markup_is_kept_as_text(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    jira: FakeJira,
    httpserver: HTTPServer,
) -> None:
    issue = jira.full[0]["issues"][0]
    issue["fields"]["description"] = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [{"type": "text", "text": "<img onerror=x> " * 20_000}],
            }
        ],
    }
    connector = _connector(_settings(settings, httpserver))
    assert run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder).inserted
    body = _stored(engine)["issue:10001"][1]
    assert len(body) == settings.ingest_max_body_chars
    assert body.startswith("<img onerror=x> <img")


def test_the_fixture_readme_names_its_sources() -> None:
    readme = (JIRA / "README.md").read_text(encoding="utf-8")
    for name in sorted(p.name for p in Path(JIRA).glob("*.json")):
        assert f"`{name}`" in readme


def test_the_registry_builds_the_jira_connector_from_settings(httpserver: HTTPServer) -> None:
    from service.connectors.registry import build, configured

    settings = _settings(None, httpserver)
    assert isinstance(build("jira", settings), JiraConnector)
    assert "jira" in configured(settings)
