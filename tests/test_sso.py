"""Single sign-on through an OpenID Connect provider (issue 17): the refusals, at the
callback, against a provider stand-in this file starts (pytest-httpserver on localhost).

The stand-in serves a discovery document shaped like Okta's (tests/fixtures/oidc/), a JWKS
of a key the test generates, and a token endpoint that checks what a real provider checks
(the code is ours and used once, the PKCE verifier hashes to the challenge, the client
authenticates) and answers with an ID token the test signs, one claim changed per case.
The "browser" here is Starlette's TestClient; tests/test_sso_e2e.py drives Chromium through
oidc-provider-mock.
"""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from joserfc.jws import JWSRegistry
from pydantic import SecretStr, ValidationError
from pytest_httpserver import HTTPServer
from sqlalchemy import Engine, insert, select
from typer.testing import CliRunner
from werkzeug import Request as WerkzeugRequest
from werkzeug import Response as WerkzeugResponse

from service.access.sso import COOKIE, Refusal
from service.app import create_app
from service.cli import app
from service.db.models import AuditEvent, Person
from service.settings import Settings, get_settings

FIXTURES = Path(__file__).parent / "fixtures" / "oidc"
CLIENT_ID = "fairdraft-test"
CLIENT_SECRET = "a-client-secret-of-the-test-provider"
DROP = object()  # a claim left out of the ID token
LENIENT = JWSRegistry(strict_check_header=False)  # lets a test add header parameters
PEOPLE = (  # employee id, name, email, active
    ("E1", "Ana Alvarez", "Ana.Alvarez@Example.com", True),
    ("E2", "Leo Left", "leo.left@example.com", False),
)


@dataclass
class Authorization:
    """What the browser brought to the provider's authorization endpoint."""

    params: dict[str, str]


@dataclass
class StandIn:
    """A provider on localhost: discovery, keys, and a token endpoint that checks the code,
    the PKCE verifier and the client before it signs an ID token."""

    server: HTTPServer
    key: RSAKey
    signer: RSAKey
    codes: dict[str, Authorization] = field(default_factory=dict)
    claims: dict[str, object] = field(default_factory=dict)  # this test's changes
    header: dict[str, object] = field(default_factory=dict)  # and to the ID token's header
    token_bodies: list[str] = field(default_factory=list)
    discovery_reads: int = 0

    @property
    def issuer(self) -> str:
        return self.server.url_for("").rstrip("/")

    def serve(self) -> "StandIn":
        self.server.expect_request("/.well-known/openid-configuration").respond_with_handler(
            self._discovery
        )
        self.server.expect_request("/oauth2/v1/keys").respond_with_json(
            KeySet([self.key]).as_dict(private=False)
        )
        self.server.expect_request("/oauth2/v1/token", method="POST").respond_with_handler(
            self._token
        )
        return self

    def authorize(self, location: str) -> tuple[str, str]:
        """The provider's part between the two redirects: a code for the request, and the
        state it sends back."""
        assert location.startswith(self.issuer + "/oauth2/v1/authorize?"), location
        params = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        code = secrets.token_urlsafe(24)
        self.codes[code] = Authorization(params)
        return code, params["state"]

    def _discovery(self, request: WerkzeugRequest) -> WerkzeugResponse:
        self.discovery_reads += 1
        text = (FIXTURES / "openid-configuration.json").read_text().replace("{issuer}", self.issuer)
        return WerkzeugResponse(text, content_type="application/json")

    def _token(self, request: WerkzeugRequest) -> WerkzeugResponse:
        form = request.form
        self.token_bodies.append(request.get_data(as_text=True))
        asked = self.codes.pop(form.get("code", ""), None)
        auth = request.authorization
        problems = [
            asked is None and "unknown or used code",
            form.get("grant_type") != "authorization_code" and "grant_type",
            auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET),
        ]
        if asked is not None:
            verifier = form.get("code_verifier", "")
            digest = hashlib.sha256(verifier.encode()).digest()
            challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            problems += [
                asked.params.get("code_challenge_method") != "S256" and "challenge method",
                asked.params.get("code_challenge") != challenge and "PKCE verifier",
                form.get("redirect_uri") != asked.params.get("redirect_uri") and "redirect_uri",
            ]
        if any(problems) or asked is None:
            return WerkzeugResponse(
                json.dumps({"error": "invalid_grant", "error_description": str(problems)}),
                status=400,
                content_type="application/json",
            )
        now = int(time.time())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": "00u-ana",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": asked.params["nonce"],
            "email": "ana.alvarez@example.com",
            "email_verified": True,
        }
        claims.update(self.claims)
        claims = {k: v for k, v in claims.items() if v is not DROP}
        header = {"alg": "RS256", "kid": self.signer.kid, **self.header}
        id_token = (
            jwt.encode(header, claims, self.signer, registry=LENIENT)
            if header["alg"] == "RS256"
            else forged(header, claims, self.key.as_pem(private=False))
        )
        answer = {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": asked.params.get("scope", ""),
            "id_token": id_token,
        }
        return WerkzeugResponse(json.dumps(answer), content_type="application/json")


