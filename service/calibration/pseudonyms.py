"""Pseudonyms for a calibration panel: a stable label per person, and names taken out of text.

A panel compares people without knowing who they are, so that a name, a team or a
manager's reputation does not decide a rating. Each person gets the label "P-" + the first
6 hex digits of HMAC-SHA256(panel key, person id). The key is the panel's id, cycle and
creation time to the microsecond: the same panel shows the same label on every request
and page, another panel (or cycle) shows another one, and knowing a person's id alone is
not enough to compute their label. This keeps labels from being read off casually; it is
not a secret against someone who can read the panel's row in the database.

Labels that collide within the people shown together are lengthened (8 hex digits, then
more), so labels are always distinct; a label that collides with nobody never changes.
"""

import hmac
import re
from collections.abc import Iterable
from datetime import UTC
from hashlib import sha256

from sqlalchemy import Connection, select

from service.calibration.panels import PanelView, cohort_people, panel
from service.calibration.redaction import Identity, Redactor
from service.db.models import Person

PREFIX = "P-"
LENGTH = 6
NameRedactor = Redactor  # the one replacement of people in text (service.calibration.redaction)


def panel_key(found: PanelView) -> bytes:
    created = found.created_at.astimezone(UTC).isoformat()
    return f"fairdraft-panel/{found.id}/{found.cycle}/{created}".encode()


def _digest(key: bytes, person_id: int) -> str:
    return hmac.new(key, str(person_id).encode(), sha256).hexdigest()


def pseudonyms(found: PanelView, person_ids: Iterable[int]) -> dict[int, str]:
    """Distinct labels for the people shown together on the panel."""
    key = panel_key(found)
    digests = {p: _digest(key, p) for p in set(person_ids)}
    labels: dict[int, str] = {}
    length = LENGTH
    pending = set(digests)
    while pending:
        by_label: dict[str, list[int]] = {}
        for p in pending:
            by_label.setdefault(PREFIX + digests[p][:length], []).append(p)
        pending = set()
        for label, people in by_label.items():
            if len(people) == 1 or length >= len(digests[people[0]]):
                labels.update((p, label) for p in people)
            else:
                pending.update(people)
        length += 2
    return labels


def person_for_label(connection: Connection, panel_id: int, label: str) -> int | None:
    """The cohort person a pseudonymised page means by `label` (so it can place or
    calibrate them without ever holding their id); None when nobody, or more than one
    person, fits. A longer label fits the person whose digest it starts."""
    found = panel(connection, panel_id)
    hex_part = label[len(PREFIX) :].lower() if label.startswith(PREFIX) else ""
    if found is None or len(hex_part) < LENGTH or not re.fullmatch(r"[0-9a-f]+", hex_part):
        return None
    key = panel_key(found)
    fits = [
        p.id for p in cohort_people(connection, found) if _digest(key, p.id).startswith(hex_part)
    ]
    return fits[0] if len(fits) == 1 else None


def identities(connection: Connection) -> dict[int, Identity]:
    """Everyone's name, email and employee id: what names a person in a text."""
    query = select(Person.id, Person.name, Person.email, Person.employee_id)
    return {
        row.id: Identity(row.name, row.email, row.employee_id) for row in connection.execute(query)
    }


def in_panel_words(
    connection: Connection, message: str, person_id: int, who: str, *, pseudonymise: bool
) -> str:
    """A refusal as a panel may read it: the rating and gate functions name people by id
    (and may quote a name or an email), none of which may reach a pseudonymised panel
    (page or API). `who` is how the panel names the person: their label, or their name
    when names are shown; anyone else in the message becomes "[colleague]"."""
    message = re.sub(rf"\bperson {person_id}\b", lambda _: who, message)
    if not pseudonymise:
        return message
    return Redactor(identities(connection), {person_id: who}).redact(message, person_id)
