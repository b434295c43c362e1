"""One-time sign-in links (service/access/links.py, the link pages in
service/web/pages/auth.py, `fairdraft sign-in-link`): a link signs its person in once,
within 30 minutes, through a page session; opening it uses nothing up; a used, expired or
unknown link gets a clear page, no session and an audit event, and counts as a failed
sign-in for the throttle; only a hash of the secret is stored and no log line holds it."""

import hashlib
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from typer.testing import CliRunner

from service.access.links import (
    LIFETIME,
    PREFIX,
    LinkState,
    exchange_link,
    issue_link,
    look_up_link,
)
from service.access.sessions import SessionLifetime
from service.app import create_app
from service.cli import app as cli
from service.db.models import AuditEvent, Person, SignInLink, WebSession
from service.settings import Settings, get_settings
from tests.api_org import ApiOrg
from tests.test_web import ORIGIN, sign_in

LINK = "/sign-in/link"
SESSION = SessionLifetime(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def mint(engine: Engine, person_id: int, lifetime: timedelta = LIFETIME) -> str:
    with engine.begin() as conn:
        return issue_link(conn, person_id, actor="test", lifetime=lifetime).secret


def use(client: TestClient, secret: str) -> Any:
    return client.post(LINK, data={"key": secret}, headers=ORIGIN, follow_redirects=False)


def sessions(engine: Engine, person_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).where(WebSession.person_id == person_id)
        ).scalar_one()


@dataclass(frozen=True)
class Event:
    actor: str
    entity_id: str
    after: dict[str, Any]


def audited(engine: Engine, action: str) -> list[Event]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(AuditEvent.actor, AuditEvent.entity_id, AuditEvent.after)
            .where(AuditEvent.action == action)
            .order_by(AuditEvent.id)
        ).all()
    return [Event(r.actor, r.entity_id or "", r.after or {}) for r in rows]


