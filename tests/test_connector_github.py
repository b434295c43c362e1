"""The GitHub connector against a local GitHub (evals/github_stand_in.py) serving the
documented answers in tests/fixtures/github/, through the connector framework's run_sync:
first sync, an incremental run that asks only for what changed, rate limits (primary and
secondary) waited out or paused and resumed, edits and deletions followed, unmatched
logins listed, an unchanged run that embeds nothing, hostile and malformed answers."""

import copy
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from evals.github_stand_in import GitHubStandIn, serve
from retrieval.schema import Record
from service.connectors.github import (
    BOT,
    CLOSED_UNMERGED,
    NO_ASSIGNEE,
    NOT_PLANNED,
    OWN_REVIEW,
    GitHubConnector,
    GitHubCursor,
    from_settings,
)
from service.connectors.github_app import AppCredentials
from service.connectors.identities import import_identities, list_identities
from service.connectors.runs import RunSummary, load_state
from service.connectors.sync import UNMATCHED, run_sync
from service.db.models import Person
from service.ingest.run import Ingestor
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder, Sleeps

GITHUB = FIXTURES / "github"
API = "acme/api"


def _load(name: str) -> Any:
    return json.loads((GITHUB / name).read_text())


def _stand_in() -> GitHubStandIn:
    """The fixtures as acme's two repositories hold them; pages of two, so that every
    list is paged."""
    return GitHubStandIn(
        repos=_load("repos.json"),
        pulls={API: {p["number"]: p for p in _load("pulls.json")}, "acme/web": {}},
        details={API: {1347: _load("pull_1347.json")}},
        reviews={API: {1347: _load("reviews_1347.json")}},
        issues={API: {i["number"]: i for i in _load("issues.json")}, "acme/web": {}},
        page_size=2,
    )


@pytest.fixture
def github() -> Iterator[tuple[GitHubStandIn, str]]:
    stand_in = _stand_in()
    with serve(stand_in) as url:
        yield stand_in, url


@pytest.fixture
def people(ingestor: Ingestor, engine: Engine, tmp_path: Path) -> None:
    """Ana (octocat) and Bo (monalisa) matched by the identities CSV, Cy by the email the
    API gave; hubot-friend is nobody's."""
    ingestor.ingest(FIXTURES / "org" / "people.csv", "people", skip_invalid=False)
    csv = tmp_path / "identities.csv"
    csv.write_text("system,external_id,employee_id\ngithub,octocat,E001\ngithub,monalisa,E002\n")
    with engine.begin() as conn:
        import_identities(conn, csv, actor="hr@example.com")


def _settings(settings: Settings, url: str, **extra: Any) -> Settings:
    update: dict[str, Any] = {
        "github_org": "acme",
        "github_token": SecretStr("ghp_testtoken"),
        "github_api_url": url,
    }
    return settings.model_copy(update={**update, **extra})


def _connector(settings: Settings, sleeps: Sleeps | None = None) -> GitHubConnector:
    connector = from_settings(settings, sleeper=sleeps or Sleeps())
    assert connector is not None
    return connector


def _run(
    engine: Engine,
    settings: Settings,
    embedder: CountingEmbedder,
    sleeps: Sleeps | None = None,
    *,
    full: bool = False,
) -> RunSummary:
    return run_sync(
        engine,
        settings,
        _connector(settings, sleeps),
        actor="test",
        full=full,
        embedder=lambda: embedder,
    )


def _stored(engine: Engine) -> dict[str, Any]:
    with Session(engine) as session:
        rows = session.execute(
            select(Record, Person.employee_id)
            .join(Person, Person.id == Record.subject_id)
            .where(Record.source == "github")
        )
        return {r.Record.external_id: (r.employee_id, r.Record) for r in rows}


def _paths(stand_in: GitHubStandIn) -> list[str]:
    return [seen.path for seen in stand_in.seen]


def _bump(item: dict[str, Any], when: str, **changes: Any) -> None:
    item.update(changes, updated_at=when)


