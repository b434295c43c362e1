"""Mounting the pages on the app: static files, the page routers, and how errors and a
missing sign-in look on a page."""

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from service.http.errors import request_id
from service.web.flash import redirect_with
from service.web.pages import (
    auth,
    connectors,
    cycle,
    drafts,
    employee,
    hr,
    hr_cycles,
    hris,
    panels,
    promotions,
    release,
    team,
)
from service.web.session import SignInRequired, sign_in_url
from service.web.templating import STATIC, render


def error_page(request: Request, status: int, reason: str, *, refusal: bool = False) -> Response:
    """The page for an error; a refusal of a form that named its way back (`back_to`) is
    told on that page instead, where the person can act on it."""
    back = getattr(request.state, "back", None)  # set by flash.back_to or come_back_to
    if refusal and back is not None:
        return redirect_with(back, error=reason)
    return render(
        request,
        "error.html.j2",
        status_code=status,
        status=status,
        reason=reason,
        request_id=request_id(request),
    )


async def _sign_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return RedirectResponse(sign_in_url(exc.next_path), status_code=303)


def install_pages(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.error_page = error_page
    app.add_exception_handler(SignInRequired, _sign_in)
    for module in (
        auth,
        employee,
        drafts,
        team,
        panels,
        hr,
        hr_cycles,
        cycle,
        release,
        promotions,
        connectors,
        hris,
    ):
        app.include_router(module.router)
