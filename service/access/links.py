"""One-time sign-in links: a URL that signs one person in once, within 30 minutes.

Made by an operator (`fairdraft sign-in-link --person EMAIL`) or by `fairdraft demo`, never
over HTTP: whoever may mint a link may become anyone. Like an API token, the link holds 256
random bits and the table only their SHA-256, so a copy of the table signs nobody in.

Opening the link (GET) only shows whose it is and a button; the button's POST uses it up and
opens a page session (service/access/sessions.py). Two steps because chat and mail clients
fetch links to preview them, and a single-use link they fetched would be spent before the
person clicked it. Using it is one UPDATE that sets `used_at` only while it is unset and the
link is live, so two tabs racing with one link open at most one session.

A used, expired or unknown link signs nobody in, gets a page saying which, and an audit
event; the page counts it as a failed sign-in for the address's throttle.
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import Connection, insert, select, update

from domain.errors import NotFound
from service.access.sessions import OpenedSession, SessionLifetime, open_session
from service.access.tokens import token_hash
from service.audit import audit
from service.db.models import Person, SignInLink
from service.settings import Settings

PREFIX = "fdl_"
LIFETIME = timedelta(minutes=30)
PATH = "/sign-in/link"  # GET PATH/<secret> shows the link's page, POST PATH uses it
_LONGEST = 128  # a secret is PREFIX + 43 characters; anything much longer is not one of ours
_ENTITY = "sign_in_link"


class LinkState(StrEnum):
    LIVE = "live"
    USED = "used"
    EXPIRED = "expired"
    UNKNOWN = "unknown"


class UnknownLinkPerson(NotFound):
    """A link asked for a person id the store does not have."""


@dataclass(frozen=True)
class IssuedLink:
    id: int
    person_id: int
    name: str
    email: str
    secret: str  # the only time the plain secret exists
    expires_at: datetime

    def url(self, base: str) -> str:
        return f"{base.rstrip('/')}{PATH}/{self.secret}"


@dataclass(frozen=True)
class LinkLook:
    """What a secret names: its state and, for one fairdraft made, whose it is and when."""

    state: LinkState
    id: int | None = None
    person_id: int | None = None
    name: str = ""
    expires_at: datetime | None = None
    used_at: datetime | None = None

    @property
    def reason(self) -> str:
        """Why the link signs nobody in, in words for the person holding it."""
        if self.state is LinkState.USED and self.used_at is not None:
            return (
                f"This sign-in link was already used, at {self.used_at:%Y-%m-%d %H:%M} UTC. "
                "A link signs in once."
            )
        if self.state is LinkState.EXPIRED and self.expires_at is not None:
            return (
                f"This sign-in link expired at {self.expires_at:%Y-%m-%d %H:%M} UTC. "
                f"A link works for {int(LIFETIME.total_seconds()) // 60} minutes."
            )
        return "This sign-in link is not one fairdraft made. Check that it was copied whole."


@dataclass(frozen=True)
class Exchange:
    """A link used: the session it opened, or (session None) why it opened none."""

    look: LinkLook
    session: OpenedSession | None


def issue_link(
    connection: Connection, person_id: int, *, actor: str, lifetime: timedelta = LIFETIME
) -> IssuedLink:
    """A new link for the person, audited with who made it (never its secret)."""
    person = connection.execute(
        select(Person.name, Person.email).where(Person.id == person_id)
    ).one_or_none()
    if person is None:
        raise UnknownLinkPerson(f"no person with id {person_id}", field="person")
    secret = PREFIX + secrets.token_urlsafe(32)
    expires_at = datetime.now(UTC) + lifetime
    link_id = connection.execute(
        insert(SignInLink)
        .values(
            link_hash=token_hash(secret),
            person_id=person_id,
            created_by=actor,
            expires_at=expires_at,
        )
        .returning(SignInLink.id)
    ).scalar_one()
    audit(
        connection,
        actor=actor,
        action="sign_in_link.issued",
        entity=_ENTITY,
        entity_id=str(link_id),
        after={"person_id": person_id, "expires_at": expires_at.isoformat()},
    )
    return IssuedLink(link_id, person_id, person.name, person.email, secret, expires_at)


def look_up_link(connection: Connection, secret: str) -> LinkLook:
    """The link's state, read only: nothing is used up."""
    if not _well_formed(secret):
        return LinkLook(LinkState.UNKNOWN)
    row = connection.execute(
        select(
            SignInLink.id,
            SignInLink.person_id,
            SignInLink.expires_at,
            SignInLink.used_at,
            Person.name,
        )
        .join(Person, Person.id == SignInLink.person_id)
        .where(SignInLink.link_hash == token_hash(secret))
    ).one_or_none()
    if row is None:
        return LinkLook(LinkState.UNKNOWN)
    if row.used_at is not None:
        state = LinkState.USED
    elif row.expires_at <= datetime.now(UTC):
        state = LinkState.EXPIRED
    else:
        state = LinkState.LIVE
    return LinkLook(state, row.id, row.person_id, row.name, row.expires_at, row.used_at)


def exchange_link(
    connection: Connection, secret: str, *, lifetime: SessionLifetime, actor: str, client: str
) -> Exchange:
    """Use the link up and open a session for its person; a used, expired or unknown link
    opens none and is audited as refused. `actor` and `client` name who tried (the person
    already signed in, or "anonymous", and the address) for the audit trail."""
    used = (
        connection.execute(
            update(SignInLink)
            .where(
                SignInLink.link_hash == token_hash(secret),
                SignInLink.used_at.is_(None),
                SignInLink.expires_at > datetime.now(UTC),
            )
            .values(used_at=datetime.now(UTC))
            .returning(SignInLink.id, SignInLink.person_id, SignInLink.expires_at)
        ).one_or_none()
        if _well_formed(secret)
        else None
    )
    if used is None:
        look = look_up_link(connection, secret)
        refuse_link(connection, look, actor=actor, client=client)
        return Exchange(look, None)
    session = open_session(connection, used.person_id, lifetime=lifetime, sign_in_link_id=used.id)
    audit(
        connection,
        actor=f"person:{used.person_id}",
        action="sign_in_link.used",
        entity=_ENTITY,
        entity_id=str(used.id),
        after={"person_id": used.person_id, "session_id": session.id, "client": client},
    )
    return Exchange(LinkLook(LinkState.LIVE, used.id, used.person_id), session)


def refuse_link(connection: Connection, look: LinkLook, *, actor: str, client: str) -> None:
    """The audit event of a link that signed nobody in: which link (when it is one of
    ours), why, and who tried from where."""
    audit(
        connection,
        actor=actor,
        action="sign_in_link.refused",
        entity=_ENTITY,
        entity_id=str(look.id) if look.id is not None else None,
        after={"state": look.state.value, "person_id": look.person_id, "client": client},
    )


def base_url(settings: Settings) -> str:
    """Where people reach fairdraft: FAIRDRAFT_PUBLIC_URL, else the address `fairdraft
    serve` listens on (a wildcard address is reached through the loopback one)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return served_url(settings.api_host, settings.api_port)


def served_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _well_formed(secret: str) -> bool:
    """Only a string shaped like our secrets is looked up: no query for anything else."""
    return secret.startswith(PREFIX) and len(secret) <= _LONGEST