def forged(header: dict[str, object], claims: dict[str, object], public_pem: bytes) -> str:
    """A JWT with `alg` none (no signature), or HS256 keyed with the provider's public key:
    the two classic ways round a verifier that trusts the token's own header."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    if header["alg"] == "none":
        return signing_input + "."
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{part(mac)}"


@pytest.fixture(scope="module")
def keys() -> tuple[RSAKey, RSAKey]:
    """The provider's key, and another with the same key id (a forger's)."""
    return (
        RSAKey.generate_key(2048, parameters={"kid": "test-1"}),
        RSAKey.generate_key(2048, parameters={"kid": "test-1"}),
    )


@pytest.fixture
def provider(httpserver: HTTPServer, keys: tuple[RSAKey, RSAKey]) -> StandIn:
    return StandIn(httpserver, keys[0], keys[0]).serve()


def sso_settings(settings: Settings, provider: StandIn) -> Settings:
    return Settings.model_validate(
        {
            **settings.model_dump(),
            "sso_issuer": provider.issuer,
            "sso_client_id": CLIENT_ID,
            "sso_client_secret": SecretStr(CLIENT_SECRET),
            "sso_label": "Example Okta",
        }
    )


@pytest.fixture
def people(engine: Engine) -> dict[str, int]:
    with engine.begin() as conn:
        rows = [
            {
                "employee_id": e,
                "name": n,
                "email": m,
                "active": a,
                "level": "L3",
                "job_family": "eng",
                "department": "Payments",
                "location": "Lisbon",
            }
            for e, n, m, a in PEOPLE
        ]
        inserted = conn.execute(insert(Person).returning(Person.employee_id, Person.id), rows)
        return {row.employee_id: row.id for row in inserted}


@pytest.fixture
def app_client(
    engine: Engine, settings: Settings, provider: StandIn, people: dict[str, int]
) -> Iterator[TestClient]:
    app = create_app(sso_settings(settings, provider), engine=engine, worker=False)
    with TestClient(app) as client:
        yield client


def sign_in_via_provider(client: TestClient, provider: StandIn, next_path: str = "/me") -> Any:
    """Button, provider, callback: the callback's response, not followed."""
    started = client.get(f"/sign-in/oidc?next={next_path}", follow_redirects=False)
    assert started.status_code == 303, started.text
    code, state = provider.authorize(started.headers["location"])
    return client.get(f"/sign-in/oidc/callback?code={code}&state={state}", follow_redirects=False)


def audit_rows(engine: Engine, action: str) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        rows = conn.execute(select(AuditEvent.after).where(AuditEvent.action == action)).all()
    return [dict(r.after or {}) for r in rows]


def refused_page(response: Any) -> str:
    assert "fairdraft_session" not in response.headers.get("set-cookie", ""), response.headers
    return unescape(response.text)


# ---------------------------------------------------------------- the way in


