"""Who a request speaks for: a bearer token (fairdraft's own or an OIDC JWT) or a page
session, resolved to a Principal in one place for the API and the pages alike.

Made once per app (it holds the OIDC verifier with its cached keys) and used by the
authentication middleware before any request body is read.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, func, select

from service.access.oidc import InvalidOidcToken, OidcVerifier, looks_like_jwt
from service.access.principal import (
    Principal,
    person_by_email,
    principal_from_row,
    principal_statement,
)
from service.access.sessions import (
    SessionLifetime,
    live_session_params,
    live_session_select,
    touch_session,
)
from service.access.tokens import live_token, live_token_params, live_token_select
from service.db.models import Person
from service.settings import Settings


@dataclass(frozen=True)
class BearerIdentity:
    """The person a bearer credential names, and what a session opened with it binds to."""

    person_id: int
    token_id: int | None = None
    oidc_subject: str | None = None
    expires_at: datetime | None = None  # a JWT's own end: a session never outlives it


class Authenticator:
    """Every request's caller in one query: the credential's lookup and the Principal's
    parts in one statement, built here once per app and run with bound parameters."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._oidc = OidcVerifier(settings) if settings.oidc_issuer else None
        self.lifetime = SessionLifetime(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_hours),
        )
        indirect = settings.manager_scope_indirect
        self._by_token = principal_statement(live_token_select().cte("caller"), indirect=indirect)
        self._by_session = principal_statement(
            live_session_select().cte("caller"), indirect=indirect
        )

    def bearer_identity(self, connection: Connection, token: str) -> BearerIdentity | None:
        """The person an API token or an OIDC JWT speaks for; None for anything else."""
        if self._oidc is not None and looks_like_jwt(token):
            try:
                jwt = self._oidc.identity(token)
            except InvalidOidcToken:
                return None
            person_id = person_by_email(connection, jwt.email)
            if person_id is None:
                return None
            return BearerIdentity(person_id, oidc_subject=jwt.email, expires_at=jwt.expires_at)
        owner = live_token(connection, token)
        return BearerIdentity(owner.person_id, token_id=owner.token_id) if owner else None

    def bearer(self, connection: Connection, token: str) -> Principal | None:
        """The caller of an API token or an OIDC JWT, in one query; None for anything else."""
        if self._oidc is not None and looks_like_jwt(token):
            try:
                jwt = self._oidc.identity(token)
            except InvalidOidcToken:
                return None
            by_email = select(Person.id.label("person_id")).where(
                func.lower(Person.email) == jwt.email.lower()
            )
            statement = principal_statement(
                by_email.cte("caller"), indirect=self.settings.manager_scope_indirect
            )
            return self._one(connection.execute(statement).all())
        params = live_token_params(token)
        if params is None:
            return None
        return self._one(connection.execute(self._by_token, params).all())

    def session(self, connection: Connection, secret: str) -> Principal | None:
        """The caller of a live page session, in one query; touches the session (a write
        at most once a minute)."""
        now = datetime.now(UTC)
        params = live_session_params(secret, idle=self.lifetime.idle, now=now)
        row = connection.execute(self._by_session, params).one_or_none()
        if row is None:
            return None
        touch_session(connection, row.session_id, row.last_seen_at, now)
        return principal_from_row(row)

    @staticmethod
    def _one(rows: Sequence[Row[Any]]) -> Principal | None:
        """The Principal of the only row; none for no row, or for two (an email two people
        share in any case: the credential names nobody for sure)."""
        return principal_from_row(rows[0]) if len(rows) == 1 else None
