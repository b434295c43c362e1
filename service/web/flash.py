"""One-time messages after a form post ("Saved as version 4"), carried to the next page in
a short-lived cookie rather than the URL, so nobody can put words on our page by link."""

import json
from urllib.parse import quote, unquote

from fastapi import Request
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