def test_a_person_signs_in_through_the_provider_and_lands_where_they_were_going(
    app_client: TestClient, provider: StandIn, engine: Engine, people: dict[str, int]
) -> None:
    page = app_client.get("/sign-in?next=/me")
    assert "Sign in with Example Okta" in page.text
    assert 'href="/sign-in/oidc?next=/me"' in page.text

    started = app_client.get("/sign-in/oidc?next=/me", follow_redirects=False)
    cookie = started.headers["set-cookie"].lower()
    assert f"{COOKIE}=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "path=/sign-in/oidc" in cookie and "max-age=600" in cookie
    code, state = provider.authorize(started.headers["location"])
    asked = provider.codes[code].params
    assert asked["client_id"] == CLIENT_ID and asked["response_type"] == "code"
    assert asked["scope"] == "openid email profile"
    assert asked["redirect_uri"] == "http://testserver/sign-in/oidc/callback"
    assert asked["code_challenge_method"] == "S256" and len(asked["nonce"]) >= 32

    done = app_client.get(
        f"/sign-in/oidc/callback?code={code}&state={state}", follow_redirects=False
    )
    # A page that moves on to /me by itself: a redirect would reach /me without the new
    # SameSite=Strict cookie, the provider's redirect having started the chain elsewhere.
    assert done.status_code == 200, done.text
    assert '<meta http-equiv="refresh" content="0; url=/me">' in done.text
    session = [c for c in done.headers.get_list("set-cookie") if c.startswith("fairdraft_session=")]
    assert session and "samesite=strict" in session[0].lower() and "httponly" in session[0].lower()
    assert any(c.startswith(f'{COOKIE}=""') for c in done.headers.get_list("set-cookie"))
    me = app_client.get("/me")
    assert me.status_code == 200 and "Ana Alvarez" in me.text  # matched case-insensitively
    assert app_client.get("/hr").status_code == 403  # her own scope, no more
    opened = audit_rows(engine, "sso.signed_in")
    assert opened == [{"person_id": people["E1"], "subject": "00u-ana", "client": "testclient"}]
    assert audit_rows(engine, "session_opened")[0]["oidc"] is True

    # The code was good once: the same callback again is refused (its cookie is spent too).
    again = app_client.get(f"/sign-in/oidc/callback?code={code}&state={state}")
    assert again.status_code == 400


def test_a_next_that_would_leave_the_site_lands_on_the_start_page(
    app_client: TestClient, provider: StandIn
) -> None:
    for elsewhere in ("//evil.example/x", "/%5Cevil.example", "/%09/evil.example", "https://x"):
        done = sign_in_via_provider(app_client, provider, next_path=elsewhere)
        assert done.status_code == 200
        assert 'content="0; url=/"' in done.text and "evil" not in done.text, elsewhere


def test_discovery_is_read_once_per_app_and_each_app_reads_its_own(
    app_client: TestClient,
    provider: StandIn,
    engine: Engine,
    settings: Settings,
) -> None:
    for _ in range(2):
        assert sign_in_via_provider(app_client, provider).status_code == 200
    assert provider.discovery_reads == 1
    other = create_app(sso_settings(settings, provider), engine=engine, worker=False)
    with TestClient(other) as second:
        assert sign_in_via_provider(second, provider).status_code == 200
    assert provider.discovery_reads == 2


# ---------------------------------------------------------------- the refusals


@pytest.mark.parametrize(
    ("claims", "refusal", "says"),
    [
        ({"aud": "another-app"}, Refusal.AUDIENCE, "made for another application"),
        ({"aud": ["another-app", CLIENT_ID]}, Refusal.AUDIENCE, "made for another application"),
        (
            {"exp": int(time.time()) - 120, "iat": int(time.time()) - 900},
            Refusal.EXPIRED,
            "it has expired",
        ),
        ({"nonce": "a-nonce-of-another-sign-in"}, Refusal.NONCE, "belongs to another sign-in"),
        ({"nonce": DROP}, Refusal.NONCE, "belongs to another sign-in"),
        ({"iss": "https://evil.example"}, Refusal.ISSUER, "comes from another issuer"),
        ({"iat": int(time.time()) + 900}, Refusal.CLAIMS, "incomplete or not yet valid"),
        ({"email_verified": False}, Refusal.EMAIL_UNVERIFIED, "is not verified"),
        ({"email": DROP}, Refusal.NO_EMAIL, "did not tell fairdraft your email"),
    ],
    ids=lambda v: v.value if isinstance(v, Refusal) else None,
)
def test_an_id_token_that_fails_a_check_signs_nobody_in(
    app_client: TestClient,
    provider: StandIn,
    engine: Engine,
    claims: dict[str, object],
    refusal: Refusal,
    says: str,
) -> None:
    provider.claims = claims
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code in (401, 403), done.text
    assert says in refused_page(done)
    assert app_client.get("/me", follow_redirects=False).status_code == 303  # to sign-in
    assert [row["reason"] for row in audit_rows(engine, "sso.refused")] == [refusal.value]
    assert audit_rows(engine, "session_opened") == []


