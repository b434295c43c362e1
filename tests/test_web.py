"""The pages over HTTP (no browser): sign-in, the same scope as the API, forms that keep
nothing lost. The browser tests are in tests/test_e2e.py."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from service.jobs.worker import Worker
from service.settings import Settings
from tests.api_org import ApiOrg

ORIGIN = {"Origin": "http://testserver"}


def sign_in(client: TestClient, api_org: ApiOrg, who: str) -> None:
    response = client.post(
        "/sign-in",
        data={"token": api_org.tokens[who], "next": "/"},
        headers=ORIGIN,
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert "httponly" in response.headers["set-cookie"].lower()
    assert "samesite=strict" in response.headers["set-cookie"].lower()


def test_a_page_without_a_sign_in_sends_the_browser_to_sign_in(client: TestClient) -> None:
    response = client.get("/drafts/1", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in?next=/drafts/1"


def test_a_wrong_token_is_refused_on_the_sign_in_page(client: TestClient) -> None:
    response = client.post("/sign-in", data={"token": "fd_wrong"}, headers=ORIGIN)
    assert response.status_code == 401
    assert "unknown, revoked or expired" in response.text


def test_an_employee_requests_a_draft_and_sees_it_with_its_evidence(
    client: TestClient, api_org: ApiOrg, engine: Engine, settings: Settings
) -> None:
    sign_in(client, api_org, "dee")
    assert "My evidence, 2026-H1" in client.get("/me").text
    asked = client.post(
        "/me/drafts", data={"period": "2026-H1"}, headers=ORIGIN, follow_redirects=False
    )
    assert asked.status_code == 303
    job_url = asked.headers["location"]
    assert "Writing your draft" in client.get(job_url).text
    Worker(engine, settings).run_once()
    done = client.get(job_url).text
    assert "Open the draft" in done
    draft_url = done.split('href="/drafts/')[1].split('"')[0]
    page = client.get(f"/drafts/{draft_url}").text
    assert 'class="cite"' in page and 'id="ev-E1"' in page


def test_a_manager_cannot_open_another_teams_draft_by_url(
    client: TestClient, api_org: ApiOrg
) -> None:
    sign_in(client, api_org, "bo")
    response = client.get(f"/drafts/{api_org.drafts['fay_self']}")
    assert response.status_code == 404
    assert "Not found" in response.text and "Fay" not in response.text


def test_a_form_posted_from_another_site_is_refused(client: TestClient, api_org: ApiOrg) -> None:
    sign_in(client, api_org, "bo")
    response = client.post(
        f"/drafts/{api_org.drafts['cy_feedback']}/approve",
        headers={"Origin": "https://evil.example.com"},
    )
    assert response.status_code == 403
