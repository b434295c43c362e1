"""Who a page speaks for: the token in an HttpOnly, SameSite=Strict cookie set at sign-in,
or a bearer token an authenticating proxy (e.g. oauth2-proxy in front of the OIDC
provider) puts in the Authorization header. The same principal and scope as the API.

Forms are protected against cross-site requests twice: the cookie is SameSite=Strict, so
another site's form posts arrive without it, and every POST must come from our own origin
(Origin or Referer header).
"""

from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request

from service.access.principal import Principal, load_principal
from service.api.deps import ConnectionDep, SettingsDep, person_for_bearer
from service.api.errors import ApiError

COOKIE = "fairdraft_session"


class SignInRequired(Exception):
    """No valid sign-in: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE) or None


def page_principal(request: Request, connection: ConnectionDep, settings: SettingsDep) -> Principal:
    token = _token(request)
    person_id = person_for_bearer(connection, settings, request, token) if token else None
    principal = (
        load_principal(connection, person_id, indirect=settings.manager_scope_indirect)
        if person_id is not None
        else None
    )
    if principal is None:
        raise SignInRequired(request.url.path)
    request.state.principal = principal
    return principal


def same_origin(request: Request) -> None:
    """Refuse a form post that another site's page sent."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if urlsplit(source).netloc != request.url.netloc:
        raise ApiError(403, "this form must be sent from fairdraft's own pages")


def sign_in_url(next_path: str) -> str:
    return f"/sign-in?next={quote(next_path)}"


PagePrincipal = Annotated[Principal, Depends(page_principal)]
SameOrigin = Depends(same_origin)