def test_a_header_parameter_of_the_providers_own_is_let_through(
    app_client: TestClient, provider: StandIn
) -> None:
    """Entra ID and others add header parameters RFC 7515 does not register."""
    provider.header = {"typ": "JWT", "x5t": "bm90LWEtcmVhbC10aHVtYnByaW50", "x-provider": "1"}
    assert sign_in_via_provider(app_client, provider).status_code == 200


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_an_id_token_with_a_symmetric_or_no_algorithm_signs_nobody_in(
    app_client: TestClient, provider: StandIn, engine: Engine, alg: str
) -> None:
    """A token "signed" with the provider's public key as an HMAC secret, or not at all."""
    provider.header = {"alg": alg}
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code == 401, done.text
    assert [row["reason"] for row in audit_rows(engine, "sso.refused")] == ["signature"]


def test_a_provider_that_cannot_be_reached_gets_an_error_page_not_a_traceback(
    engine: Engine, settings: Settings, provider: StandIn, people: dict[str, int]
) -> None:
    gone = sso_settings(settings, provider).model_copy(
        update={"sso_issuer": "http://127.0.0.1:9", "sso_timeout_s": 2.0}
    )
    with TestClient(create_app(gone, engine=engine, worker=False)) as client:
        started = client.get("/sign-in/oidc", follow_redirects=False)
        assert started.status_code == 503, started.text
        assert "identity provider did not answer" in unescape(started.text)
        assert "Traceback" not in started.text


def test_an_id_token_signed_with_another_key_signs_nobody_in(
    app_client: TestClient, provider: StandIn, engine: Engine, keys: tuple[RSAKey, RSAKey]
) -> None:
    provider.signer = keys[1]  # same key id as the provider's, different key
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code == 401
    assert "signature does not match" in refused_page(done)
    assert [row["reason"] for row in audit_rows(engine, "sso.refused")] == ["signature"]


@pytest.mark.parametrize(
    ("email", "refusal"),
    [("nobody@example.com", Refusal.UNKNOWN_EMAIL), ("leo.left@example.com", Refusal.INACTIVE)],
)
def test_an_unknown_or_inactive_address_is_refused_with_the_same_words(
    app_client: TestClient, provider: StandIn, engine: Engine, email: str, refusal: Refusal
) -> None:
    """The page does not tell a leaver from a stranger (the audit does, for HR)."""
    provider.claims = {"email": email, "sub": "00u-other"}
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code == 403
    text = refused_page(done)
    assert "no active account for the address your identity provider gave" in text
    assert "Leo" not in text and "inactive" not in text and "left" not in text.lower()
    assert audit_rows(engine, "sso.refused") == [
        {"reason": refusal.value, "email": email, "client": "testclient"}
    ]


def test_a_callback_this_browser_did_not_start_is_refused_before_the_provider_is_asked(
    app_client: TestClient, provider: StandIn, engine: Engine
) -> None:
    started = app_client.get("/sign-in/oidc", follow_redirects=False)
    code, state = provider.authorize(started.headers["location"])
    wrong_state = app_client.get(f"/sign-in/oidc/callback?code={code}&state=x{state}")
    assert wrong_state.status_code == 400
    assert "not started in this browser" in refused_page(wrong_state)
    app_client.cookies.clear()
    no_cookie = app_client.get(f"/sign-in/oidc/callback?code={code}&state={state}")
    assert no_cookie.status_code == 400
    forged = app_client.get(
        f"/sign-in/oidc/callback?code={code}&state={state}",
        headers={"Cookie": f"{COOKIE}=eyJzdGF0ZSI6Ij.forged.signature"},
    )
    assert forged.status_code == 400
    assert provider.token_bodies == []  # the code never reached the token endpoint
    assert [r["reason"] for r in audit_rows(engine, "sso.refused")] == ["state"] * 3


