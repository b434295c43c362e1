"""One-time messages after a form post ("Saved as version 4"), carried to the next page in
a short-lived cookie rather than the URL, so nobody can put words on our page by link."""

import json
from typing import Any
from urllib.parse import quote, unquote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

COOKIE = "fairdraft_flash"


def redirect_with(url: str, *, notice: str | None = None, error: str | None = None) -> Response:
    response = RedirectResponse(url, status_code=303)
    message = {"notice": notice, "error": error}
    response.set_cookie(
        COOKIE, quote(json.dumps(message)), max_age=60, httponly=True, samesite="strict"
    )
    return response


def read_flash(request: Request) -> dict[str, str | None]:
    """The message for this page, if any (the page then deletes the cookie)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {"notice": None, "error": None}
    try:
        message = json.loads(unquote(raw))
    except json.JSONDecodeError:
        return {"notice": None, "error": None}
    return {"notice": message.get("notice"), "error": message.get("error")}


def back_to(template: str) -> Any:
    """A form's way back, as a route dependency: a refusal of the form (a domain error such
    as a gate not passed or a value off the scale) is shown on that page as the flash
    error, instead of an error page. `template` names path parameters in braces; their
    values are URL-encoded. Forms whose typed text a redirect would lose do not use it."""

    def remember(request: Request) -> None:
        values = {name: quote(str(value), safe="") for name, value in request.path_params.items()}
        come_back_to(request, template.format_map(values))

    return Depends(remember)


def come_back_to(request: Request, url: str) -> None:
    """Where a refusal of this form is told (see `back_to`), for a way back that needs more
    than the path: the page error handler reads it."""
    request.state.back = url
