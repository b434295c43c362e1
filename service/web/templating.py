"""The pages' jinja2 environment (autoescaped) and the one way pages are rendered."""

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.web.flash import COOKIE as FLASH_COOKIE
from service.web.flash import read_flash

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATIC = Path(__file__).parent / "static"


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page, with the signed-in person (if any) for the header and navigation."""
    principal = getattr(request.state, "principal", None)
    response = TEMPLATES.TemplateResponse(
        request,
        name,
        {"me": principal, **read_flash(request), **context},
        status_code=status_code,
    )
    if FLASH_COOKIE in request.cookies:
        response.delete_cookie(FLASH_COOKIE)
    return response
