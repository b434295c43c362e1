"""Who a page speaks for: the server-side session named by an HttpOnly, SameSite=Strict
cookie (opened at sign-in), or a bearer token an authenticating proxy puts in the
Authorization header. The authentication middleware resolves either before the body is
read; pages read the result here, with the same principal and scope as the API.

Forms are protected against cross-site requests twice: the cookie is SameSite=Strict, so
another site's form posts arrive without it, and every POST must come from our own origin
(Origin or Referer header).
"""

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, Request

from domain.errors import Refused
from service.access.principal import Principal
from service.http.errors import ApiError
from service.http.middleware import SESSION_COOKIE, sign_in_url

COOKIE = SESSION_COOKIE
__all__ = ["COOKIE", "PagePrincipal", "SameOrigin", "SignInRequired", "sign_in_url"]


class SignInRequired(Exception):
    """No valid sign-in: the handler sends the browser to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


async def page_principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise SignInRequired(request.url.path)
    return principal


def same_origin(request: Request) -> None:
    """Refuse a form post that another site's page sent."""
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    if urlsplit(source).netloc != request.url.netloc:
        raise ApiError(403, "this form must be sent from fairdraft's own pages")


PagePrincipal = Annotated[Principal, Depends(page_principal)]
SameOrigin = Depends(same_origin)


def require_hr(principal: Principal, reason: str = "this page needs the HR admin role") -> None:
    """HR's pages and forms refuse everyone else (403), as the API's HR endpoints do."""
    if not principal.hr_admin:
        raise Refused(reason)
