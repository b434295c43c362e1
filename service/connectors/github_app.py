"""Signing in to GitHub as an App installation: a JWT signed with the App's private key
(RS256, pyjwt) is exchanged at POST /app/installations/{id}/access_tokens for an
installation token, which lasts an hour and is refreshed five minutes before it ends.

The token is put on each request by a transport wrapped around the connector's own, so
the SourceClient (and its rate-limit handling) stays the same for both ways in, and a
refresh happens between two requests of a long run without the connector knowing.
"""

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import httpx
import jwt
from pydantic import BaseModel, ValidationError

from domain.errors import Misconfigured
from service.connectors.http import SourceClient, SourceFailed
from service.connectors.model import Sleeper, WaitObserver

REFRESH_BEFORE_S = 300.0  # a token with less than this left is replaced
JWT_LIFETIME_S = 540  # GitHub accepts at most 10 minutes; iat is set 60 s back for clock skew


class InstallationToken(BaseModel):
    """GitHub's answer to POST /app/installations/{id}/access_tokens (the fields used)."""

    token: str
    expires_at: datetime


class AppCredentials:
    """An App's id, private key and installation id; makes and refreshes installation
    tokens. `clock` is injectable so tests can age a token."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key_file: Path,
        installation_id: int,
        api_url: str,
        headers: dict[str, str],
        sleeper: Sleeper,
        transport: httpx.BaseTransport | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = app_id
        self.installation_id = installation_id
        self.private_key = _read_key(private_key_file)
        self.api_url = api_url
        self.headers = headers
        self.sleeper = sleeper
        self.transport = transport
        self.clock = clock
        self.waits: WaitObserver | None = None
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_made = 0

    def app_jwt(self) -> str:
        """The App's own short-lived JWT (iss = the App id), for /app endpoints only."""
        now = int(self.clock())
        claims = {"iat": now - 60, "exp": now + JWT_LIFETIME_S, "iss": str(self.app_id)}
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise Misconfigured(
                "FAIRDRAFT_GITHUB_APP_PRIVATE_KEY_FILE is not an RSA private key in PEM",
                field="github_app_private_key_file",
            ) from None

    def token(self) -> str:
        """A valid installation token, made anew when none is held or it ends soon."""
        if self._token is None or self._expires_at - self.clock() < REFRESH_BEFORE_S:
            self._token, self._expires_at = self._exchange()
            self.tokens_made += 1
        return self._token

    def _exchange(self) -> tuple[str, float]:
        headers = {**self.headers, "Authorization": f"Bearer {self.app_jwt()}"}
        with SourceClient(
            "github",
            self.api_url,
            headers=headers,
            sleeper=self.sleeper,
            waits=self.waits,
            transport=self.transport,
        ) as client:
            answer = client.request(
                "POST", f"/app/installations/{self.installation_id}/access_tokens"
            )
        try:
            made = InstallationToken.model_validate(answer.data)
        except ValidationError:
            raise SourceFailed(
                "github answered the installation token request without a token",
                field="github_app_installation_id",
            ) from None
        return made.token, made.expires_at.timestamp()


class InstallationAuth(httpx.BaseTransport):
    """A transport that puts the installation token on every request it forwards."""

    def __init__(self, credentials: AppCredentials, inner: httpx.BaseTransport) -> None:
        self.credentials = credentials
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.headers["Authorization"] = f"Bearer {self.credentials.token()}"
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def _read_key(path: Path) -> str:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        raise Misconfigured(
            "FAIRDRAFT_GITHUB_APP_PRIVATE_KEY_FILE cannot be read",
            field="github_app_private_key_file",
        ) from None
    if "PRIVATE KEY" not in text:
        raise Misconfigured(
            "FAIRDRAFT_GITHUB_APP_PRIVATE_KEY_FILE is not a PEM private key",
            field="github_app_private_key_file",
        )
    return text
