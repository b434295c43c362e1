"""Findings of an insider-style review of issue 12's defences: each test fails on the
reviewed commit and passes once the finding is fixed.

- an employee can make the server spool a 50 MB upload before the HR check refuses it;
- a 500 leaves the app without the security headers (CSP, nosniff, no-store);
- pseudonymisation is quadratic in the text: a manager's 100,000-character summary
  holds every panel view for seconds to minutes;
- the ingest nesting check is quadratic on a malformed line (a 1 MB line: about an hour);
- with no FAIRDRAFT_OIDC_AUDIENCE, a JWT the issuer minted for any other application is
  accepted (docs/security.md says the audience is required);
- with two session cookies, the middleware signs the request in with the first while
  sign-out ends the last, so the session in use survives sign-out.

(That a throttled address locked out valid credentials too is tested beside the throttle,
in tests/test_security_http.py.)
"""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import Engine

from service.app import create_app
from service.ingest.validate import too_deep
from service.settings import Settings
from tests.api_org import ApiOrg
from tests.test_pseudonymisation import summary_for_cy
from tests.test_security_http import call

ORIGIN = {"Origin": "http://testserver"}
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(engine: Engine, settings: Settings, api_org: ApiOrg) -> FastAPI:
    return create_app(settings, engine=engine, worker=False)


# Limits before work


def test_an_upload_by_someone_who_may_not_ingest_is_refused_before_its_body_is_read(
    app: FastAPI, api_org: ApiOrg
) -> None:
    """Authentication runs before the body, but the HR check is a route dependency that
    FastAPI solves after it has parsed the multipart form: an employee's upload is read in
    full (and spooled to a temporary file) up to FAIRDRAFT_MAX_UPLOAD_BYTES, then 403."""
    head = (
        b'--x\r\nContent-Disposition: form-data; name="format"\r\n\r\npeople\r\n'
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
    )
    answer = call(
        app,
        "POST",
        "/api/v1/ingest",
        headers={
            **api_org.auth("cy"),
            "Content-Type": "multipart/form-data; boundary=x",
            "Transfer-Encoding": "chunked",
        },
        chunks=8,
        head=head,
    )
    assert answer.status in (403, 413), answer.body
    assert answer.chunks_read <= 2, f"{answer.chunks_read} MiB read before the refusal"


# Headers on every answer


def test_an_unexpected_error_still_carries_the_security_headers(
    app: FastAPI, api_org: ApiOrg
) -> None:
    """Starlette sends the answer of an `Exception` handler from ServerErrorMiddleware,
    outside every added middleware: a 500 has no CSP, nosniff, frame or no-store header
    (and no X-Request-Id). The route stands in for any bug."""

    @app.get("/api/v1/review-boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/review-boom", headers=api_org.auth("cy"))
    assert response.status_code == 500
    for header in ("content-security-policy", "x-content-type-options", "x-frame-options"):
        assert header in response.headers, header
    assert response.headers.get("cache-control") == "no-store"


# Pseudonymisation in linear time


def test_a_managers_long_summary_does_not_stall_the_panel_view(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    """The edit limit is 100,000 characters; the redactor's email pattern retries from
    every character of a run with no "@", so one such summary costs every panel view of the
    cohort (API and page) about 8 s of CPU on this machine."""
    draft = summary_for_cy(client, api_org, engine, settings)
    text = "## Summary\n" + "a" * 99_900 + " [E1]"
    edited = client.post(
        f"/api/v1/drafts/{draft}/versions",
        json={"based_on": 1, "text": text},
        headers=api_org.auth("bo"),
    )
    assert edited.status_code == 201, edited.text
    started = time.perf_counter()
    view = client.get(f"/api/v1/panels/{api_org.panel_id}", headers=api_org.auth("pat"))
    elapsed = time.perf_counter() - started
    assert view.status_code == 200
    assert elapsed < 2.0, f"the panel view took {elapsed:.1f} s"


_REDACT = """
import sys
from service.calibration.redaction import Identity, Redactor
people = {
    1: Identity("Heather Moore", "heather.moore@example.com", "E00033"),
    2: Identity("Pat Singh", "pat.singh@example.com", "E00034"),
}
unit = sys.argv[1].encode().decode("unicode_escape")
Redactor(people, {1: "P-111111"}).redact(unit * (100_000 // len(unit)), 1)
"""


@pytest.mark.parametrize(
    "unit",
    [
        pytest.param("a", id="letters-without-an-at-sign"),
        pytest.param("x@y.zz ", id="many-emails"),
        pytest.param("E33 ", id="many-employee-ids"),
        pytest.param("she/her ", id="many-pronoun-sets"),
        pytest.param("Pat. ", id="an-everyday-word-name-starting-sentences"),
    ],
)
def test_redacting_100k_characters_of_hostile_text_takes_well_under_a_few_seconds(
    unit: str,
) -> None:
    """Quadratic today in five ways: the email pattern (no anchor at a run's start), the
    overlap checks against every span already taken (per email, id or pronoun set, and per
    word), and `_after_title` / `_possessive`, which slice and search the whole text before
    or after each everyday-word name. Measured at 100,000 characters: 8 s, ~18 s, ~28 s,
    ~11 s and ~80 s. Run in a child process so a failure costs the timeout, not minutes."""
    try:
        subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_REDACT), unit],
            cwd=REPO,
            check=True,
            timeout=6,
            capture_output=True,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"redacting 100,000 characters of {unit!r} took over 6 s")


# Ingest checks in linear time


def test_the_nesting_check_of_a_malformed_line_is_linear() -> None:
    """`too_deep`'s string pattern is tried again from every quote of an unterminated
    string: 40 KB of `\\"` take about 6 s, a line at the 1 MB limit about an hour, in the
    upload request (HR) and again in the ingest job."""
    line = '"' + '\\"' * 20_000 + "[" * 20 + "\n"
    started = time.perf_counter()
    too_deep(line, 17)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"{elapsed:.1f} s for one {len(line)}-byte line"


# OIDC


def test_an_oidc_jwt_minted_for_another_application_is_refused(
    engine: Engine, settings: Settings, api_org: ApiOrg, tmp_path: Path
) -> None:
    """With FAIRDRAFT_OIDC_AUDIENCE unset (its default), `aud` is not checked at all, so an
    ID token the company's identity provider issued to any other application (which that
    application's operators, or anyone it leaks to, hold) signs in to fairdraft as its
    owner. Either the setting is required with an issuer, or such a token is refused."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1"}]}))
    try:
        configured = Settings(
            **{
                **settings.model_dump(),
                "oidc_issuer": "https://id.example.com",
                "oidc_jwks_file": jwks,
            },
            _env_file=None,
        )
        app = create_app(configured, engine=engine, worker=False)
    except (ValidationError, ValueError):
        return  # refused at configuration: fixed
    foreign = jwt.encode(
        {
            "iss": "https://id.example.com",
            "aud": "the-wiki",
            "email": "bo.chen@example.com",
            "exp": int(time.time()) + 300,
        },
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    with TestClient(app) as client:
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {foreign}"})
    assert response.status_code == 401, response.text


# Sessions


def test_sign_out_ends_the_session_the_request_was_signed_in_with(
    client: TestClient, api_org: ApiOrg
) -> None:
    """The middleware takes the first `fairdraft_session` of a Cookie header, Starlette's
    `request.cookies` (which sign-out reads) the last. A browser sends two when another
    cookie of that name was set for a parent domain or a longer path (cookie tossing from a
    sibling host): sign-out then ends the wrong one and the session in use lives on."""
    opened = client.post(
        "/sign-in", data={"token": api_org.tokens["cy"]}, headers=ORIGIN, follow_redirects=False
    )
    live = opened.cookies["fairdraft_session"]
    client.cookies.clear()
    both = {"Cookie": f"fairdraft_session={live}; fairdraft_session=tossed"}
    assert client.get("/me", headers=both, follow_redirects=False).status_code == 200
    client.post("/sign-out", headers={**both, **ORIGIN}, follow_redirects=False)
    after = client.get(
        "/me", headers={"Cookie": f"fairdraft_session={live}"}, follow_redirects=False
    )
    assert after.status_code == 303, "the session in use survived sign-out"