def test_a_provider_error_is_shown_by_its_code_only(
    app_client: TestClient, provider: StandIn, engine: Engine
) -> None:
    started = app_client.get("/sign-in/oidc", follow_redirects=False)
    _, state = provider.authorize(started.headers["location"])
    done = app_client.get(
        f"/sign-in/oidc/callback?state={state}&error=access_denied"
        "&error_description=%3Cscript%3Ealert(1)%3C/script%3E"
    )
    assert done.status_code == 401
    assert "did not sign you in (access_denied)" in refused_page(done)
    assert "alert(1)" not in done.text
    assert [r["reason"] for r in audit_rows(engine, "sso.refused")] == ["provider_error"]


def test_no_code_token_or_verifier_reaches_a_log_line_or_the_audit_trail(
    app_client: TestClient,
    provider: StandIn,
    engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    assert sign_in_via_provider(app_client, provider).status_code == 200
    provider.claims = {"aud": "another-app"}
    assert sign_in_via_provider(app_client, provider).status_code == 401
    secrets_seen = []
    for body in provider.token_bodies:
        form = parse_qs(body)
        secrets_seen += [form["code"][0], form["code_verifier"][0]]
    with engine.begin() as conn:
        trail = json.dumps([list(r) for r in conn.execute(select(AuditEvent.after)).all()])
    # Every record but the test client's own lines about the requests it sent.
    ours = [r for r in caplog.records if "http://testserver/" not in r.getMessage()]
    logged = "\n".join(r.getMessage() + str(vars(r)) for r in ours)
    for secret in secrets_seen:
        assert secret not in trail and secret not in logged
    assert "eyJ" not in trail  # no JWT


def test_a_public_client_sends_no_secret_and_still_proves_pkce(
    engine: Engine, settings: Settings, provider: StandIn, people: dict[str, int]
) -> None:
    public = sso_settings(settings, provider).model_copy(
        update={"sso_client_secret": None, "sso_cookie_key": SecretStr("k" * 40)}
    )
    with TestClient(create_app(public, engine=engine, worker=False)) as client:
        done = sign_in_via_provider(client, provider)
    # The stand-in wants the client's secret: a public client is refused there, after
    # sending the verifier and its client id in the body.
    assert done.status_code == 401 and "refused the sign-in code" in unescape(done.text)
    body = parse_qs(provider.token_bodies[0])
    assert body["client_id"] == [CLIENT_ID] and "client_secret" not in body
    assert len(body["code_verifier"][0]) >= 43


# ---------------------------------------------------------------- configuration


def test_without_single_sign_on_there_is_no_button_and_no_flow(client: TestClient) -> None:
    assert "Sign in with" not in client.get("/sign-in").text
    assert client.get("/sign-in/oidc", follow_redirects=False).status_code == 404
    assert client.get("/sign-in/oidc/callback?code=x&state=y").status_code == 404


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"sso_issuer": "https://id.example.com"}, "go together"),
        ({"sso_client_id": "x", "sso_issuer": "http://id.example.com"}, "not an https URL"),
        ({"sso_client_id": "x", "sso_issuer": "https://id.example.com"}, "COOKIE_KEY"),
        (
            {
                "sso_client_id": "x",
                "sso_issuer": "https://id.example.com",
                "sso_client_secret": "s",
                "sso_scopes": "email profile",
            },
            "must include openid",
        ),
        (
            {"sso_client_id": "x", "sso_issuer": "https://id.example.com", "sso_cookie_key": "k"},
            "at least 32",
        ),
    ],
)
def test_an_incomplete_single_sign_on_setting_is_refused_at_start(
    fields: dict[str, str], says: str
) -> None:
    with pytest.raises(ValidationError, match=says):
        Settings(_env_file=None, **fields)  # type: ignore[arg-type]


def test_refused_callbacks_count_as_failed_sign_ins_for_the_address(
    engine: Engine, settings: Settings, provider: StandIn, people: dict[str, int]
) -> None:
    """Past FAIRDRAFT_AUTH_FAILURE_LIMIT, the address is answered 429, as for bad tokens."""
    strict = sso_settings(settings, provider).model_copy(update={"auth_failure_limit": 2})
    provider.claims = {"email": "nobody@example.com"}
    with TestClient(create_app(strict, engine=engine, worker=False)) as client:
        answers = [sign_in_via_provider(client, provider).status_code for _ in range(3)]
    assert answers == [403, 403, 429]
    assert len(audit_rows(engine, "sso.refused")) == 3  # the third is audited too


