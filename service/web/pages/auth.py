"""Sign-in, sign-out, and the start page that sends each person to their work."""

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from service.access.principal import load_principal
from service.api.deps import ConnectionDep, SettingsDep, person_for_bearer
from service.web.session import COOKIE, PagePrincipal, SameOrigin
from service.web.templating import render

router = APIRouter(include_in_schema=False)
_DAY = 24 * 3600


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
    person_id = person_for_bearer(connection, settings, request, token.strip())
    if person_id is None or load_principal(connection, person_id, indirect=False) is None:
        return render(
            request,
            "sign_in.html.j2",
            status_code=401,
            next=_safe_next(next),
            oidc=bool(settings.oidc_issuer),
            error="That token is unknown, revoked or expired.",
        )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        token.strip(),
        max_age=_DAY,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/sign-out", dependencies=[SameOrigin])
def sign_out() -> Response:
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(COOKIE)
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
