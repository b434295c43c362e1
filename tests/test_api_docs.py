"""The API docs come from our own origin (issue 12, item 3): no CDN, no inline script.

FastAPI's default /docs page loaded Swagger UI from a CDN with no integrity hash and
started it with an inline script that the CSP (`script-src 'self'`) refuses. The browser
check that Swagger UI renders our schema under the CSP is in tests/test_e2e_hostile.py.
"""

import re
from html.parser import HTMLParser

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.http.docs import ASSETS, install_docs


class Loads(HTMLParser):
    """What a page loads: each script's src (None for an inline script) and each link."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str | None] = []
        self.links: list[str] = []
        self.openapi_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            self.scripts.append(found.get("src"))
        elif tag == "link":
            self.links.append(found.get("href") or "")
        if "data-openapi-url" in found:
            self.openapi_url = found["data-openapi-url"]


def loads(page: str) -> Loads:
    parser = Loads()
    parser.feed(page)
    return parser


def docs_app() -> FastAPI:
    app = FastAPI(title='fair<"draft">', docs_url=None, redoc_url=None)
    install_docs(app)
    return app


def test_the_docs_page_loads_swagger_ui_from_our_origin_with_no_inline_script() -> None:
    client = TestClient(docs_app())
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    found = loads(page)
    assert found.scripts == ["/docs/assets/swagger-ui-bundle.js", "/docs/init.js"]
    assert "/docs/assets/swagger-ui.css" in found.links
    assert found.openapi_url == "/openapi.json"
    assert not re.search(r"https?://|//cdn|\sstyle=|<style|\son[a-z]+=", page)
    assert "fair&lt;&#34;draft&#34;&gt;" in page  # the title is escaped into the page
    for url in [*(s for s in found.scripts if s), *found.links]:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 100, url
    bundle = client.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content
    init = client.get("/docs/init.js").text
    assert "dataset.openapiUrl" in init and "http" not in init


def test_only_the_docs_assets_are_served() -> None:
    client = TestClient(docs_app())
    assert set(ASSETS) == {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}
    for name in (
        "swagger-editor-bundle.js",
        "..%2Fcore.py",
        "%2e%2e%2f%2e%2e%2fdocs.py",
        "LICENSE",
        "index.css",
    ):
        response = client.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name


def test_the_app_serves_our_docs_page_and_not_fastapis(client: TestClient) -> None:
    """create_app installs these docs with FastAPI's own (CDN) pages switched off."""
    page = client.get("/docs")
    assert page.status_code == 200
    assert loads(page.text).scripts == ["/docs/assets/swagger-ui-bundle.js", "/docs/init.js"]
    assert "https://" not in page.text
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "fairdraft"
