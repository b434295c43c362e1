"""The pages' jinja2 environment and the one way pages are rendered.

Every page shows text one person wrote to another person (records, drafts, edits,
summaries, names), so every template is autoescaped, whatever its file name: Starlette's
default only escapes `.html/.htm/.xml`, and ours are `.html.j2`. The few places that must
emit markup (the SVG charts) hand the template `markupsafe.Markup` built from escaped parts.
"""

from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from service.web.flash import COOKIE as FLASH_COOKIE
from service.web.flash import read_flash

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def page_environment() -> jinja2.Environment:
    """The environment every page is rendered in, autoescaped for every template name
    (`autoescape=True`, not a rule on file names). tests/test_web_escaping.py renders every
    template with hostile input, so an `{% autoescape false %}` or a `|safe` is caught."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True)


ENVIRONMENT = page_environment()
TEMPLATES = Jinja2Templates(env=ENVIRONMENT)


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
