"""Server-side sessions for the pages: the cookie holds a random id, the table its SHA-256.

Why not the bearer token in the cookie: a 90-day token in a browser outlives the visit,
survives sign-out, and a copy of it works on the API too. A session is bound to the token
(or OIDC identity) it was opened with, ends at sign-out, after an idle gap, at an absolute
end, or when its token is revoked, whichever comes first.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Select, bindparam, delete, insert, or_, select, update

from service.access.tokens import token_hash
from service.audit import audit
from service.db.models import ApiToken, WebSession

# last_seen_at is written at most once a minute per session: a page view is not a write.
_TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class SessionLifetime:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class OpenedSession:
    id: int
    secret: str  # the cookie's value: exists only here and in the browser
    expires_at: datetime


def open_session(
    connection: Connection,
    person_id: int,
    *,
    lifetime: SessionLifetime,
    token_id: int | None = None,
    oidc_subject: str | None = None,
    ends_by: datetime | None = None,
    sign_in_link_id: int | None = None,
) -> OpenedSession:
    """A new session, ending at the absolute lifetime or at `ends_by` (an OIDC token's
    expiry: the identity provider's word on how long this sign-in holds), if sooner. A
    session opened with a one-time link (service/access/links.py) is bound to no token:
    it ends at sign-out, idle or its end; the audit names the link."""
    secret = secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + lifetime.absolute
    if ends_by is not None:
        expires_at = min(expires_at, ends_by)
    session_id = connection.execute(
        insert(WebSession)
        .values(
            session_hash=token_hash(secret),
            person_id=person_id,
            token_id=token_id,
            oidc_subject=oidc_subject,
            expires_at=expires_at,
        )
        .returning(WebSession.id)
    ).scalar_one()
    audit(
        connection,
        actor=f"person:{person_id}",
        action="session_opened",
        entity="web_session",
        entity_id=str(session_id),
        after={
            "person_id": person_id,
            "token_id": token_id,
            "oidc": oidc_subject is not None,
            **({"sign_in_link_id": sign_in_link_id} if sign_in_link_id is not None else {}),
        },
    )
    return OpenedSession(session_id, secret, expires_at)


def live_session_select() -> Select[int, int, datetime]:
    """The live session with the hash `:session_hash` at `:now`, seen after `:idle_since`
    (bound when run): its id, person and last sight. Unknown, ended, idle, expired
    sessions, and those whose token was revoked or expired, select nothing."""
    now = bindparam("now", type_=WebSession.expires_at.type)
    return (
        select(
            WebSession.id.label("session_id"),
            WebSession.person_id,
            WebSession.last_seen_at,
        )
        .outerjoin(ApiToken, ApiToken.id == WebSession.token_id)
        .where(
            WebSession.session_hash
            == bindparam("session_hash", type_=WebSession.session_hash.type),
            WebSession.ended_at.is_(None),
            WebSession.expires_at > now,
            WebSession.last_seen_at > bindparam("idle_since", type_=WebSession.last_seen_at.type),
            or_(
                WebSession.token_id.is_(None),
                (ApiToken.revoked_at.is_(None)) & (ApiToken.expires_at > now),
            ),
        )
    )


_LIVE_SESSION = live_session_select()


def live_session_params(secret: str, *, idle: timedelta, now: datetime) -> dict[str, object]:
    """The parameters of `live_session_select` for a cookie's secret at `now`."""
    return {"session_hash": token_hash(secret), "now": now, "idle_since": now - idle}


def touch_session(
    connection: Connection, session_id: int, last_seen_at: datetime, now: datetime
) -> None:
    """Note that the session was seen, at most once a minute (a page view is not a write)."""
    if last_seen_at < now - _TOUCH_EVERY:
        connection.execute(
            update(WebSession).where(WebSession.id == session_id).values(last_seen_at=now)
        )


def person_for_session(connection: Connection, secret: str, *, idle: timedelta) -> int | None:
    """The person a live session speaks for, touching it; None when it is unknown, ended,
    idle too long, past its end, or its token was revoked or expired."""
    now = datetime.now(UTC)
    row = connection.execute(_LIVE_SESSION, live_session_params(secret, idle=idle, now=now))
    found = row.one_or_none()
    if found is None:
        return None
    touch_session(connection, found.session_id, found.last_seen_at, now)
    return int(found.person_id)


def end_session(connection: Connection, secret: str) -> bool:
    """Sign-out: True when a live session was ended."""
    ended = connection.execute(
        update(WebSession)
        .where(WebSession.session_hash == token_hash(secret), WebSession.ended_at.is_(None))
        .values(ended_at=datetime.now(UTC))
        .returning(WebSession.id, WebSession.person_id)
    ).one_or_none()
    if ended is None:
        return False
    audit(
        connection,
        actor=f"person:{ended.person_id}",
        action="session_ended",
        entity="web_session",
        entity_id=str(ended.id),
    )
    return True


def remove_ended_sessions(connection: Connection, *, idle: timedelta) -> int:
    """Delete the sessions no request can use again (signed out, past their end, or idle
    longer than `idle`), so the table holds live ones only; returns how many went. Run by a
    periodic job (service/jobs/periodic.py)."""
    now = datetime.now(UTC)
    removed = connection.execute(
        delete(WebSession)
        .where(
            or_(
                WebSession.ended_at.is_not(None),
                WebSession.expires_at <= now,
                WebSession.last_seen_at <= now - idle,
            )
        )
        .returning(WebSession.id)
    )
    return len(removed.all())
