"""Authentication: fairdraft's own tokens (revocable, expiring) and OIDC JWTs verified
against the issuer's keys, on the real app and database."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from service.access.roles import grant_hr_admin, revoke_hr_admin
from service.access.tokens import issue_token, revoke_token
from service.app import create_app
from service.db.models import ApiToken, AuditEvent, WebSession
from service.settings import Settings
from tests.api_org import ApiOrg

ISSUER = "https://id.example.com"
AUDIENCE = "fairdraft"


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def oidc_client(
    engine: Engine,
    settings: Settings,
    api_org: ApiOrg,
    signing_key: rsa.RSAPrivateKey,
    tmp_path: Path,
) -> Iterator[TestClient]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key()))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    configured = settings.model_copy(
        update={"oidc_issuer": ISSUER, "oidc_audience": AUDIENCE, "oidc_jwks_file": jwks}
    )
    with TestClient(create_app(configured, engine=engine, worker=False)) as client:
        yield client


def id_token(key: Any, **overrides: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "email": "Bo.Chen@example.com",
        "exp": int(time.time()) + 300,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def forged_hs256(secret: bytes) -> str:
    """The classic algorithm-confusion forgery: HS256 keyed with the issuer's public key
    (built by hand, since PyJWT refuses to sign it)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = part(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "email": "bo.chen@example.com"}
    payload = part(json.dumps({**claims, "exp": int(time.time()) + 300}).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{part(signature)}"


def me(client: TestClient, token: str) -> Any:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})


def test_a_revoked_or_expired_token_is_refused(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    with engine.begin() as conn:
        issued = issue_token(conn, api_org.ids["dee"], days=1, label="t", actor="test")
    assert me(client, issued.token).status_code == 200
    with engine.begin() as conn:
        assert revoke_token(conn, issued.id, actor="test")
        assert not revoke_token(conn, issued.id, actor="test")
    assert me(client, issued.token).status_code == 401
    with engine.begin() as conn:
        other = issue_token(conn, api_org.ids["dee"], days=1, label="t", actor="test")
        conn.execute(
            update(ApiToken)
            .where(ApiToken.id == other.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert me(client, other.token).status_code == 401


def test_only_the_hash_of_a_token_is_stored(api_org: ApiOrg, engine: Engine) -> None:
    with engine.connect() as conn:
        stored = {row.token_hash for row in conn.execute(ApiToken.__table__.select())}
    assert stored and not stored & set(api_org.tokens.values())


def test_an_oidc_jwt_of_the_issuer_speaks_for_the_person_with_that_email(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    response = me(oidc_client, id_token(signing_key))
    assert response.status_code == 200, response.text
    assert response.json()["email"] == "bo.chen@example.com"


def test_oidc_jwts_that_are_expired_foreign_or_forged_are_refused(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    refused = [
        id_token(signing_key, exp=int(time.time()) - 10),
        id_token(signing_key, iss="https://evil.example.com"),
        id_token(signing_key, aud="someone-else"),
        id_token(stranger),
        id_token(signing_key, email="nobody@example.com"),
        id_token(signing_key, email_verified=False),
        forged_hs256(public_pem),
    ]
    for token in refused:
        response = me(oidc_client, token)
        assert response.status_code == 401, token
        assert response.json()["errors"][0]["field"] == "Authorization"


def test_a_page_session_opened_with_an_oidc_jwt_ends_when_the_jwt_does(
    oidc_client: TestClient, signing_key: rsa.RSAPrivateKey, engine: Engine
) -> None:
    expires = int(time.time()) + 120
    opened = oidc_client.post(
        "/sign-in",
        data={"token": id_token(signing_key, exp=expires)},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert opened.status_code == 303, opened.text
    with engine.connect() as conn:
        ends, subject = conn.execute(select(WebSession.expires_at, WebSession.oidc_subject)).one()
    assert int(ends.timestamp()) == expires
    assert subject == "bo.chen@example.com"


def test_oidc_without_an_audience_is_refused_at_configuration(settings: Settings) -> None:
    with pytest.raises(ValueError, match="FAIRDRAFT_OIDC_AUDIENCE"):
        Settings(
            **{**settings.model_dump(), "oidc_issuer": ISSUER, "oidc_audience": None},
            _env_file=None,
        )


def test_granting_and_revoking_hr_admin_changes_the_next_request_and_is_audited(
    client: TestClient, api_org: ApiOrg, engine: Engine
) -> None:
    with engine.begin() as conn:
        grant_hr_admin(conn, api_org.ids["dee"], actor="admin")
    assert "hr_admin" in me(client, api_org.tokens["dee"]).json()["roles"]
    with engine.begin() as conn:
        revoke_hr_admin(conn, api_org.ids["dee"], actor="admin")
    assert "hr_admin" not in me(client, api_org.tokens["dee"]).json()["roles"]
    with engine.connect() as conn:
        actions = conn.execute(
            select(AuditEvent.action).where(AuditEvent.entity_id == str(api_org.ids["dee"]))
        ).scalars()
        assert {"role.granted", "role.revoked"} <= set(actions)
