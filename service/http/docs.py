"""The interactive API docs (Swagger UI) served from our own origin.

FastAPI's default `/docs` page loads Swagger UI from a CDN and starts it with an inline
script: the first trusts a third party with every page the docs can call with a user's
token, the second is refused by the CSP (`script-src 'self'`). This page loads the copy of
Swagger UI that the `swagger-ui-py` package installs (Swagger UI 5, which reads the
OpenAPI 3.1 schema FastAPI writes) and starts it with a static script, docs.js beside
this file; the schema's URL reaches that script as a data attribute.

Only the three files the page needs are served, under /docs/assets/.
"""

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response
from markupsafe import Markup

SWAGGER_UI = Path(str(files("swagger_ui").joinpath("static")))
INIT_SCRIPT = Path(__file__).with_name("docs.js")
# name under /docs/assets/ -> (file in the package, media type)
ASSETS = {
    "swagger-ui-bundle.js": ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui.css", "text/css; charset=utf-8"),
    "favicon.png": ("favicon-32x32.png", "image/png"),
}
PAGE = Markup(
    """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title} · API docs</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon.png">
  <script src="/docs/assets/swagger-ui-bundle.js" defer></script>
  <script src="/docs/init.js" defer></script>
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <noscript>The API docs need JavaScript; the schema itself is at
    <a href="{openapi_url}">{openapi_url}</a>.</noscript>
</body>
</html>
"""
)


def docs_page(title: str, openapi_url: str) -> str:
    """The page, with the app's title and schema URL escaped into it."""
    return str(PAGE.format(title=title, openapi_url=openapi_url))


def install_docs(app: FastAPI) -> None:
    """Serve the docs at /docs. Create the app with `docs_url=None, redoc_url=None` so
    that FastAPI's CDN pages are not served as well."""
    if app.openapi_url is None:
        return
    page = docs_page(app.title, app.openapi_url)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/init.js", include_in_schema=False)
    def init_script() -> FileResponse:
        return FileResponse(INIT_SCRIPT, media_type="text/javascript; charset=utf-8")

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "file not found")
        file, media_type = ASSETS[name]
        return FileResponse(SWAGGER_UI / file, media_type=media_type)
