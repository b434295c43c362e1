"""Who opens /scim/v2, and what a deactivation does to a person's credentials.

- No FAIRDRAFT_SCIM_TOKEN: every SCIM path answers 404 (SCIM-shaped), token or not.
- A missing or wrong token is answered 401 before the body is read: the server answers a
  request whose declared body never arrives (a real uvicorn server and a raw socket).
- Deactivating (PATCH active false) or deleting a person through SCIM ends their API token
  and page session at once; DELETE keeps their row, drafts and evidence.
(Every person's credentials against every SCIM route: tests/test_api_authorization.py.)
"""

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from service.app import create_app
from service.db.models import Draft, Person, Record
from service.settings import Settings
from tests.api_org import ApiOrg
from tests.scim_server import SCIM_TOKEN, serving

SCIM = {"Authorization": f"Bearer {SCIM_TOKEN}"}
ORIGIN = {"Origin": "http://testserver"}


def _with_token(settings: Settings, **extra: object) -> Settings:
    return settings.model_copy(update={"scim_token": SecretStr(SCIM_TOKEN), **extra})


@pytest.fixture
def scim(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(_with_token(settings), engine=engine, worker=False)) as client:
        yield client


def test_scim_is_off_without_a_token(settings: Settings, engine: Engine) -> None:
    with TestClient(create_app(settings, engine=engine, worker=False)) as client:
        for headers in ({}, SCIM):
            for method, path in (("GET", "/Users"), ("POST", "/Users"), ("GET", "/Schemas")):
                answer = client.request(method, f"/scim/v2{path}", headers=headers, content=b"{}")
                assert answer.status_code == 404
                assert answer.headers["content-type"].startswith("application/scim+json")
                body = answer.json()
                assert body["status"] == "404" and "FAIRDRAFT_SCIM_TOKEN" in body["detail"]


def _raw(base: str, request: bytes) -> bytes:
    """Send `request` (headers, no body) and read the answer the server gives at once."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
        return received


def test_a_wrong_or_missing_token_is_refused_before_the_body_is_read(
    settings: Settings, engine: Engine
) -> None:
    head = (
        "POST /scim/v2/Users HTTP/1.1\r\nHost: localhost\r\n"
        "Content-Type: application/scim+json\r\nContent-Length: {length}\r\n{auth}\r\n"
    )
    with serving(_with_token(settings), engine) as base:
        for auth in ("", "Authorization: Bearer wrong-token\r\n"):
            # 500 bytes declared and never sent: an answer means the body was not awaited.
            answer = _raw(base, head.format(length=500, auth=auth).encode())
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
            assert b"application/scim+json" in answer and b"www-authenticate: Bearer" in answer
            # Over the body limit and no token: still 401, the size is nobody's business.
            answer = _raw(base, head.format(length=50_000_000, auth=auth).encode())
            assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        good = f"Authorization: Bearer {SCIM_TOKEN}\r\n"
        answer = _raw(base, head.format(length=50_000_000, auth=good).encode())
        assert answer.startswith(b"HTTP/1.1 413") and b"application/scim+json" in answer


def test_wrong_tokens_are_throttled(settings: Settings, engine: Engine) -> None:
    configured = _with_token(settings, auth_failure_limit=2)
    with TestClient(create_app(configured, engine=engine, worker=False)) as client:
        wrong = {"Authorization": "Bearer not-the-scim-token"}
        statuses = [client.get("/scim/v2/Users", headers=wrong).status_code for _ in range(4)]
        assert statuses[:2] == [401, 401] and statuses[-1] == 429
        last = client.get("/scim/v2/Users", headers=wrong)
        assert last.json()["status"] == "429" and "retry-after" in last.headers


def test_deactivating_through_scim_ends_the_persons_token_and_session(
    scim: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    cy = api_org.ids["cy"]
    web = TestClient(scim.app)
    signed = web.post(
        "/sign-in", data={"token": api_org.tokens["cy"]}, headers=ORIGIN, follow_redirects=False
    )
    assert signed.status_code == 303
    assert scim.get("/api/v1/me", headers=api_org.auth("cy")).status_code == 200
    assert web.get("/me", follow_redirects=False).status_code == 200
    # Okta's way to find the person people.csv brought, then its deactivation.
    found = scim.get(
        "/scim/v2/Users", params={"filter": 'userName eq "CY.DIAZ@example.com"'}, headers=SCIM
    )
    assert found.json()["totalResults"] == 1
    assert found.json()["Resources"][0]["id"] == str(cy)
    off = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": False}}],
    }
    assert scim.patch(f"/scim/v2/Users/{cy}", json=off, headers=SCIM).status_code == 200
    assert scim.get("/api/v1/me", headers=api_org.auth("cy")).status_code == 401
    assert web.get("/me", follow_redirects=False).status_code in (303, 307)
    # Reactivated: the same token works again (it was never revoked, only its person off).
    on = {**off, "Operations": [{"op": "replace", "value": {"active": True}}]}
    assert scim.patch(f"/scim/v2/Users/{cy}", json=on, headers=SCIM).status_code == 200
    assert scim.get("/api/v1/me", headers=api_org.auth("cy")).status_code == 200


def test_delete_deactivates_and_keeps_reviews_and_evidence(
    scim: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    cy = api_org.ids["cy"]

    def kept() -> tuple[int, int, int]:
        with engine.connect() as conn:
            return (
                conn.scalar(select(func.count()).where(Person.id == cy)) or 0,
                conn.scalar(select(func.count()).select_from(Draft).where(Draft.subject_id == cy))
                or 0,
                conn.scalar(select(func.count()).select_from(Record).where(Record.subject_id == cy))
                or 0,
            )

    before = kept()
    assert before[1] > 0 and before[2] > 0
    assert scim.delete(f"/scim/v2/Users/{cy}", headers=SCIM).status_code == 204
    assert kept() == before
    assert scim.get(f"/scim/v2/Users/{cy}", headers=SCIM).status_code == 404
    assert scim.get("/api/v1/me", headers=api_org.auth("cy")).status_code == 401
    with engine.connect() as conn:
        active, left_on = conn.execute(
            select(Person.active, Person.left_on).where(Person.id == cy)
        ).one()
    assert active is False and left_on is not None
    # Provisioned again (a rehire): the same person, active, with everything they had.
    again = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "cy.diaz@example.com",
        "emails": [{"value": "cy.diaz@example.com", "primary": True}],
        "active": True,
    }
    created = scim.post("/scim/v2/Users", json=again, headers=SCIM)
    assert created.status_code == 201, created.text
    assert created.json()["id"] == str(cy)
    assert scim.get("/api/v1/me", headers=api_org.auth("cy")).status_code == 200


def test_the_scim_router_refuses_a_request_that_did_not_pass_the_gate(
    settings: Settings, engine: Engine
) -> None:
    """Should the app ever be assembled without ScimGate, SCIM is closed, not open."""
    from fastapi import FastAPI

    from service.api.routers import scim as scim_router

    bare = FastAPI()
    bare.state.settings = _with_token(settings)
    bare.state.engine = engine
    bare.include_router(scim_router.router)
    with TestClient(bare) as client:
        for headers in ({}, SCIM):
            answer = client.get("/scim/v2/Users", headers=headers)
            assert answer.status_code == 401 and answer.json()["status"] == "401"


def test_a_short_scim_token_is_refused_at_start() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="FAIRDRAFT_SCIM_TOKEN must be at least 32"):
        Settings(_env_file=None, scim_token=SecretStr("short"))
