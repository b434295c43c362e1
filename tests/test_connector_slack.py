"""The live Slack connector (slack-sdk's WebClient) against a local server serving the Web
API's documented answers (tests/fixtures/slack/api/): only the named channel read, one
record per person a kudos message mentions, bots and joins skipped, an edit and a deletion
in the re-read window followed, a 429 waited out, a longer one pausing the run, a
malformed page failing it, and a second run that changes nothing and embeds nothing."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, select
from werkzeug import Request, Response

from service.connectors.http import SourceFailed
from service.connectors.identities import list_identities
from service.connectors.model import Batch
from service.connectors.runs import load_state
from service.connectors.slack import SlackConnector, from_settings
from service.connectors.slack_messages import BOT, JOIN, NO_MENTION
from service.connectors.sync import UNMATCHED, run_sync
from service.db.models import Record
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder, Sleeps

API = FIXTURES / "slack" / "api"
FIRST_LATEST = "1763726400.000200"
WEEK = 7 * 86_400


def _json(name: str) -> Any:
    return json.loads((API / name).read_text(encoding="utf-8"))


def _reply(data: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(data), status=status, headers=headers, content_type="application/json"
    )


class FakeSlack:
    """Answers the Web API methods the connector calls from the fixture files. `later`,
    once set, is the history of any read that starts after 0 (the next run's window);
    `limits` answer 429 once, keyed "method:cursor"."""

    def __init__(self, server: HTTPServer) -> None:
        self.members = {m["id"]: m for m in _json("users.json")["members"]}
        self.lists = [_json("conversations.list.1.json"), _json("conversations.list.2.json")]
        self.history: list[Any] = [
            _json("conversations.history.1.json"),
            _json("conversations.history.2.json"),
        ]
        self.later: Any = None
        self.limits: dict[str, str] = {}
        self.calls: list[tuple[str, dict[str, str]]] = []
        server.expect_request(re.compile(r"^/api/[a-zA-Z.]+$")).respond_with_handler(self.answer)

    def answer(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[1]
        params = dict(request.values)
        self.calls.append((method, params))
        key = f"{method}:{params.get('cursor', '')}"
        if key in self.limits:
            wait = self.limits.pop(key)
            return _reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": wait})
        if request.headers.get("Authorization") != "Bearer xoxb-test-token":
            return _reply({"ok": False, "error": "invalid_auth"})
        if method == "conversations.list":
            return _reply(self.lists[1] if params.get("cursor") else self.lists[0])
        if method == "conversations.history":
            if float(params["oldest"]) > 0 and isinstance(self.later, list):
                return self._raw(self.later[1] if params.get("cursor") else self.later[0])
            if float(params["oldest"]) > 0 and self.later is not None:
                return self._raw(self.later)
            return self._raw(self.history[1] if params.get("cursor") else self.history[0])
        if method == "users.info":
            member = self.members.get(params["user"])
            if member is None:
                return _reply({"ok": False, "error": "user_not_found"})
            return _reply({"ok": True, "user": member})
        return _reply({"ok": False, "error": "unknown_method"})

    @staticmethod
    def _raw(data: Any) -> Response:
        if isinstance(data, str):
            return Response(data, status=200, content_type="text/html")
        return _reply(data)

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]

    def histories(self) -> list[dict[str, str]]:
        return [params for method, params in self.calls if method == "conversations.history"]


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


def _settings(base: Settings | None, server: HTTPServer, **extra: object) -> Settings:
    values: dict[str, object] = {
        "slack_token": SecretStr("xoxb-test-token"),
        "slack_api_url": server.url_for("/api/"),
        "slack_channels": ["kudos"],
    }
    values.update(extra)
    if base is None:
        return Settings(_env_file=None, **values)  # type: ignore[arg-type]
    return base.model_copy(update=values)


def _connector(settings: Settings, sleeps: Sleeps | None = None) -> SlackConnector:
    connector = from_settings(settings, sleeper=sleeps or Sleeps())
    assert isinstance(connector, SlackConnector)
    return connector


def _batches(connector: SlackConnector) -> list[Batch]:
    return list(connector.sync({}, full=False, waits=lambda s, r: None))


# --- the connector's batches, read directly -------------------------------------------


def test_only_the_named_channel_is_read_never_direct_messages(
    slack: FakeSlack, httpserver: HTTPServer
) -> None:
    _batches(_connector(_settings(None, httpserver)))
    lists = [params for method, params in slack.calls if method == "conversations.list"]
    assert len(lists) == 2 and lists[1]["cursor"] == "dGVhbTpDMDYxRkE1UEI="
    assert {p["types"] for p in lists} == {"public_channel,private_channel"}
    assert {p["channel"] for p in slack.histories()} == {"C0KUDOS"}
    assert [p.get("cursor") for p in slack.histories()] == [None, "bmV4dF90czoxNzYzNjQwMjAw"]
    assert slack.histories()[0]["oldest"] == "0.000000"


def test_a_kudos_message_is_one_recognition_record_per_person_it_mentions(
    slack: FakeSlack, httpserver: HTTPServer
) -> None:
    batches = _batches(_connector(_settings(None, httpserver)))
    records = {r.external_id: r for b in batches for r in b.records}
    assert sorted(records) == [
        "C0KUDOS:1763640000.000100:U02BO",
        "C0KUDOS:1763640000.000100:U03CY",
        "C0KUDOS:1763640300.000100:U09ZED",
        "C0KUDOS:1763726400.000200:U01ANA",
    ]
    thanks = records["C0KUDOS:1763640000.000100:U03CY"]
    assert thanks.kind == "recognition"
    assert (thanks.subject.external_id, thanks.subject.email) == ("U03CY", "cy.diaz@example.com")
    assert thanks.author is not None and thanks.author.external_id == "U01ANA"
    assert thanks.body == (
        "Huge thanks to @Bo Chen and @Cy for the incident 42 fix "
        "<script>alert(1)</script> & the write-up"
    )
    assert thanks.occurred_at.isoformat() == "2025-11-20T12:00:00.000100+00:00"
    assert thanks.metadata["channel"] == "kudos"
    assert thanks.metadata["mentions"] == ["U02BO", "U03CY"]
    script = records["C0KUDOS:1763640300.000100:U09ZED"]
    assert "rm -rf" not in script.body and script.body.endswith("saved us a week")
    assert script.subject.email is None
    reasons = sorted(s.reason for b in batches for s in b.skipped)
    assert reasons == sorted([NO_MENTION, BOT, JOIN])
    assert batches[-1].cursor == {
        "channels": {
            "C0KUDOS": {
                "latest": FIRST_LATEST,
                "seen": {
                    "1763640000.000100": ["U02BO", "U03CY"],
                    "1763640300.000100": ["U09ZED"],
                    "1763726400.000200": ["U01ANA"],
                },
            }
        }
    }


def test_a_cursor_given_twice_stops_the_run_rather_than_loop(
    slack: FakeSlack, httpserver: HTTPServer
) -> None:
    slack.history[1].update(
        has_more=True, response_metadata={"next_cursor": "bmV4dF90czoxNzYzNjQwMjAw"}
    )
    with pytest.raises(SourceFailed, match="the same next_cursor twice"):
        _batches(_connector(_settings(None, httpserver)))
    assert len(slack.histories()) == 2


def test_settings_refuse_a_channel_name_with_a_hash_and_need_a_token_and_channels() -> None:
    with pytest.raises(ValidationError, match="is not a channel name"):
        Settings(_env_file=None, slack_channels=["#kudos"])
    assert from_settings(Settings(_env_file=None, slack_channels=["kudos"])) is None
    assert from_settings(Settings(_env_file=None, slack_token=SecretStr("xoxb-x"))) is None


# --- end to end through run_sync ----------------------------------------------------


@pytest.fixture
def people(ingestor: Ingestor) -> None:
    ingestor.ingest(FIXTURES / "org" / "people.csv", "people", skip_invalid=False)


def _stored(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(select(Record.external_id, Record.body).where(Record.source == "slack"))
        return {r.external_id: r.body for r in rows}


def _cursor(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(load_state(conn, "slack").cursor)


def _run(engine: Engine, settings: Settings, connector: SlackConnector, embedder: CountingEmbedder):  # type: ignore[no-untyped-def]
    return run_sync(engine, settings, connector, actor="test", embedder=lambda: embedder)


def test_a_first_run_writes_matched_people_and_lists_the_unmatched_one(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    summary = _run(engine, settings, _connector(_settings(settings, httpserver)), embedder)
    assert summary.status == "succeeded"
    assert (summary.fetched, summary.inserted) == (6, 3)
    assert summary.skip_reasons == {NO_MENTION: 1, BOT: 1, JOIN: 1, UNMATCHED: 1}
    assert sorted(_stored(engine)) == [
        "C0KUDOS:1763640000.000100:U02BO",
        "C0KUDOS:1763640000.000100:U03CY",
        "C0KUDOS:1763726400.000200:U01ANA",
    ]
    with engine.connect() as conn:
        unmatched = list_identities(conn, unmatched_only=True, limit=10)
    assert [(i.system, i.external_id, i.display_name) for i in unmatched] == [
        ("slack", "U09ZED", "Zed <b>Guest</b>")
    ]


def test_an_incremental_run_rereads_only_its_window_and_follows_an_edit_and_a_deletion(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    _run(engine, settings, connector, embedder)
    slack.later = _json("conversations.history.later.json")
    slack.calls.clear()
    summary = _run(engine, settings, connector, embedder)
    assert summary.status == "succeeded"
    oldest = float(slack.histories()[0]["oldest"])
    assert oldest == pytest.approx(float(FIRST_LATEST) - WEEK)
    assert len(slack.histories()) == 1
    assert (summary.inserted, summary.updated, summary.deleted) == (1, 1, 2)
    stored = _stored(engine)
    assert sorted(stored) == [
        "C0KUDOS:1763640000.000100:U02BO",  # edited: Cy no longer named
        "C0KUDOS:1763812800.000300:U04DEE",  # new
    ]  # and Dee's kudos to Ana was deleted
    assert stored["C0KUDOS:1763640000.000100:U02BO"] == (
        "Huge thanks to @Bo Chen for the incident 42 fix and the write-up"
    )
    assert _cursor(engine)["channels"]["C0KUDOS"]["latest"] == "1763812800.000300"


def test_a_second_run_over_unchanged_history_changes_nothing_and_embeds_nothing(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    _run(engine, settings, connector, embedder)
    slack.later = _json("conversations.history.later.json")
    _run(engine, settings, connector, embedder)
    embedded, before = len(embedder.texts), _stored(engine)
    again = _run(engine, settings, connector, embedder)
    assert again.status == "succeeded"
    assert (again.inserted, again.updated, again.deleted, again.chunks_embedded) == (0, 0, 0, 0)
    assert again.unchanged == 2
    assert len(embedder.texts) == embedded
    assert _stored(engine) == before


def test_a_full_run_reads_the_channel_whole_and_sweeps_what_is_gone(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    _run(engine, settings, connector, embedder)
    page = slack.history[0]
    page["messages"] = [m for m in page["messages"] if m["ts"] != FIRST_LATEST]
    slack.calls.clear()
    full = run_sync(engine, settings, connector, actor="test", full=True)
    assert (full.status, full.deleted) == ("succeeded", 1)
    assert slack.histories()[0]["oldest"] == "0.000000"
    assert "C0KUDOS:1763726400.000200:U01ANA" not in _stored(engine)


def test_a_full_run_spares_what_a_free_workspace_no_longer_shows(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    """A free workspace's API hides history older than 90 days: a full run that no longer
    sees the first kudos message must not take it for deleted (it may have come from an
    export too); what it does see, it still sweeps."""
    connector = _connector(_settings(settings, httpserver))
    _run(engine, settings, connector, embedder)
    slack.history[1]["messages"] = []  # the oldest page is past the plan's horizon now
    slack.history[0]["response_metadata"] = {"next_cursor": ""}
    slack.history[0]["has_more"] = False
    full = run_sync(engine, settings, connector, actor="test", full=True)
    assert (full.status, full.deleted) == ("succeeded", 0)
    assert "C0KUDOS:1763640000.000100:U02BO" in _stored(engine)


def test_a_429_mid_sync_is_waited_out_and_the_run_goes_on(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    slack.limits["conversations.history:bmV4dF90czoxNzYzNjQwMjAw"] = "3"
    sleeps = Sleeps()
    summary = _run(engine, settings, _connector(_settings(settings, httpserver), sleeps), embedder)
    assert summary.status == "succeeded"
    assert (summary.rate_limit_waits, summary.waited_s) == (1, 3.0)
    assert sleeps.slept == [3.0]
    assert len(slack.histories()) == 3  # the second page asked twice
    assert summary.inserted == 3


def test_a_rate_limit_longer_than_allowed_pauses_and_the_next_run_resumes(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    slack.limits["conversations.history:bmV4dF90czoxNzYzNjQwMjAw"] = "3600"
    connector = _connector(_settings(settings, httpserver, connector_max_wait_s=60))
    paused = _run(engine, settings, connector, embedder)
    assert paused.status == "paused"
    assert paused.error is not None and "3600 s" in paused.error
    assert sorted(_stored(engine)) == ["C0KUDOS:1763726400.000200:U01ANA"]  # page one kept
    seen = _cursor(engine)["channels"]["C0KUDOS"]["seen"]
    assert sorted(seen) == ["1763640300.000100", "1763726400.000200"]
    resumed = _run(engine, settings, connector, embedder)
    assert resumed.status == "succeeded"
    assert len(_stored(engine)) == 3


def test_a_run_paused_after_an_edit_still_deletes_the_dropped_mention_when_it_resumes(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver, connector_max_wait_s=60))
    _run(engine, settings, connector, embedder)
    messages = _json("conversations.history.later.json")["messages"]
    edited, new = messages[-1], messages[0]
    slack.later = [
        {
            "ok": True,
            "messages": [edited, new],
            "has_more": True,
            "response_metadata": {"next_cursor": "later-2"},
        },
        {"ok": True, "messages": messages[1:-1], "has_more": False},
    ]
    slack.limits["conversations.history:later-2"] = "3600"
    paused = _run(engine, settings, connector, embedder)
    assert (paused.status, paused.updated, paused.inserted, paused.deleted) == ("paused", 1, 1, 0)
    assert "C0KUDOS:1763640000.000100:U03CY" in _stored(engine)  # not yet known as dropped
    resumed = _run(engine, settings, connector, embedder)
    assert (resumed.status, resumed.deleted) == ("succeeded", 2)
    assert sorted(_stored(engine)) == [
        "C0KUDOS:1763640000.000100:U02BO",
        "C0KUDOS:1763812800.000300:U04DEE",
    ]


def test_a_malformed_page_fails_the_run_clearly_and_keeps_the_cursor(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    connector = _connector(_settings(settings, httpserver))
    _run(engine, settings, connector, embedder)
    cursor = _cursor(engine)
    slack.later = {"ok": True, "messages": "not a list"}
    failed = _run(engine, settings, connector, embedder)
    assert (failed.status, failed.error) == (
        "failed",
        "slack answered conversations.history with a page not shaped as Slack's: messages",
    )
    assert _cursor(engine) == cursor
    slack.later = "<html>502 Bad Gateway</html>"
    not_json = _run(engine, settings, connector, embedder)
    assert (not_json.status, not_json.error) == (
        "failed",
        "slack answered conversations.history with something that is not JSON",
    )
    assert _cursor(engine) == cursor


def test_a_channel_the_app_cannot_see_and_a_bad_token_fail_the_run_with_the_reason(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    missing = _connector(_settings(settings, httpserver, slack_channels=["kudos", "thanks"]))
    failed = _run(engine, settings, missing, embedder)
    assert failed.status == "failed"
    assert failed.error is not None and "no channel named 'thanks'" in failed.error
    wrong = _connector(_settings(settings, httpserver, slack_token=SecretStr("xoxb-wrong")))
    refused = _run(engine, settings, wrong, embedder)
    assert (refused.status, refused.error) == (
        "failed",
        "slack answered invalid_auth to conversations.list",
    )
    assert "xoxb-wrong" not in str(refused.error)


def test_a_huge_message_is_bounded(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    slack: FakeSlack,
    httpserver: HTTPServer,
) -> None:
    message = slack.history[0]["messages"][0]
    message["text"] = "<@U01ANA> " + "thanks &lt;b&gt; " * 20_000
    _run(engine, settings, _connector(_settings(settings, httpserver)), embedder)
    body = _stored(engine)["C0KUDOS:1763726400.000200:U01ANA"]
    assert len(body) == settings.ingest_max_body_chars
    assert body.startswith("@Ana thanks <b> thanks")


def test_the_registry_builds_the_live_connector_and_the_export_reader(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    from service.connectors.registry import build, slack_export
    from service.connectors.slack_export import SlackExportConnector
    from tests.test_connector_slack_export import _files, _zip

    settings = _settings(None, httpserver)
    assert isinstance(build("slack", settings), SlackConnector)
    export = slack_export(_zip(tmp_path / "export.zip", _files()), settings)
    assert isinstance(export, SlackExportConnector)


def test_the_fixture_readme_names_its_sources() -> None:
    readme = (FIXTURES / "slack" / "README.md").read_text(encoding="utf-8")
    for name in sorted(p.name for p in API.glob("*.json")):
        assert f"`{name}`" in readme
