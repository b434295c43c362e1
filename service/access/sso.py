"""Single sign-on: the OpenID Connect authorization-code flow with PKCE, in the web app.

`GET /sign-in/oidc` sends the browser to the identity provider with a fresh state, nonce
and PKCE (S256) challenge; the provider sends it back to `GET /sign-in/oidc/callback` with
a code, which fairdraft exchanges for an ID token over the back channel (Authlib), checks
(signature by the provider's JWKS, iss, aud == our client id, exp and iat with a minute's
leeway, nonce), and maps to a person by the email claim, then by the subject the person
is bound to. An active person gets the same
page session as a one-time sign-in link (service/access/sessions.py): same cookie, same
idle and absolute lifetimes, same CSRF protection. The callback answers with a page that
moves on to `next` by itself rather than a redirect (templates/signed_in.html.j2): the
session cookie is SameSite=Strict, and a browser sends no Strict cookie on a redirect
chain that began on the provider's site.

Where the state, nonce and code verifier wait between the two requests: in a cookie
signed with a server key (itsdangerous), HttpOnly, SameSite=Lax (the provider's redirect
back is a cross-site navigation, which a Strict cookie would miss), scoped to
/sign-in/oidc and good for ten minutes. Server-side storage would need a table or one
process's memory; fairdraft runs as stateless processes behind a load balancer, and a
process other than the one that started the sign-in may get the callback. What the
cookie holds is worth nothing elsewhere: the state only binds the callback to this
browser, the nonce to this ID token, and the verifier is useless without the code, which
the provider sends once, to our registered redirect URI.

The subject binding: the first sign-in stores the ID token's `sub` in people.sso_subject,
and a later sign-in under another `sub` (or a `sub` bound to someone else) is refused. An
email is not an identity: whoever can change addresses at the provider (its admin, or a
holder of the SCIM token) could otherwise give an HR admin's address to an account of
theirs and sign in as that admin. `sub` alone is the key, without the issuer: one issuer
is configured (FAIRDRAFT_SSO_ISSUER, checked against every token's `iss`), and OpenID
Connect Core 1.0, 2 makes `sub` unique and never reassigned within an issuer. Moving to
another provider changes every `sub`, so HR clears the bindings then (`fairdraft sso
unbind`), which a stored issuer would not spare them either. HR clears one binding the
same way when a person's account at the provider is replaced.

A refusal is an `SsoRefused` (a `Refused`) naming why; the callback audits it, counts it
as a failed sign-in for the address's throttle, and shows the sign-in page with a message
that names no one: an unknown, an inactive and an ambiguous address read the same. No
code, token or verifier is ever logged or audited.

The provider's discovery document and keys are read at first use and kept by the
`SingleSignOn` object, made once per app (service/web/pages/auth.py), never in a module.
"""

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
from authlib.integrations.base_client.errors import (  # type: ignore[import-untyped]
    OAuthError,
)
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from authlib.oidc.core import CodeIDToken  # type: ignore[import-untyped]
from itsdangerous import BadData, URLSafeTimedSerializer
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, Engine, func, select, update
from sqlalchemy.exc import IntegrityError

from domain.errors import Misconfigured, NotFound, Refused, Unavailable
from service.access.sessions import OpenedSession, SessionLifetime, end_session, open_session
from service.audit import audit
from service.db.models import Person
from service.settings import Settings

PATH = "/sign-in/oidc"
CALLBACK_PATH = PATH + "/callback"
COOKIE = "fairdraft_sso"
COOKIE_MAX_AGE_S = 600
LEEWAY_S = 60  # clock skew allowed on exp and iat
# Asymmetric only: a token "signed" with a provider's public key as an HMAC secret fails.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
try:  # Authlib's httpx client speaks through httpx2 where it is installed, else httpx
    import httpx2

    _HTTP_ERRORS: tuple[type[Exception], ...] = (httpx.HTTPError, httpx2.HTTPError)
