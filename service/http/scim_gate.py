"""The door to /scim/v2: the identity provider's own bearer token, checked before the body
is read, and SCIM-shaped refusals (RFC 7644 §3.12: application/scim+json, `status` as a
string, `scimType` where one applies).

- FAIRDRAFT_SCIM_TOKEN unset: 404 for every SCIM path, as for /metrics: the feature is
  off, there is nothing to authenticate against, and a scanner learns nothing more.
- Set: the request must send it as a bearer token (compared in constant time); anything
  else is 401, counted and logged like any failed authentication, 429 past the limit.
  fairdraft's own API tokens, OIDC JWTs and page sessions never open SCIM (the check
  below knows only this token), and this token opens nothing else (service.http.
  middleware.Authenticate does not know it).
- A declared body over FAIRDRAFT_MAX_BODY_BYTES is answered 413 here, SCIM-shaped, once
  the token is known good; a chunked one is cut off by BodyLimit as it streams, and the
  SCIM router answers that 413 in SCIM's shape too.
"""

import hmac
import json

from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from service.access.throttle import FailureThrottle
from service.http.middleware import SCIM_PREFIX, bearer_token, content_length, note_failure
from service.settings import Settings

SCIM_MEDIA_TYPE = "application/scim+json"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
OFF = "SCIM provisioning is off: set FAIRDRAFT_SCIM_TOKEN"


def scim_error(
    status: int,
    detail: str,
    scim_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One SCIM error answer."""
    body: dict[str, object] = {"schemas": [ERROR_URN], "status": str(status), "detail": detail}
    if scim_type is not None:
        body["scimType"] = scim_type
    return Response(
        json.dumps(body),
        status_code=status,
        media_type=SCIM_MEDIA_TYPE,
        headers=headers,
    )


class ScimGate:
    """See the module's docstring. Outermost of the request checks for SCIM paths; every
    other path goes on untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.token = settings.scim_token
        self.body_limit = settings.max_body_bytes
        self.throttle = FailureThrottle(
            limit=settings.auth_failure_limit, window_s=settings.auth_failure_window_s
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(SCIM_PREFIX):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        scope.setdefault("state", {})["scim"] = True
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        if self.token is None:
            return scim_error(404, OFF)
        sent = bearer_token(scope)
        expected = self.token.get_secret_value().encode()
        if sent is None or not hmac.compare_digest(sent.encode(), expected):
            if sent is not None and (wait := note_failure(scope, self.throttle, "wrong token")):
                return scim_error(
                    429,
                    f"too many failed authentications; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            return scim_error(
                401,
                "the SCIM bearer token is required",
                headers={"WWW-Authenticate": "Bearer"},
            )
        declared = content_length(scope)
        if declared is not None and declared > self.body_limit:
            return scim_error(413, f"the body is over the {self.body_limit} byte limit")
        return None
