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
from collections.abc import Iterable, Mapping
from datetime import UTC
from hashlib import sha256
from itertools import pairwise

from sqlalchemy import Connection

from service.calibration.panels import PanelView, cohort_people, panel

PREFIX = "P-"
LENGTH = 6
COLLEAGUE = "[colleague]"
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "Mary-Jane O'Neil" -> 4 words
_JOINER = re.compile(r"[\s\-'\u2019.]*")  # what may stand between the words of one name


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


class NameRedactor:
    """Replaces people's names in free text (a comparable-evidence summary) with their
    labels, or with "[colleague]" for someone not shown on the page.

    A person is recognised by their full name, first name or last name, case-sensitively
    and as whole words. In a text about a person their own first name means them; any other
    name shared by several people becomes "[colleague]". Names that are also ordinary
    capitalised words ("Will", "Grant") are replaced too: a pseudonymised page errs on the
    side of saying less.
    """

    def __init__(self, names: Mapping[int, str], labels: Mapping[int, str]) -> None:
        self._labels = dict(labels)
        self._owners: dict[tuple[str, ...], set[int]] = {}
        self._own: dict[int, set[tuple[str, ...]]] = {}
        for person_id, name in names.items():
            forms = _forms(name)
            self._own[person_id] = forms
            for form in forms:
                self._owners.setdefault(form, set()).add(person_id)
        self._longest = max((len(form) for form in self._owners), default=0)

    def redact(self, text: str, subject_id: int | None = None) -> str:
        words = list(_WORD.finditer(text))
        own = self._own.get(subject_id, set()) if subject_id is not None else set()
        out: list[str] = []
        at = 0
        i = 0
        while i < len(words):
            length = self._match(text, words, i)
            if length == 0:
                i += 1
                continue
            form = tuple(w.group() for w in words[i : i + length])
            out.append(text[at : words[i].start()])
            out.append(self._replacement(form, own, subject_id))
            at = words[i + length - 1].end()
            i += length
        out.append(text[at:])
        return "".join(out)

    def _match(self, text: str, words: list[re.Match[str]], i: int) -> int:
        """The number of words of the longest name starting at word i (0: none)."""
        for length in range(min(self._longest, len(words) - i), 0, -1):
            span = words[i : i + length]
            joined = all(_JOINER.fullmatch(text[a.end() : b.start()]) for a, b in pairwise(span))
            if joined and tuple(w.group() for w in span) in self._owners:
                return length
        return 0

    def _replacement(
        self, form: tuple[str, ...], own: set[tuple[str, ...]], subject_id: int | None
    ) -> str:
        if subject_id is not None and form in own:
            return self._labels.get(subject_id, COLLEAGUE)
        owners = self._owners[form]
        if len(owners) == 1:
            return self._labels.get(next(iter(owners)), COLLEAGUE)
        return COLLEAGUE


def _forms(name: str) -> set[tuple[str, ...]]:
    """The ways a text names someone: full name, first name, last name (single letters,
    like a middle initial, are too common to count as a name)."""
    words = tuple(_WORD.findall(name))
    forms = {words} if words else set()
    for word in (words[:1], words[-1:]):
        if word and len(word[0]) > 1:
            forms.add(word)
    return {f for f in forms if any(len(w) > 1 for w in f)}


def in_panel_words(message: str, person_id: int, who: str) -> str:
    """A refusal as a panel may read it: the rating and gate functions name people by id,
    and an id must not reach a pseudonymised panel (page or API)."""
    return re.sub(rf"\bperson {person_id}\b", lambda _: who, message)