# ---------------------------------------------------------------- the subject binding


def bound_subject(engine: Engine, person_id: int) -> str | None:
    with engine.begin() as conn:
        return conn.scalar(select(Person.sso_subject).where(Person.id == person_id))


def test_the_first_sign_in_binds_the_subject_and_another_subject_is_refused(
    app_client: TestClient, provider: StandIn, engine: Engine, people: dict[str, int]
) -> None:
    """An email moved at the provider (or by a SCIM client) to another account does not
    take the person with it: the account that signed in first is the only way in."""
    assert sign_in_via_provider(app_client, provider).status_code == 200
    assert bound_subject(engine, people["E1"]) == "00u-ana"
    assert audit_rows(engine, "sso.bound") == [{"sso_subject": "00u-ana", "client": "testclient"}]
    assert sign_in_via_provider(app_client, provider).status_code == 200  # the same subject
    assert len(audit_rows(engine, "sso.bound")) == 1

    app_client.cookies.clear()
    provider.claims = {"sub": "00u-mallory"}  # Ana's address, on another account
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code == 403, done.text
    assert "an account other than the one fairdraft knows for your address" in refused_page(done)
    assert app_client.get("/me", follow_redirects=False).status_code == 303  # to sign-in
    assert audit_rows(engine, "sso.refused") == [
        {"reason": "subject_mismatch", "email": "ana.alvarez@example.com", "client": "testclient"}
    ]
    assert bound_subject(engine, people["E1"]) == "00u-ana"


def test_a_subject_bound_to_one_person_cannot_sign_in_as_another(
    app_client: TestClient, provider: StandIn, engine: Engine, people: dict[str, int]
) -> None:
    """The account that is Ana's, given another person's address, is refused too (and
    the unique subject is never a 500)."""
    with engine.begin() as conn:
        conn.execute(
            insert(Person).values(
                employee_id="E3",
                name="Hana HR",
                email="hana.hr@example.com",
                level="L5",
                job_family="hr",
                department="People",
                location="Lisbon",
            )
        )
    assert sign_in_via_provider(app_client, provider).status_code == 200
    app_client.cookies.clear()
    provider.claims = {"email": "hana.hr@example.com"}  # sub stays 00u-ana
    done = sign_in_via_provider(app_client, provider)
    assert done.status_code == 403, done.text
    assert [r["reason"] for r in audit_rows(engine, "sso.refused")] == ["subject_mismatch"]
    with engine.begin() as conn:
        hana = conn.scalar(select(Person.sso_subject).where(Person.employee_id == "E3"))
    assert hana is None


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    get_settings.cache_clear()


@pytest.mark.usefixtures("cli_env")
def test_hr_unbinds_a_person_and_their_next_sign_in_binds_anew(
    app_client: TestClient, provider: StandIn, engine: Engine, people: dict[str, int]
) -> None:
    assert sign_in_via_provider(app_client, provider).status_code == 200
    app_client.cookies.clear()
    provider.claims = {"sub": "00u-ana-new"}  # her account at the provider was replaced
    assert sign_in_via_provider(app_client, provider).status_code == 403

    unbound = CliRunner().invoke(app, ["sso", "unbind", "E1"])
    assert unbound.exit_code == 0, unbound.output
    assert "E1 unbound" in unbound.output
    assert bound_subject(engine, people["E1"]) is None
    assert audit_rows(engine, "sso.unbound") == [{"sso_subject": None}]
    with engine.begin() as conn:
        before = conn.scalar(select(AuditEvent.before).where(AuditEvent.action == "sso.unbound"))
    assert before == {"sso_subject": "00u-ana"}

    assert sign_in_via_provider(app_client, provider).status_code == 200
    assert bound_subject(engine, people["E1"]) == "00u-ana-new"
    again = CliRunner().invoke(app, ["sso", "unbind", "E2"])  # never signed in
    assert again.exit_code == 0 and "nothing changed" in again.output
    unknown = CliRunner().invoke(app, ["sso", "unbind", "E404"])
    assert unknown.exit_code == 2
    assert "no person has employee id 'E404'" in unknown.output
    assert "Traceback" not in unknown.output
    assert len(audit_rows(engine, "sso.unbound")) == 1
