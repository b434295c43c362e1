"""Who a request speaks for: a bearer token (fairdraft's own or an OIDC JWT) or a page
session, resolved to a Principal in one place for the API and the pages alike.

Made once per app (it holds the OIDC verifier with its cached keys) and used by the
authentication middleware before any request body is read.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from service.access.oidc import InvalidOidcToken, OidcVerifier, looks_like_jwt
from service.access.principal import Principal, load_principal, person_by_email
from service.access.sessions import SessionLifetime, person_for_session
from service.access.tokens import live_token
from service.settings import Settings


@dataclass(frozen=True)
class BearerIdentity:
    """The person a bearer credential names, and what a session opened with it binds to."""

    person_id: int
    token_id: int | None = None
    oidc_subject: str | None = None
    expires_at: datetime | None = None  # a JWT's own end: a session never outlives it


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._oidc = OidcVerifier(settings) if settings.oidc_issuer else None
        self.lifetime = SessionLifetime(
            idle=timedelta(minutes=settings.session_idle_minutes),
            absolute=timedelta(hours=settings.session_hours),
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
        identity = self.bearer_identity(connection, token)
        return self._principal(connection, identity.person_id) if identity else None

    def session(self, connection: Connection, secret: str) -> Principal | None:
        person_id = person_for_session(connection, secret, idle=self.lifetime.idle)
        return self._principal(connection, person_id) if person_id else None

    def _principal(self, connection: Connection, person_id: int) -> Principal | None:
        return load_principal(connection, person_id, indirect=self.settings.manager_scope_indirect)