except ImportError:  # pragma: no cover - depends on what is installed
    _HTTP_ERRORS = (httpx.HTTPError,)
# The token endpoint unreachable, answering 5xx or not JSON, or discovery failing.
_PROVIDER_FAILED: tuple[type[Exception], ...] = (*_HTTP_ERRORS, ValueError, Unavailable)
_KEYS_REFETCH_S = 60.0  # an unknown key id refetches the JWKS at most this often
_SALT = "fairdraft.sso.pending"
_ENTITY = "sso"


class Refusal(StrEnum):
    """Why a sign-in opened no session: the audit's word for it."""

    STATE = "state"
    PROVIDER_ERROR = "provider_error"
    CODE_REFUSED = "code_refused"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    SIGNATURE = "signature"
    ISSUER = "issuer"
    AUDIENCE = "audience"
    EXPIRED = "expired"
    NONCE = "nonce"
    CLAIMS = "claims"
    NO_EMAIL = "no_email"
    EMAIL_UNVERIFIED = "email_unverified"
    UNKNOWN_EMAIL = "unknown_email"
    INACTIVE = "inactive"
    AMBIGUOUS_EMAIL = "ambiguous_email"
    SUBJECT_MISMATCH = "subject_mismatch"


_UNVERIFIABLE = (
    "Your identity provider's answer could not be verified ({}), so you are not signed in. "
    "Try again; if it happens again, tell your fairdraft administrator."
)
_NO_ACCOUNT = (
    "fairdraft has no active account for the address your identity provider gave. "
    "Ask HR to check the work email fairdraft holds for you."
)
_MESSAGES: dict[Refusal, str] = {
    Refusal.STATE: (
        "This sign-in was not started in this browser, or took longer than ten minutes. "
        "Start again with the button below."
    ),
    Refusal.PROVIDER_ERROR: "Your identity provider did not sign you in ({}).",
    Refusal.CODE_REFUSED: _UNVERIFIABLE.format("the provider refused the sign-in code"),
    Refusal.PROVIDER_UNAVAILABLE: (
        "Your identity provider could not be reached. Try again in a few minutes."
    ),
    Refusal.SIGNATURE: _UNVERIFIABLE.format("its signature does not match the provider's keys"),
    Refusal.ISSUER: _UNVERIFIABLE.format("it comes from another issuer"),
    Refusal.AUDIENCE: _UNVERIFIABLE.format("it was made for another application"),
    Refusal.EXPIRED: _UNVERIFIABLE.format("it has expired"),
    Refusal.NONCE: _UNVERIFIABLE.format("it belongs to another sign-in"),
    Refusal.CLAIMS: _UNVERIFIABLE.format("it is incomplete or not yet valid"),
    Refusal.NO_EMAIL: (
        "Your identity provider did not tell fairdraft your email address, which fairdraft "
        "signs you in by. Tell your fairdraft administrator."
    ),
    Refusal.EMAIL_UNVERIFIED: (
        "Your identity provider says your email address is not verified. Verify it there, "
        "then sign in again."
    ),
    Refusal.UNKNOWN_EMAIL: _NO_ACCOUNT,
    Refusal.INACTIVE: _NO_ACCOUNT,
    Refusal.AMBIGUOUS_EMAIL: _NO_ACCOUNT,
    Refusal.SUBJECT_MISMATCH: (
        "Your identity provider signed you in with an account other than the one fairdraft "
        "knows for your address, so you are not signed in. Ask HR to check your single "
        "sign-on account."
    ),
}
_STATUS: dict[Refusal, int] = {
    Refusal.STATE: 400,
    Refusal.PROVIDER_UNAVAILABLE: 502,
    Refusal.UNKNOWN_EMAIL: 403,
    Refusal.INACTIVE: 403,
    Refusal.AMBIGUOUS_EMAIL: 403,
    Refusal.EMAIL_UNVERIFIED: 403,
    Refusal.SUBJECT_MISMATCH: 403,
}


