"""Per-person API tokens: random, shown once, stored as a SHA-256, revocable, expiring.

A hash rather than the token because a copy of the table (a backup, a replica) must not
grant anyone's access; SHA-256 rather than a slow password hash because the token is 256
random bits, which nobody guesses, and every request checks one.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert, select, update

from service.audit import audit
from service.db.models import ApiToken, WebSession

PREFIX = "fd_"


@dataclass(frozen=True)
class IssuedToken:
    id: int
    token: str  # the only time the plain token exists
    expires_at: datetime


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    connection: Connection, person_id: int, *, days: int, label: str, actor: str
) -> IssuedToken:
    token = PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + timedelta(days=days)
    token_id = connection.execute(
        insert(ApiToken)
        .values(
            person_id=person_id,
            token_hash=token_hash(token),
            label=label,
            created_by=actor,
            expires_at=expires_at,
        )
        .returning(ApiToken.id)
    ).scalar_one()
    audit(
        connection,
        actor=actor,
        action="token_issued",
        entity="api_token",
        entity_id=str(token_id),
        after={"person_id": person_id, "label": label, "expires_at": expires_at.isoformat()},
    )
    return IssuedToken(token_id, token, expires_at)


def revoke_token(connection: Connection, token_id: int, *, actor: str) -> bool:
    """True when a live token was revoked; revoking twice changes nothing."""
    revoked = connection.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
        .returning(ApiToken.person_id)
    ).scalar_one_or_none()
    if revoked is None:
        return False
    end_sessions_of_token(connection, token_id)
    audit(
        connection,
        actor=actor,
        action="token_revoked",
        entity="api_token",
        entity_id=str(token_id),
        after={"person_id": revoked},
    )
    return True


@dataclass(frozen=True)
class TokenOwner:
    token_id: int
    person_id: int


def live_token(connection: Connection, token: str) -> TokenOwner | None:
    """The token's id and person when it is live; None for an unknown, revoked or expired one."""
    if not token.startswith(PREFIX):
        return None
    row = connection.execute(
        select(ApiToken.id, ApiToken.person_id).where(
            ApiToken.token_hash == token_hash(token),
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > datetime.now(UTC),
        )
    ).one_or_none()
    return TokenOwner(row.id, row.person_id) if row else None


def end_sessions_of_token(connection: Connection, token_id: int) -> None:
    """Revoking a token ends the page sessions opened with it."""
    connection.execute(
        update(WebSession)
        .where(WebSession.token_id == token_id, WebSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )
