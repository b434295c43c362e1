"""Sign-in (with a token or a one-time link), sign-out, and the start page that sends each
person to their work."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection

from service.access import links
from service.access.authn import Authenticator
from service.access.links import LinkLook, LinkState, exchange_link, look_up_link, refuse_link
from service.access.principal import Principal
from service.access.sessions import OpenedSession, end_session, open_session
from service.access.throttle import FailureThrottle
from service.http.deps import ConnectionDep, SettingsDep
from service.http.middleware import client_address, note_failure, throttled
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
    return _signed_in(request, settings, session, _safe_next(next))


def _signed_in(
    request: Request, settings: Settings, session: OpenedSession, target: str
) -> Response:
    """On to `target` with the new session's cookie: its random id, never a credential."""
    response = RedirectResponse(target, status_code=303)
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


@router.get(links.PATH + "/{key}")
def sign_in_link_page(request: Request, connection: ConnectionDep, key: str) -> Response:
    """A one-time link opened: whose it is and a button that uses it. Opening it uses
    nothing up (a chat client's preview must not spend it); a dead link gets its page."""
    look = look_up_link(connection, key)
    if look.state is not LinkState.LIVE:
        return _link_refused(request, connection, look)
    return render(request, "sign_in_link.html.j2", link=look, key=key, problem=None)


@router.post(links.PATH, dependencies=[SameOrigin])
def sign_in_with_link(
    request: Request,
    connection: ConnectionDep,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=256)],
) -> Response:
    """Use the link up and open a session for its person, who lands on their start page.
    A session this browser already had (someone else's, perhaps) ends: one person a tab."""
    authenticator: Authenticator = request.state.authenticator
    exchange = exchange_link(
        connection,
        key.strip(),
        lifetime=authenticator.lifetime,
        actor=_who_tried(request),
        client=client_address(request.scope),
    )
    if exchange.session is None:
        return _link_refused(request, connection, exchange.look, audited=True)
    if earlier := getattr(request.state, "session_secret", None):
        end_session(connection, earlier)
    return _signed_in(request, settings, exchange.session, "/")


def _link_refused(
    request: Request, connection: Connection, look: LinkLook, *, audited: bool = False
) -> Response:
    """A used, expired or unknown link: a failed sign-in for the throttle (429 past its
    limit), an audit event, and a page that says which and what to do."""
    throttle: FailureThrottle = request.state.throttle
    # Logged under the route, not the path: a link's secret goes in no log line.
    scope = {**request.scope, "path": links.PATH + ("" if request.method == "POST" else "/{key}")}
    if wait := note_failure(scope, throttle, f"sign-in link {look.state.value}"):
        raise throttled(wait)
    if not audited:
        refuse_link(
            connection, look, actor=_who_tried(request), client=client_address(request.scope)
        )
    return render(
        request,
        "sign_in_link.html.j2",
        status_code=404 if look.state is LinkState.UNKNOWN else 410,
        link=None,
        key=None,
        problem=look.reason,
    )


def _who_tried(request: Request) -> str:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal.actor if principal is not None else "anonymous"


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
    return RedirectResponse(start_path(principal), status_code=303)


def start_path(principal: Principal) -> str:
    """Managers start at their team, panel members at their panels, HR at the cycle."""
    if principal.hr_admin:
        return "/hr"
    if principal.reports:
        return "/team"
    if principal.panels:
        return "/panels"
    return "/me"