class SsoRefused(Refused):
    """A sign-in through the identity provider that opens no session, and why."""

    def __init__(self, refusal: Refusal, *, email: str | None = None, detail: str = "") -> None:
        message = _MESSAGES[refusal]
        super().__init__(message.format(detail) if "{}" in message else message, field="sso")
        self.refusal = refusal
        self.email = email

    @property
    def status(self) -> int:
        """The page's status: 400 for a broken flow, 403 for a person we will not sign in,
        502 for a provider we could not reach, 401 for an answer we could not verify."""
        return _STATUS.get(self.refusal, 401)


class ProviderMetadata(BaseModel):
    """The parts of the provider's discovery document (OpenID Connect Discovery 1.0, 3)
    fairdraft uses; anything else in it is ignored."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_endpoint_auth_methods_supported: list[str] = Field(
        default_factory=lambda: ["client_secret_basic"]
    )


class PendingSignIn(BaseModel):
    """What the signed cookie carries from the start of a sign-in to its callback."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(min_length=16, max_length=128)
    nonce: str = Field(min_length=16, max_length=128)
    verifier: str = Field(min_length=43, max_length=128)  # RFC 7636, 4.1
    next: str = Field(max_length=2048)


@dataclass(frozen=True)
class SsoIdentity:
    """A verified ID token's subject and email."""

    subject: str
    email: str


@dataclass(frozen=True)
class Callback:
    """The provider's answer as the browser brought it back (query parameters)."""

    code: str | None
    state: str | None
    error: str | None