FIRST = {
    "pr:acme/api#1347": "E001",
    "pr:acme/api#1350": "E003",
    "review:acme/api#1347/80": "E002",
    "issue:acme/api#1400": "E002",
}


def test_a_first_sync_keeps_merged_pulls_reviews_and_closed_issues_with_their_people(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    summary = _run(engine, _settings(settings, url), embedder)
    assert summary.status == "succeeded", summary.error
    stored = _stored(engine)
    assert {key: value[0] for key, value in stored.items()} == FIRST
    assert summary.skip_reasons == {
        BOT.format(what="pull request"): 1,
        CLOSED_UNMERGED: 1,
        UNMATCHED: 1,
        OWN_REVIEW: 1,
        BOT.format(what="review"): 1,
        NOT_PLANNED: 1,
        NO_ASSIGNEE: 1,
    }
    pull = stored["pr:acme/api#1347"][1]
    assert pull.kind == "work_record" and pull.title == "Amazing new feature"
    assert pull.occurred_at == datetime(2026, 3, 10, 11, 58, tzinfo=UTC)
    assert "Retries failed card payments with exponential back-off" in pull.body
    assert "Closes #1400. Measured: checkout failures down from 2.1% to 0.3%." in pull.body
    assert "Size: +120 -30 lines in 5 files, 3 commits." in pull.body
    for code in ("charge_card", "SECRET_CONFIG", "screenshot", "new_call", "old_call", "<!--"):
        assert code not in pull.body
    assert pull.meta["url"] == "https://github.com/acme/api/pull/1347"
    assert (pull.meta["additions"], pull.meta["changed_files"]) == (120, 5)
    review = stored["review:acme/api#1347/80"][1]
    assert "Amazing new feature (approved it)" in review.body
    assert "the back-off is much clearer" in review.body and "sleep(2" not in review.body
    issue = stored["issue:acme/api#1400"][1]
    assert issue.meta["assignees"] == ["monalisa", "octocat"] and "TimeoutError" not in issue.body
    with engine.connect() as conn:
        unmatched = list_identities(conn, unmatched_only=True, limit=10)
    assert [(i.system, i.external_id, i.records_waiting) for i in unmatched] == [
        ("github", "hubot-friend", 1)
    ]
    pages = [s.query.get("page") for s in stand_in.seen if s.path == f"/repos/{API}/pulls"]
    assert pages == [None, "2", "3"]  # five pull requests in pages of two
    assert all(s.authorization == "Bearer ghp_testtoken" for s in stand_in.seen)


def test_an_unchanged_second_run_is_answered_304_and_embeds_nothing(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    configured = _settings(settings, url)
    _run(engine, configured, embedder)
    embedded = len(embedder.texts)
    for _ in range(2):  # the second asks issues since the mark; the third is all 304s
        stand_in.seen.clear()
        again = _run(engine, configured, embedder)
        assert again.status == "succeeded"
        assert (again.inserted, again.updated, again.deleted) == (0, 0, 0)
        assert len(embedder.texts) == embedded
        pulls = [s for s in stand_in.seen if s.path.endswith("/pulls")]
        assert pulls and all(s.if_none_match and s.status == 304 for s in pulls)
        assert not [p for p in _paths(stand_in) if "/pulls/" in p]  # no detail, no reviews
    assert {s.status for s in stand_in.seen} == {304}
    assert len(_stored(engine)) == len(FIRST)


def test_an_incremental_run_asks_only_for_what_changed_and_follows_edits(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    configured = _settings(settings, url)
    _run(engine, configured, embedder)
    pulls = stand_in.pulls[API]
    _bump(pulls[1347], "2026-03-12T09:00:00Z", title="Retry card payments", body="Edited.")
    stand_in.details[API][1347].update(pulls[1347])
    added = copy.deepcopy(pulls[1351])
    added.update(number=1352, user=pulls[1349]["user"], title="Speed up refunds")
    _bump(added, "2026-03-12T10:00:00Z", merged_at="2026-03-12T09:59:00Z")
    pulls[1352] = added
    _bump(stand_in.issues[API][1400], "2026-03-12T11:00:00Z", state="open", closed_at=None)
    stand_in.changed()
    stand_in.seen.clear()
    summary = _run(engine, configured, embedder)
    assert summary.status == "succeeded", summary.error
    asked = _paths(stand_in)
    assert sorted(p for p in asked if "/pulls/" in p) == [
        f"/repos/{API}/pulls/1347",
        f"/repos/{API}/pulls/1347/reviews",
        f"/repos/{API}/pulls/1347/reviews",  # four reviews in pages of two
        f"/repos/{API}/pulls/1352",
        f"/repos/{API}/pulls/1352/reviews",
    ]
    pages = [s.query.get("page") for s in stand_in.seen if s.path == f"/repos/{API}/pulls"]
    assert pages == [None, "2"]  # stopped at the first page older than the mark
    issues = [s.query for s in stand_in.seen if s.path == f"/repos/{API}/issues"]
    assert issues[0]["since"] == "2026-03-10T12:05:00Z"
    stored = _stored(engine)
    assert stored["pr:acme/api#1347"][1].title == "Retry card payments"
    assert "Retry card payments" in stored["review:acme/api#1347/80"][1].body
    assert stored["pr:acme/api#1352"][0] == "E002"
    assert "issue:acme/api#1400" not in stored  # reopened: not done work
    assert (summary.inserted, summary.updated, summary.deleted) == (1, 2, 1)


def test_a_deleted_issue_is_removed_by_the_next_full_run(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    configured = _settings(settings, url)
    _run(engine, configured, embedder)
    del stand_in.issues[API][1400]  # an admin deleted it: no list shows it any more
    stand_in.changed()
    assert "issue:acme/api#1400" in _stored(engine)
    embedded = len(embedder.texts)
    full = _run(engine, configured, embedder, full=True)
    assert full.status == "succeeded" and full.deleted == 1
    assert sorted(_stored(engine)) == sorted(set(FIRST) - {"issue:acme/api#1400"})
    assert len(embedder.texts) == embedded


def test_primary_and_secondary_rate_limits_are_waited_out_and_the_run_goes_on(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    reset = int(time.time()) + 30
    primary = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    stand_in.queue(r"/pulls/1347/reviews$", 403, _load("primary_limit.json"), primary)
    stand_in.queue(r"/pulls$", 403, _load("secondary_limit.json"), {"retry-after": "7"})
    stand_in.queue(r"/issues$", 403, _load("secondary_limit.json"))
    sleeps = Sleeps()
    summary = _run(engine, _settings(settings, url), embedder, sleeps)
    assert summary.status == "succeeded", summary.error
    assert summary.rate_limit_waits == 3
    secondary_header, primary_wait, secondary_message = sleeps.slept
    assert secondary_header == 7.0 and secondary_message == 60.0
    assert 25 <= primary_wait <= 32
    assert {key: value[0] for key, value in _stored(engine).items()} == FIRST
    assert [s.status for s in stand_in.seen].count(403) == 3


def test_a_wait_longer_than_allowed_pauses_and_the_next_run_resumes_where_it_stopped(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    configured = _settings(settings, url, connector_max_wait_s=60)
    limit = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3600)}
    stand_in.queue(r"/pulls/1350$", 403, _load("primary_limit.json"), limit)
    paused = _run(engine, configured, embedder)
    assert paused.status == "paused" and "wait" in (paused.error or "")
    assert sorted(_stored(engine)) == ["pr:acme/api#1347", "review:acme/api#1347/80"]
    stand_in.seen.clear()
    resumed = _run(engine, configured, embedder)
    assert resumed.status == "succeeded", resumed.error
    asked = _paths(stand_in)
    assert f"/repos/{API}/pulls/1347" not in asked  # done before the pause: not asked again
    assert f"/repos/{API}/pulls/1350" in asked
    assert {key: value[0] for key, value in _stored(engine).items()} == FIRST
    with engine.connect() as conn:
        cursor = GitHubCursor.model_validate(load_state(conn, "github").cursor)
    pulls = cursor.repos[API].pulls
    assert pulls.mark == datetime(2026, 3, 10, 12, tzinfo=UTC) and pulls.walk is None


def test_markup_is_stored_as_text_and_a_huge_description_is_bounded(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    stand_in.pulls[API][1350]["body"] = "A big change. " + "word " * 400_000
    summary = _run(engine, _settings(settings, url, github_summary_chars=500), embedder)
    assert summary.status == "succeeded", summary.error
    hostile = _stored(engine)["pr:acme/api#1350"][1]
    assert hostile.title == '<script>alert("x")</script> Fix <b>login</b> redirect'
    assert len(hostile.body) < 700 and "word word…" in hostile.body


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"message": "not a list"}, "pull requests of acme/api that is not in GitHub's shape"),
        ([{"number": "x"}], "pull requests of acme/api that is not in GitHub's shape"),
        (b"<html>oops</html>", "not JSON"),
    ],
)
def test_a_malformed_page_fails_the_run_clearly_and_keeps_the_cursor(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
    body: Any,
    said: str,
) -> None:
    stand_in, url = github
    configured = _settings(settings, url)
    _run(engine, configured, embedder)
    with engine.connect() as conn:
        before = load_state(conn, "github").cursor
    _bump(stand_in.pulls[API][1347], "2026-03-12T09:00:00Z", title="Edited")
    stand_in.changed()
    stand_in.queue(rf"/repos/{API}/pulls$", 200, body)
    failed = _run(engine, configured, embedder)
    assert failed.status == "failed" and said in (failed.error or "")
    assert "Traceback" not in (failed.error or "")
    with engine.connect() as conn:
        assert load_state(conn, "github").cursor == before
    assert _stored(engine)["pr:acme/api#1347"][1].title == "Amazing new feature"


def _app_key(tmp_path: Path) -> tuple[Path, Any]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "app.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


def test_a_github_app_signs_a_jwt_for_an_installation_token_and_uses_it(
    settings: Settings, github: tuple[GitHubStandIn, str], tmp_path: Path
) -> None:
    stand_in, url = github
    pem, public = _app_key(tmp_path)
    claims: list[dict[str, Any]] = []

    def check(token: str) -> bool:
        claims.append(jwt.decode(token, public, algorithms=["RS256"]))
        return True

    stand_in.check_jwt = check
    stand_in.token_answer = {
        **_load("installation_token.json"),
        "expires_at": "2099-01-01T00:00:00Z",
    }
    configured = settings.model_copy(
        update={
            "github_org": "acme",
            "github_api_url": url,
            "github_app_id": 12345,
            "github_app_private_key_file": pem,
            "github_app_installation_id": 678,
        }
    )
    batches = list(_connector(configured).sync({}, full=False, waits=lambda s, r: None))
    assert sum(len(b.records) for b in batches) == 5  # hubot-friend's too: matching is later
    [made] = [s for s in stand_in.seen if s.method == "POST"]
    assert made.path == "/app/installations/678/access_tokens"
    assert claims[0]["iss"] == "12345" and claims[0]["exp"] - claims[0]["iat"] <= 600
    token = "Bearer " + _load("installation_token.json")["token"]
    assert all(s.authorization == token for s in stand_in.seen if s.method == "GET")


def test_an_installation_token_is_refreshed_before_it_expires(
    github: tuple[GitHubStandIn, str], tmp_path: Path
) -> None:
    stand_in, url = github
    pem, public = _app_key(tmp_path)
    stand_in.check_jwt = lambda token: bool(
        jwt.decode(token, public, algorithms=["RS256"], options={"verify_iat": False})
    )
    now = [time.time()]
    expires = datetime.fromtimestamp(now[0] + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stand_in.token_answer = {**_load("installation_token.json"), "expires_at": expires}
    credentials = AppCredentials(
        app_id=12345,
        private_key_file=pem,
        installation_id=678,
        api_url=url,
        headers={},
        sleeper=Sleeps(),
        transport=None,
        clock=lambda: now[0],
    )
    credentials.token()
    now[0] += 3000  # ten minutes left: still good
    credentials.token()
    assert credentials.tokens_made == 1
    now[0] += 400  # under five minutes left: a new one
    credentials.token()
    assert credentials.tokens_made == 2


@pytest.mark.parametrize(
    ("update", "said"),
    [
        ({"github_org": "acme"}, "needs FAIRDRAFT_GITHUB_TOKEN"),
        (
            {"github_org": "acme", "github_token": "t", "github_app_id": 1},
            "two ways in",
        ),
        (
            {"github_org": "acme", "github_token": "t", "github_repos": ["../etc"]},
            "'../etc' is not a repository name",
        ),
        ({"github_org": "-acme/x"}, "github_org"),
    ],
)
def test_incomplete_or_wrong_github_settings_are_refused_by_name(
    update: dict[str, Any], said: str
) -> None:
    with pytest.raises(ValidationError, match=said.replace("(", r"\(")):
        Settings(_env_file=None, **update)


def test_the_connector_is_off_without_an_org(settings: Settings) -> None:
    assert from_settings(settings) is None


def test_an_allow_list_reads_only_its_repositories_and_skips_issues_turned_off(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    stand_in, url = github
    configured = _settings(settings, url, github_repos=["web", "api"])
    first = _run(engine, configured, embedder)
    assert first.status == "succeeded", first.error
    asked = _paths(stand_in)
    assert "/orgs/acme/repos" not in asked and "/repos/acme/web/issues" not in asked
    assert {"/repos/acme/web", "/repos/acme/api", "/repos/acme/api/issues"} <= set(asked)
    stand_in.seen.clear()
    _run(engine, configured, embedder)
    repos = [s for s in stand_in.seen if s.path in ("/repos/acme/web", "/repos/acme/api")]
    assert len(repos) == 2 and all(s.status == 304 for s in repos)


def test_an_allow_listed_repository_that_does_not_exist_fails_the_run_by_name(
    engine: Engine,
    settings: Settings,
    people: None,
    embedder: CountingEmbedder,
    github: tuple[GitHubStandIn, str],
) -> None:
    _, url = github
    failed = _run(engine, _settings(settings, url, github_repos=["nope"]), embedder)
    assert failed.status == "failed"
    assert failed.error == "github answered 404 to GET /repos/acme/nope"


def test_small_batches_each_end_at_a_cursor_that_resumes_after_them(
    settings: Settings, github: tuple[GitHubStandIn, str]
) -> None:
    """Pages are gathered into batches of at least `batch_records`; every batch but a
    list's last ends at a walk (the range read), the last at the new mark."""
    _, url = github
    connector = _connector(_settings(settings, url, github_repos=["api"]))
    connector.batch_records = 1
    batches = list(connector.sync({}, full=False, waits=lambda s, r: None))
    pulls = [GitHubCursor.model_validate(b.cursor).repos[API].pulls for b in batches[:3]]
    assert [p.walk is not None for p in pulls] == [True, True, False]
    assert pulls[0].walk and pulls[1].walk and pulls[1].walk.below < pulls[0].walk.below
    assert pulls[2].mark == datetime(2026, 3, 10, 12, tzinfo=UTC) and pulls[2].etag
    assert sum(b.fetched for b in batches) == 13  # 5 pulls, 4 reviews, 4 issues


def test_the_fixture_readme_names_every_fixture() -> None:
    readme = (GITHUB / "README.md").read_text(encoding="utf-8")
    for name in sorted(path.name for path in GITHUB.glob("*.json")):
        assert f"`{name}`" in readme


def test_the_registry_builds_the_github_connector_when_configured(settings: Settings) -> None:
    from service.connectors.registry import build, configured

    configured_settings = _settings(settings, "http://127.0.0.1:9")
    assert isinstance(build("github", configured_settings), GitHubConnector)
    assert "github" in configured(configured_settings) and "github" not in configured(settings)