def test_a_link_signs_its_person_in_once_and_lands_on_their_start_page(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    secret = mint(engine, api_org.ids["bo"])

    opened = client.get(f"{LINK}/{secret}")  # as a chat client's preview would
    assert opened.status_code == 200
    assert "Sign in as Bo Chen" in opened.text
    assert 'action="/sign-in/link"' in opened.text
    assert "fairdraft_session" not in opened.headers.get("set-cookie", "")
    assert sessions(engine, api_org.ids["bo"]) == 0, "opening the link used nothing up"

    used = use(client, secret)
    assert used.status_code == 303 and used.headers["location"] == "/"
    cookie = used.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert secret.lower() not in cookie, "the cookie holds a session id, not the link"
    start = client.get("/", follow_redirects=False)
    assert start.headers["location"] == "/team"  # Bo manages Cy and Dee
    assert "Cy Diaz" in client.get("/team").text

    again = use(client, secret)
    assert again.status_code == 410
    assert "already used" in again.text
    assert "set-cookie" not in again.headers
    assert sessions(engine, api_org.ids["bo"]) == 1
    [issued] = audited(engine, "sign_in_link.issued")
    [done] = audited(engine, "sign_in_link.used")
    [refused] = audited(engine, "sign_in_link.refused")
    assert issued.actor == "test" and issued.after["person_id"] == api_org.ids["bo"]
    assert done.entity_id == issued.entity_id and done.after["session_id"] > 0
    assert refused.entity_id == issued.entity_id and refused.after["state"] == "used"
    opened_audit = audited(engine, "session_opened")[-1]
    assert opened_audit.after["sign_in_link_id"] == int(issued.entity_id)


def test_only_a_hash_of_the_secret_is_stored_and_it_expires_in_30_minutes(
    engine: Engine, api_org: ApiOrg
) -> None:
    before = datetime.now(UTC)
    secret = mint(engine, api_org.ids["cy"])

    assert secret.startswith(PREFIX) and len(secret) > 40
    with engine.connect() as conn:
        row = conn.execute(select(SignInLink)).one()
        audit_text = str(conn.execute(select(AuditEvent.after)).all())
    assert row.link_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(row) and secret not in audit_text
    assert timedelta(minutes=29) < row.expires_at - before <= timedelta(minutes=30, seconds=5)


def test_an_expired_link_signs_nobody_in_and_says_when_it_expired(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    secret = mint(engine, api_org.ids["dee"], lifetime=timedelta(minutes=-1))

    opened = client.get(f"{LINK}/{secret}")
    used = use(client, secret)

    assert opened.status_code == used.status_code == 410
    assert "expired at" in opened.text and "30 minutes" in opened.text
    assert "set-cookie" not in used.headers
    assert sessions(engine, api_org.ids["dee"]) == 0
    states = [e.after["state"] for e in audited(engine, "sign_in_link.refused")]
    assert states == ["expired", "expired"]


@pytest.mark.parametrize(
    "secret",
    [
        PREFIX + "A" * 43,  # shaped like ours, never made
        "not-a-link",
        PREFIX + "x" * 5000,
        "<svg onload=alert(1)>",
    ],
)
def test_an_unknown_link_gets_a_clear_page_and_no_session(
    client: TestClient, engine: Engine, secret: str
) -> None:
    opened = client.get(f"{LINK}/{secret}")
    used = use(client, secret)

    assert opened.status_code == 404
    assert "not one fairdraft made" in opened.text
    assert "<svg" not in opened.text
    assert used.status_code in (404, 422)  # 422: a key over the form's 256 characters
    assert "set-cookie" not in used.headers
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(WebSession)).scalar_one() == 0
    assert {e.after["state"] for e in audited(engine, "sign_in_link.refused")} == {"unknown"}


@pytest.fixture
def strict(engine: Engine, settings: Settings, api_org: ApiOrg) -> Iterator[TestClient]:
    limited = settings.model_copy(update={"auth_failure_limit": 3, "auth_failure_window_s": 60})
    with TestClient(create_app(limited, engine=engine, worker=False)) as client:
        yield client


def test_dead_links_count_as_failed_sign_ins_and_no_log_line_holds_a_secret(
    strict: TestClient, api_org: ApiOrg, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    used = mint(engine, api_org.ids["cy"])
    assert use(strict, used).status_code == 303
    guess = PREFIX + "B" * 43
    with caplog.at_level(logging.INFO):
        assert strict.get(f"{LINK}/{guess}").status_code == 404
        assert use(strict, guess).status_code == 404
        assert use(strict, used).status_code == 410
        blocked = strict.get(f"{LINK}/{guess}")
        live = mint(engine, api_org.ids["dee"])
        assert strict.get(f"{LINK}/{live}").status_code == 200
        let_in = use(strict, live)  # a valid link from a throttled address still gets in

    assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
    assert let_in.status_code == 303
    failures = [r for r in caplog.records if getattr(r, "event", None) == "auth_failed"]
    assert len(failures) == 4
    ours = [r for r in caplog.records if r.name.startswith("fairdraft")]  # not the client's
    assert any(getattr(r, "route", None) == "/sign-in/link/{key}" for r in ours)
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in ours)
    for secret in (used, guess, live):
        assert secret not in logged


def test_one_link_used_twice_at_once_opens_one_session(engine: Engine, api_org: ApiOrg) -> None:
    secret = mint(engine, api_org.ids["eve"])
    outcomes: list[LinkState] = []
    first = engine.connect()
    first.begin()
    try:
        won = exchange_link(first, secret, lifetime=SESSION, actor="a", client="1")

        def second() -> None:  # waits on the first's row lock, then finds the link used
            with engine.begin() as conn:
                lost = exchange_link(conn, secret, lifetime=SESSION, actor="b", client="2")
                outcomes.append(lost.look.state)
                assert lost.session is None

        racing = threading.Thread(target=second)
        racing.start()
        racing.join(0.5)
        assert racing.is_alive(), "the second use did not wait for the first"
        first.commit()
        racing.join(10)
    finally:
        first.close()

    assert won.session is not None
    assert outcomes == [LinkState.USED]
    assert sessions(engine, api_org.ids["eve"]) == 1


def test_a_link_signs_out_whoever_the_browser_was_signed_in_as(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    sign_in(client, api_org, "bo")
    secret = mint(engine, api_org.ids["cy"])

    opened = client.get(f"{LINK}/{secret}")
    assert "You are signed in as Bo Chen" in opened.text
    assert use(client, secret).status_code == 303

    assert client.get("/", follow_redirects=False).headers["location"] == "/me"
    with engine.connect() as conn:
        bo = conn.execute(
            select(WebSession.ended_at).where(WebSession.person_id == api_org.ids["bo"])
        ).scalar_one()
    assert bo is not None, "Bo's session ended when the browser signed in as Cy"


def test_a_link_form_posted_from_another_site_is_refused(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    secret = mint(engine, api_org.ids["cy"])

    forged = client.post(
        LINK,
        data={"key": secret},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )

    assert forged.status_code == 403
    assert look_up(engine, secret) is LinkState.LIVE, "the forged post used nothing up"


def look_up(engine: Engine, secret: str) -> LinkState:
    with engine.connect() as conn:
        return look_up_link(conn, secret).state


def test_a_session_from_a_link_ends_like_any_other(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    use(client, mint(engine, api_org.ids["hal"]))
    assert client.get("/", follow_redirects=False).headers["location"] == "/hr"

    signed_out = client.post("/sign-out", headers=ORIGIN, follow_redirects=False)

    assert signed_out.status_code == 303
    assert client.get("/hr", follow_redirects=False).status_code == 303  # to sign-in


# --- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI reads its settings from the environment, as a person's shell gives them."""
    assert settings.database_url is not None
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(settings.home))
    monkeypatch.setenv("FAIRDRAFT_PUBLIC_URL", "https://fairdraft.example.com/")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_cli_prints_a_link_for_a_named_person_alone_on_stdout(
    cli_env: None, api_org: ApiOrg, engine: Engine
) -> None:
    result = CliRunner().invoke(cli, ["sign-in-link", "--person", "Cy.Diaz@example.com"])

    assert result.exit_code == 0, result.output
    url = result.stdout.strip()
    assert url.startswith("https://fairdraft.example.com/sign-in/link/" + PREFIX)
    assert "Cy Diaz <cy.diaz@example.com>" in result.stderr and "UTC" in result.stderr
    assert look_up(engine, url.rsplit("/", 1)[1]) is LinkState.LIVE
    [issued] = audited(engine, "sign_in_link.issued")
    assert issued.actor.startswith("cli:")


def test_the_cli_prints_a_hostile_name_as_typed_and_no_control_sequence(
    cli_env: None, api_org: ApiOrg, engine: Engine
) -> None:
    hostile = "[bold red]x[/] [link=https://evil.example]y[/link] \x1b]0;title\x07"
    with engine.begin() as conn:
        conn.execute(update(Person).where(Person.id == api_org.ids["cy"]).values(name=hostile))

    result = CliRunner().invoke(cli, ["sign-in-link", "--person", "cy.diaz@example.com"])

    assert result.exit_code == 0, result.output
    assert "[bold red]x[/] [link=https://evil.example]y[/link]" in result.stderr
    assert "\x1b" not in result.stderr and "\\x1b]0;title\\x07" in result.stderr


def test_the_cli_refuses_an_unknown_person_in_one_line(cli_env: None, api_org: ApiOrg) -> None:
    result = CliRunner().invoke(cli, ["sign-in-link", "--person", "nobody@example.com"])

    assert result.exit_code == 2
    assert "nobody@example.com" in result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def every_route(routes: Iterable[Any], prefix: str) -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (see
    tests/test_api_authorization.py's `declared_routes`)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from every_route(inner.routes, prefix + getattr(context, "prefix", ""))
        else:
            for method in getattr(route, "methods", None) or ():
                yield method, prefix + route.path


def test_no_http_endpoint_mints_a_link(engine: Engine, settings: Settings) -> None:
    """Whoever may mint a link may become anyone: only the CLI and the demo can."""
    app = create_app(settings, engine=engine, worker=False)
    link_routes = {(m, path) for m, path in every_route(app.routes, "") if "link" in path}
    assert link_routes == {("GET", "/sign-in/link/{key}"), ("POST", "/sign-in/link")}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(SignInLink)).scalar_one() == 0