class SingleSignOn:
    """One identity provider: discovery and keys read at first use and kept here (one
    object per app), the flow's two halves, and the ID token's checks."""

    def __init__(self, settings: Settings) -> None:
        if not (settings.sso_issuer and settings.sso_client_id):
            raise Misconfigured("single sign-on is not configured", field="sso_issuer")
        self.issuer = settings.sso_issuer.rstrip("/")
        self.client_id = settings.sso_client_id
        self.client_secret = (
            settings.sso_client_secret.get_secret_value() if settings.sso_client_secret else None
        )
        self.scopes = settings.sso_scopes
        self.email_claim = settings.oidc_email_claim
        self.timeout_s = settings.sso_timeout_s
        self._serializer = URLSafeTimedSerializer(_cookie_key(settings), salt=_SALT)
        self._lock = threading.Lock()
        self._metadata: ProviderMetadata | None = None
        self._keys: KeySet | None = None
        self._keys_read_at = 0.0
        # Header parameters of a provider's own (beyond RFC 7515's) are let through, as
        # Authlib's client does: the signature and the claims are what is checked.
        self._registry = JWSRegistry(algorithms=list(ALGORITHMS), strict_check_header=False)

    # ------------------------------------------------------------ the provider

    def metadata(self) -> ProviderMetadata:
        """The discovery document, read once; a failed read is not kept, so the next
        sign-in tries again."""
        with self._lock:
            if self._metadata is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                found = ProviderMetadata.model_validate(self._get_json(url))
                if found.issuer.rstrip("/") != self.issuer:
                    raise Misconfigured(
                        f"the discovery document names issuer {found.issuer!r}, not "
                        f"FAIRDRAFT_SSO_ISSUER {self.issuer!r}",
                        field="sso_issuer",
                    )
                self._metadata = found
            return self._metadata

    def keys(self, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys, read once and again when a token names a key id
        we do not hold (the provider rotated its keys), at most once a minute."""
        jwks_uri = self.metadata().jwks_uri
        with self._lock:
            stale = refresh and time.monotonic() - self._keys_read_at > _KEYS_REFETCH_S
            if self._keys is None or stale:
                try:
                    self._keys = KeySet.import_key_set(self._get_json(jwks_uri))
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise Unavailable(
                        f"the identity provider's key set is not usable: {exc}", field="jwks_uri"
                    ) from None
                self._keys_read_at = time.monotonic()
            return self._keys

    def _get_json(self, url: str) -> Any:
        try:
            response = httpx.get(url, timeout=self.timeout_s, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise Unavailable(
                f"the identity provider did not answer {url} usefully: {type(exc).__name__}",
                field="sso_issuer",
            ) from None

    def _client(self, redirect_uri: str) -> Any:
        """Authlib's OAuth 2 client for one sign-in: its token is per-exchange state, so
        one is never shared between requests. A public client authenticates with nothing
        but the PKCE verifier."""
        if self.client_secret is None:
            method = "none"
        elif "client_secret_basic" in self.metadata().token_endpoint_auth_methods_supported:
            method = "client_secret_basic"
        else:
            method = "client_secret_post"
        return OAuth2Client(
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_endpoint_auth_method=method,
            scope=self.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout_s,
            follow_redirects=False,
        )

    # ------------------------------------------------------------ the flow

    def begin(self, redirect_uri: str, next_path: str) -> tuple[str, PendingSignIn]:
        """Where to send the browser, and what its cookie must bring back."""
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            verifier=secrets.token_urlsafe(64),
            next=next_path,
        )
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.metadata().authorization_endpoint,
                state=pending.state,
                code_verifier=pending.verifier,
                nonce=pending.nonce,
            )
        return str(url), pending

    def seal(self, pending: PendingSignIn) -> str:
        """The cookie's value: the pending sign-in, signed and timestamped."""
        return self._serializer.dumps(pending.model_dump())

    def unseal(self, value: str | None) -> PendingSignIn | None:
        """The pending sign-in of a cookie we signed in the last ten minutes; None for a
        missing, stale, altered or foreign one."""
        if not value or len(value) > 4096:
            return None
        try:
            loaded = self._serializer.loads(value, max_age=COOKIE_MAX_AGE_S)
            return PendingSignIn.model_validate(loaded)
        except (BadData, ValidationError):
            return None

    def identify(
        self, pending: PendingSignIn | None, callback: Callback, redirect_uri: str
    ) -> SsoIdentity:
        """The verified identity of a callback, or SsoRefused: state first (a callback
        this browser did not start is refused before the provider is asked anything),
        then the provider's own error, then the code's exchange and the ID token."""
        if (
            pending is None
            or callback.state is None
            or not hmac.compare_digest(pending.state.encode(), callback.state.encode())
        ):
            raise SsoRefused(Refusal.STATE)
        if callback.error is not None:
            raise SsoRefused(Refusal.PROVIDER_ERROR, detail=_error_code(callback.error))
        if not callback.code:
            raise SsoRefused(Refusal.CODE_REFUSED)
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(
                    self.metadata().token_endpoint,
                    grant_type="authorization_code",
                    code=callback.code,
                    code_verifier=pending.verifier,
                )
        except OAuthError:
            raise SsoRefused(Refusal.CODE_REFUSED) from None
        except _PROVIDER_FAILED:
            raise SsoRefused(Refusal.PROVIDER_UNAVAILABLE) from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused(Refusal.CLAIMS)
        access_token = token.get("access_token")
        return self.verify_id_token(
            id_token,
            nonce=pending.nonce,
            access_token=access_token if isinstance(access_token, str) else None,
        )

    def verify_id_token(
        self, id_token: str, *, nonce: str, access_token: str | None = None
    ) -> SsoIdentity:
        """The ID token's subject and email, or SsoRefused naming the check it failed."""
        try:
            try:
                token = jwt.decode(id_token, self.keys(), registry=self._registry)
            except InvalidKeyIdError:
                token = jwt.decode(id_token, self.keys(refresh=True), registry=self._registry)
        except Unavailable:
            raise SsoRefused(Refusal.PROVIDER_UNAVAILABLE) from None
        except (JoseError, ValueError, TypeError):
            raise SsoRefused(Refusal.SIGNATURE) from None
        options = {
            "iss": {"essential": True, "value": self.metadata().issuer},
            "aud": {"essential": True, "value": self.client_id},
            "nonce": {"essential": True, "value": nonce},
        }
        params = {"nonce": nonce, "client_id": self.client_id, "access_token": access_token}
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(leeway=LEEWAY_S)
        except ExpiredTokenError:
            raise SsoRefused(Refusal.EXPIRED) from None
        except ClaimError as exc:
            raise SsoRefused(_claim_refusal(exc.claim)) from None
        return self._identity(dict(token.claims))

    def _identity(self, claims: dict[str, Any]) -> SsoIdentity:
        email = claims.get(self.email_claim)
        if not isinstance(email, str) or "@" not in email or len(email) > 320:
            raise SsoRefused(Refusal.NO_EMAIL)
        if claims.get("email_verified") in (False, "false"):
            raise SsoRefused(Refusal.EMAIL_UNVERIFIED, email=email.lower())
        return SsoIdentity(subject=str(claims["sub"]), email=email.lower())


def _claim_refusal(claim: str) -> Refusal:
    if claim in ("aud", "azp"):
        return Refusal.AUDIENCE
    if claim == "iss":
        return Refusal.ISSUER
    if claim == "nonce":
        return Refusal.NONCE
    return Refusal.CLAIMS


def _error_code(error: str) -> str:
    """The provider's error code (RFC 6749, 4.1.2.1) as we show it: its own characters
    only, cut short; its free-text description is never shown."""
    cleaned = "".join(c for c in error if c.isascii() and (c.isalnum() or c == "_"))
    return cleaned[:64] or "unknown_error"


def _cookie_key(settings: Settings) -> str:
    """The cookie's signing key: FAIRDRAFT_SSO_COOKIE_KEY, else one derived from the
    client secret (so that every process of one deployment agrees without another
    setting, and the secret itself never signs anything)."""
    if settings.sso_cookie_key is not None:
        return settings.sso_cookie_key.get_secret_value()
    if settings.sso_client_secret is None:
        raise Misconfigured("FAIRDRAFT_SSO_COOKIE_KEY is required", field="sso_cookie_key")
    secret = settings.sso_client_secret.get_secret_value().encode()
    return hmac.new(secret, b"fairdraft sso cookie key", hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- the session


@dataclass(frozen=True)
class Finished:
    """A callback handled: the session it opened, or why it opened none."""

    session: OpenedSession | None
    refused: SsoRefused | None
    next_path: str


def finish_sign_in(
    engine: Engine,
    sso: SingleSignOn,
    pending: PendingSignIn | None,
    callback: Callback,
    *,
    redirect_uri: str,
    lifetime: SessionLifetime,
    actor: str,
    client: str,
    earlier_session: str | None = None,
) -> Finished:
    """The provider is asked first, with no database connection held; then, in one
    transaction, the person's session is opened (and a session this browser already had
    is ended, when the browser sent its cookie: one person a tab), or the refusal is
    audited."""
    next_path = pending.next if pending is not None else "/"
    try:
        identity = sso.identify(pending, callback, redirect_uri)
    except SsoRefused as refused:
        with engine.begin() as connection:
            refuse(connection, refused, actor=actor, client=client)
        return Finished(None, refused, next_path)
    with engine.begin() as connection:
        try:
            person_id = active_person(connection, identity.email)
            bind_subject(connection, person_id, identity, client=client)
        except SsoRefused as refused:
            refuse(connection, refused, actor=actor, client=client)
            return Finished(None, refused, next_path)
        if earlier_session is not None:
            end_session(connection, earlier_session)
        session = open_session(
            connection, person_id, lifetime=lifetime, oidc_subject=identity.subject
        )
        audit(
            connection,
            actor=f"person:{person_id}",
            action="sso.signed_in",
            entity=_ENTITY,
            entity_id=str(session.id),
            after={"person_id": person_id, "subject": identity.subject, "client": client},
        )
    return Finished(session, None, next_path)


def active_person(connection: Connection, email: str) -> int:
    """The one active person with this email (case-insensitive, as
    service.access.principal.person_by_email matches), or SsoRefused: nobody, an
    inactive person (a leaver), or two people whose addresses differ only in case."""
    rows = connection.execute(
        select(Person.id, Person.active).where(func.lower(Person.email) == email.lower())
    ).all()
    if not rows:
        raise SsoRefused(Refusal.UNKNOWN_EMAIL, email=email)
    if len(rows) > 1:
        raise SsoRefused(Refusal.AMBIGUOUS_EMAIL, email=email)
    if not rows[0].active:
        raise SsoRefused(Refusal.INACTIVE, email=email)
    return int(rows[0].id)


def bind_subject(
    connection: Connection, person_id: int, identity: SsoIdentity, *, client: str
) -> None:
    """The person's sign-in subject: stored (and audited) on their first sign-in, checked
    on every later one. SsoRefused when the person is bound to another subject, or this
    subject to another person (an account at the provider that signed in as someone else
    before and now carries this address)."""
    subject = identity.subject
    held_by = connection.scalar(select(Person.id).where(Person.sso_subject == subject))
    if held_by is not None and held_by != person_id:
        raise SsoRefused(Refusal.SUBJECT_MISMATCH, email=identity.email)
    if held_by == person_id:
        return
    # Bound only if no subject is stored yet: a concurrent first sign-in, or one of the
    # person under another subject, leaves the row as it is and is refused below.
    try:
        with connection.begin_nested():
            bound = connection.execute(
                update(Person)
                .where(Person.id == person_id, Person.sso_subject.is_(None))
                .values(sso_subject=subject)
            ).rowcount
    except IntegrityError:  # the same subject bound to someone else at the same moment
        raise SsoRefused(Refusal.SUBJECT_MISMATCH, email=identity.email) from None
    if bound != 1:
        stored = connection.scalar(select(Person.sso_subject).where(Person.id == person_id))
        if stored == subject:  # the same person's first sign-in, twice at once
            return
        raise SsoRefused(Refusal.SUBJECT_MISMATCH, email=identity.email)
    audit(
        connection,
        actor=f"person:{person_id}",
        action="sso.bound",
        entity="person",
        entity_id=str(person_id),
        before={"sso_subject": None},
        after={"sso_subject": subject, "client": client},
    )


def unbind_subject(connection: Connection, employee_id: str, *, actor: str) -> str | None:
    """Clear a person's sign-in subject, so that their next sign-in binds anew (HR, after
    the person's account at the provider was replaced). The subject it held, or None when
    it held none; NotFound for an employee id nobody has."""
    row = connection.execute(
        select(Person.id, Person.sso_subject).where(Person.employee_id == employee_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no person has employee id {employee_id!r}", field="employee_id")
    if row.sso_subject is None:
        return None
    connection.execute(update(Person).where(Person.id == row.id).values(sso_subject=None))
    audit(
        connection,
        actor=actor,
        action="sso.unbound",
        entity="person",
        entity_id=str(row.id),
        before={"sso_subject": row.sso_subject},
        after={"sso_subject": None},
    )
    return str(row.sso_subject)


def refuse(connection: Connection, refused: SsoRefused, *, actor: str, client: str) -> None:
    """The audit event of a sign-in that opened no session: why, the address the
    provider vouched for when it got that far, and who tried from where."""
    audit(
        connection,
        actor=actor,
        action="sso.refused",
        entity=_ENTITY,
        entity_id=None,
        after={"reason": refused.refusal.value, "email": refused.email, "client": client},
    )
