"""Sign-in (with a token, a one-time link or the identity provider), sign-out, and the start
page that sends each person to their work."""

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection, Engine

from domain.errors import NotFound
from service.access import links, sso
from service.access.authn import Authenticator
from service.access.links import LinkLook, LinkState, exchange_link, look_up_link, refuse_link
from service.access.principal import Principal
from service.access.sessions import OpenedSession, end_session, open_session
from service.access.throttle import FailureThrottle
from service.http.deps import ConnectionDep, SettingsDep, get_engine
from service.http.middleware import client_address, note_failure, throttled
from service.settings import Settings
from service.web.session import COOKIE, PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)


def _safe_next(path: str) -> str:
    """Only a path of our own: never an absolute URL to somewhere else, which `//host`,
    `/\\host` and a path with a tab or newline in it all are to a browser's URL parser
    (it reads a backslash as a slash and drops tabs and newlines)."""
    if (
        not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path)
    ):
        return "/"
    return path


@router.get("/sign-in")
def sign_in_page(request: Request, settings: SettingsDep, next: str = "/") -> Response:
    return _sign_in_form(request, settings, _safe_next(next))


def _sign_in_form(
    request: Request,
    settings: Settings,
    next_path: str,
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    """The sign-in page: the token form, and the identity provider's button when single
    sign-on is configured."""
    return render(
        request,
        "sign_in.html.j2",
        status_code=status_code,
        next=next_path,
        oidc=bool(settings.oidc_issuer),
        sso_label=settings.sso_label if settings.sso_configured else None,
        error=error,
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
        return _sign_in_form(
            request,
            settings,
            _safe_next(next),
            status_code=401,
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
    return _with_session(request, settings, session, RedirectResponse(target, status_code=303))


def _with_session(
    request: Request, settings: Settings, session: OpenedSession, response: Response
) -> Response:
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


_SSO_CREATING = threading.Lock()  # guards making the app's one SingleSignOn, holds no state


def _single_sign_on(request: Request, settings: Settings) -> sso.SingleSignOn:
    """The app's one SingleSignOn (discovery and keys cached with it, per app instance),
    made at the first sign-in; 404 where single sign-on is not configured."""
    if not settings.sso_configured:
        raise NotFound("single sign-on is not configured here", field="path")
    state = request.app.state
    with _SSO_CREATING:
        found: sso.SingleSignOn | None = getattr(state, "single_sign_on", None)
        if found is None:
            found = state.single_sign_on = sso.SingleSignOn(settings)
    return found


def _redirect_uri(request: Request, settings: Settings) -> str:
    """Where the provider sends the browser back: under FAIRDRAFT_PUBLIC_URL when set (it
    must be the URI registered at the provider), else under the address asked for."""
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + sso.CALLBACK_PATH


@router.get(sso.PATH)
def sign_in_with_provider(
    request: Request,
    settings: SettingsDep,
    next: Annotated[str, Query(max_length=2048)] = "/",
) -> Response:
    """Off to the identity provider, with the state, nonce and PKCE verifier in a signed
    cookie that only this path and its callback receive (service/access/sso.py)."""
    provider = _single_sign_on(request, settings)
    url, pending = provider.begin(_redirect_uri(request, settings), _safe_next(next))
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        sso.COOKIE,
        provider.seal(pending),
        max_age=sso.COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back, a cross-site navigation
        secure=_secure(request, settings),
        path=sso.PATH,
    )
    return response


@router.get(sso.CALLBACK_PATH)
def provider_callback(
    request: Request,
    settings: SettingsDep,
    engine: Annotated[Engine, Depends(get_engine)],
    code: Annotated[str | None, Query(max_length=4096)] = None,
    state: Annotated[str | None, Query(max_length=256)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    """The provider's answer: a session for the person it names, or the sign-in page
    saying why not (audited, and counted for the address's throttle). The cookie is
    spent either way: a callback is good once."""
    provider = _single_sign_on(request, settings)
    authenticator: Authenticator = request.state.authenticator
    finished = sso.finish_sign_in(
        engine,
        provider,
        provider.unseal(request.cookies.get(sso.COOKIE)),
        sso.Callback(code=code, state=state, error=error),
        redirect_uri=_redirect_uri(request, settings),
        lifetime=authenticator.lifetime,
        actor=_who_tried(request),
        client=client_address(request.scope),
        earlier_session=getattr(request.state, "session_secret", None),
    )
    if finished.session is not None:
        # A page that moves on by itself, not a redirect: see signed_in.html.j2.
        page = render(request, "signed_in.html.j2", next=_safe_next(finished.next_path))
        response = _with_session(request, settings, finished.session, page)
    else:
        assert finished.refused is not None
        throttle: FailureThrottle = request.state.throttle
        reason = f"single sign-on refused: {finished.refused.refusal.value}"
        if wait := note_failure(request.scope, throttle, reason):
            raise throttled(wait)
        response = _sign_in_form(
            request,
            settings,
            _safe_next(finished.next_path),
            status_code=finished.refused.status,
            error=finished.refused.reason,
        )
    response.delete_cookie(sso.COOKIE, path=sso.PATH, httponly=True, samesite="lax")
    return response


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
