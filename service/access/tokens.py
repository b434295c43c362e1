"""Per-person API tokens: random, shown once, stored as a SHA-256, revocable, expiring.

A hash rather than the token because a copy of the table (a backup, a replica) must not
grant anyone's access; SHA-256 rather than a slow password hash because the token is 256
random bits, which nobody guesses, and every request checks one.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    select,
    update,
)

from service.audit import audit
from service.db.models import ApiToken, AuditEvent, Person, WebSession

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


def live_token_select() -> Select[int, int]:
    """The live token with the hash `:token_hash` at `:now` (bound when run): its id and
    person. Unknown, revoked and expired tokens select nothing."""
    return select(ApiToken.id.label("token_id"), ApiToken.person_id).where(
        ApiToken.token_hash == bindparam("token_hash", type_=ApiToken.token_hash.type),
        ApiToken.revoked_at.is_(None),
        ApiToken.expires_at > bindparam("now", type_=ApiToken.expires_at.type),
    )


_LIVE_TOKEN = live_token_select()


def live_token_params(token: str) -> dict[str, object] | None:
    """The parameters of `live_token_select` for a token; None for one that is not
    fairdraft's (no query needed)."""
    if not token.startswith(PREFIX):
        return None
    return {"token_hash": token_hash(token), "now": datetime.now(UTC)}


def live_token(connection: Connection, token: str) -> TokenOwner | None:
    """The token's id and person when it is live; None for an unknown, revoked or expired one."""
    params = live_token_params(token)
    if params is None:
        return None
    row = connection.execute(_LIVE_TOKEN, params).one_or_none()
    return TokenOwner(row.token_id, row.person_id) if row else None


def end_sessions_of_token(connection: Connection, token_id: int) -> None:
    """Revoking a token ends the page sessions opened with it."""
    connection.execute(
        update(WebSession)
        .where(WebSession.token_id == token_id, WebSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
    )


class TokenLine(BaseModel):
    """A token as the operator's list shows it: never the token, which exists only when it
    is issued, nor its hash."""

    model_config = ConfigDict(frozen=True)

    id: int
    owner: str  # the person's email
    label: str
    state: str  # live, expired or revoked
    created_at: datetime
    created_by: str
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def list_tokens(
    connection: Connection,
    *,
    person_id: int | None,
    limit: int,
    offset: int,
    now: datetime | None = None,
) -> tuple[list[TokenLine], int]:
    """A page of tokens (of one person, if named), newest first, and how many there are.

    `last_used_at` is the last time a page session opened with the token was seen, or the
    last sign-in with it (the audit trail keeps that after the session is gone). A bearer
    call to the API is not recorded per token: that would be a write on every request."""
    now = now or datetime.now(UTC)
    chosen = select(ApiToken.id)
    if person_id is not None:
        chosen = chosen.where(ApiToken.person_id == person_id)
    total = connection.execute(select(func.count()).select_from(chosen.subquery())).scalar_one()
    state = case(
        (ApiToken.revoked_at.is_not(None), "revoked"),
        (ApiToken.expires_at <= now, "expired"),
        else_="live",
    )
    rows = connection.execute(
        select(
            ApiToken.id,
            Person.email.label("owner"),
            ApiToken.label,
            state.label("state"),
            ApiToken.created_at,
            ApiToken.created_by,
            ApiToken.expires_at,
            _last_used().label("last_used_at"),
            ApiToken.revoked_at,
        )
        .join(Person, Person.id == ApiToken.person_id)
        .where(ApiToken.id.in_(chosen))
        .order_by(ApiToken.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    return [TokenLine.model_validate(row, from_attributes=True) for row in rows], int(total)


def _last_used() -> ColumnElement[datetime]:
    """The newest trace of the token's use: a session opened with it, seen last (sessions
    are removed once they can no longer be used), or its `session_opened` audit event.
    GREATEST ignores the NULL of a token without one or the other."""
    seen = (
        select(func.max(WebSession.last_seen_at))
        .where(WebSession.token_id == ApiToken.id)
        .scalar_subquery()
    )
    opened = (
        select(func.max(AuditEvent.at))
        .where(
            AuditEvent.action == "session_opened",
            AuditEvent.entity == "web_session",
            AuditEvent.after["token_id"].astext == cast(ApiToken.id, Text),
        )
        .scalar_subquery()
    )
    return func.greatest(seen, opened)
