"""Single sign-on in headless Chromium (issue 17): a person signs in through a local OpenID
Connect provider, oidc-provider-mock (a Flask app on werkzeug's server in a thread), from
the sign-in page's button to their own page; a wrong audience, an expired ID token and an
unknown email are refused in the browser with the sign-in page saying why.

The mock issues ID tokens for the client id that asks, valid for its token lifetime: it
cannot be asked for one with another audience, and an expired one only from a second
provider whose every token is expired. So a Flask `after_request` hook on the mock's token
endpoint re-signs the ID token it just made, with the mock's own key (the one its JWKS
serves), one claim changed: the browser, the authorization request, the code, PKCE and the
back channel stay the provider's real ones, and only the claim under test differs. The
mock ignores PKCE (it registers no code-challenge extension); tests/test_sso.py's stand-in
checks the verifier.

Reuses tests/test_e2e.py's browser, server and axe scan; `settings` is overridden here so
that `live` serves an app with single sign-on pointed at the mock.
"""

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask
import oidc_provider_mock  # type: ignore[import-untyped]
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from playwright.sync_api import Page, expect
from pydantic import SecretStr
from sqlalchemy import select
from werkzeug.serving import make_server

from service.db.models import AuditEvent
from service.settings import Settings
from tests import test_e2e
from tests.api_org import CYCLE
from tests.test_e2e import Live

pytestmark = [pytest.mark.browser, pytest.mark.slow]

browser = test_e2e.browser
api_org = test_e2e.api_org
live = test_e2e.live

LABEL = "the test provider"
DEE = "Dee.Okafor@Example.com"  # people.csv has dee.okafor@example.com: matched in any case
STRANGER = "stranger@example.com"


@dataclass
class Tamper:
    """What the hook changes in the next ID tokens: None, "audience" or "expired"."""

    mode: str | None = None


@dataclass
class Provider:
    issuer: str
    tamper: Tamper


def _claims(id_token: str) -> dict[str, Any]:
    payload = id_token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def _tampered(tamper: Tamper, response: flask.Response) -> flask.Response:
    """The token endpoint's answer with its ID token re-signed by the provider's own key,
    one claim changed (see the module's docstring)."""
    if flask.request.path != "/oauth2/token" or tamper.mode is None or response.status_code != 200:
        return response
    body = response.get_json()
    claims = _claims(body["id_token"])
    now = int(time.time())
    if tamper.mode == "audience":
        claims["aud"] = ["another-application"]
    elif tamper.mode == "expired":
        claims.update(iat=now - 7200, auth_time=now - 7200, exp=now - 3600)
    key = RSAKey.import_key(flask.g.oidc_provider_mock_storage.jwk.as_dict(is_private=True))
    body["id_token"] = jwt.encode({"alg": "RS256", "typ": "JWT"}, claims, key)
    response.set_data(json.dumps(body))
    return response


@pytest.fixture
def provider() -> Iterator[Provider]:
    users = [
        oidc_provider_mock.User(sub="dee", claims={"email": DEE, "email_verified": True}),
        oidc_provider_mock.User(sub="stranger", claims={"email": STRANGER, "email_verified": True}),
    ]
    app = oidc_provider_mock.app(require_nonce=True, user_claims=users)
    tamper = Tamper()
    app.after_request(lambda response: _tampered(tamper, response))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        # "localhost", not 127.0.0.1: another site than the app's, as a real provider is.
        yield Provider(f"http://localhost:{server.server_port}", tamper)
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()


@pytest.fixture
def settings(settings: Settings, provider: Provider) -> Settings:
    """conftest's settings, with single sign-on pointed at the mock provider."""
    return settings.model_copy(
        update={
            "sso_issuer": provider.issuer,
            "sso_client_id": "fairdraft-e2e",
            "sso_client_secret": SecretStr("the-e2e-client-secret"),
            "sso_label": LABEL,
        }
    )


def through_provider(live: Live, who: str, next_path: str = "/me") -> Page:
    """A fresh browser: the sign-in page's button, the provider's page, the person's
    button there; the page it all ends on."""
    page = live.open_as(None, f"/sign-in?next={next_path}")
    page.get_by_role("link", name=f"Sign in with {LABEL}").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_role("button", name=who, exact=True).click()
    page.wait_for_load_state()
    return page


def refusals(live: Live) -> list[str]:
    with live.engine.begin() as conn:
        rows = conn.execute(select(AuditEvent.after).where(AuditEvent.action == "sso.refused"))
        return [str((row.after or {}).get("reason")) for row in rows]


def test_a_person_signs_in_through_the_provider_and_bad_tokens_are_refused(
    live: Live, provider: Provider
) -> None:
    sign_in = live.open_as(None, "/sign-in?next=/me")
    expect(sign_in.get_by_role("link", name=f"Sign in with {LABEL}")).to_be_visible()
    live.look(sign_in, "sign-in-sso")  # axe-clean, with the button

    page = through_provider(live, "dee")
    expect(page).to_have_url(f"{live.url}/me")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"My evidence, {CYCLE}")
    expect(page.locator(".who")).to_have_text("Dee Okafor")
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["fairdraft_session"]
    assert session.get("httpOnly") and session.get("sameSite") == "Strict"
    assert "fairdraft_sso" not in cookies  # spent at the callback

    for mode, says in (
        ("audience", "it was made for another application"),
        ("expired", "it has expired"),
    ):
        provider.tamper.mode = mode
        refused = through_provider(live, "dee")
        assert "/sign-in/oidc/callback" in refused.url
        expect(refused.get_by_role("alert")).to_contain_text(says)
        assert "fairdraft_session" not in {c["name"] for c in refused.context.cookies()}
        refused.goto("/me")
        expect(refused).to_have_url(f"{live.url}/sign-in?next=/me")
    provider.tamper.mode = None

    stranger = through_provider(live, "stranger")
    expect(stranger.get_by_role("alert")).to_contain_text(
        "no active account for the address your identity provider gave"
    )
    live.look(stranger, "sign-in-sso-refused")
    assert refusals(live) == ["audience", "expired", "unknown_email"]
