"""Sign-in, sign-out, and the start page that sends each person to their work."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.access.authn import Authenticator
from service.access.sessions import end_session, open_session
from service.access.throttle import FailureThrottle
from service.http.deps import ConnectionDep, SettingsDep
from service.http.middleware import note_failure, throttled
from service.settings import Settings
from service.web.session import COOKIE, PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(path: str) -> str:
    """Only a path of our own: never an absolute URL to somewhere else."""
    return path if path.startswith("/") and not path.startswith("//") else "/"


@router.get("/sign-in")
def sign_in_page(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    return render(
        request, "sign_in.html.j2", next=_safe_next(next), oidc=bool(settings.oidc_issuer)
    )


@router.post("/sign-in", dependencies=[SameOrigin])
def sign_in(
    request: Request,
    connection: ConnectionDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=4096)],
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    """Exchange a token (or an OIDC JWT) for a session: the cookie holds only the session's
    random id, never the token."""
    throttle: FailureThrottle = request.state.throttle
    authenticator: Authenticator = request.state.authenticator
    identity = authenticator.bearer_identity(connection, token.strip())
    if identity is None:
        if wait := note_failure(request.scope, throttle, "sign-in with an unknown token"):
            raise throttled(wait)
        return render(
            request,
            "sign_in.html.j2",
            status_code=401,
            next=_safe_next(next),
            oidc=bool(settings.oidc_issuer),
            error="That token is unknown, revoked or expired.",
        )
    session = open_session(
        connection,
        identity.person_id,
        lifetime=authenticator.lifetime,
        token_id=identity.token_id,
        oidc_subject=identity.oidc_subject,
        ends_by=identity.expires_at,
    )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        session.secret,
        expires=session.expires_at,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
        path="/",
    )
    return response


def _secure(request: Request, settings: Settings) -> bool:
    """Secure when set so, else when the request came over HTTPS (uvicorn takes the scheme
    from X-Forwarded-Proto when the proxy is trusted)."""
    if settings.cookie_secure is not None:
        return settings.cookie_secure
    return request.url.scheme == "https"


@router.post("/sign-out", dependencies=[SameOrigin])
def sign_out(request: Request, connection: ConnectionDep) -> Response:
    """Ends the session the request was signed in with (as the middleware read it, so a
    second cookie of the same name cannot stand in for it), so a copied cookie stops
    working too."""
    if secret := getattr(request.state, "session_secret", None):
        end_session(connection, secret)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
def start(principal: PagePrincipal) -> Response:
    """Managers start at their team, panel members at their panels, HR at the cycle."""
    if principal.hr_admin:
        target = "/hr"
    elif principal.reports:
        target = "/team"
    elif principal.panels:
        target = "/panels"
    else:
        target = "/me"
    return RedirectResponse(target, status_code=303)
