"""Taking people out of a text that a pseudonymised reader (a calibration panel) sees.

`Redactor.redact` is the one function every such text goes through: calibration summaries
(generated or edited by a manager, who may write anything), refusal messages, any name a
page would show. It replaces, for every person the company knows:

- names in any case and with possessives: the full name, each part of it alone (first
  name, last name, a hyphenated or multi-word part), first and last name without the
  middle one, initials with a name ("H. Moore", "Heather M."), and initials alone
  ("HM", "H.M.") when written in capitals and not a common abbreviation (HR, PM, ...);
- email addresses (any address: a known person's becomes their label, another "[email]");
- employee ids as the HRIS writes them and with or without leading zeros ("E00033",
  "E33", "e-0033"); an all-digit id only after a cue ("employee 33", "#0033");
- stated pronoun sets ("she/her", "they/them", "xe/xem"), which become "[pronouns]".

Text is matched on a normalised copy: Unicode look-alikes (Cyrillic, Greek, fullwidth,
mathematical letters) folded to Latin, accents dropped, invisible characters (zero-width
spaces and joiners, soft hyphens, direction marks) ignored, and a name broken by a line
break ("Hea-\\nther") read both as it is and joined up. Replacements are cut from the
original text, so everything else stays as written.

Names that are also everyday words (Will, Mark, Grace, Young, Price: data/name_words.json)
count alone only when capitalised in the middle of a sentence, possessive ("Will's"), or
after a title ("Dr. Grace"); in lower case, in capitals, or at the start of a sentence or
line they are left alone ("Will ship it" stays). With another part of the name ("Will
Young", "grace hopper") they always count. Names of up to three letters ("Bo", "Kim",
the "bin" of "Su-bin") count alone when capitalised or in capitals, anywhere, but not in
lower case ("5 min", "/bin"). A text may still say less than it could: "Price" as a
product name becomes a label when someone is called Price.

Not recognised: a name spelt out with spaces ("H e a t h e r"), digits for letters
("M00re"), a nickname the HRIS does not hold, and an employee id written inside a
citation group ("[E33]"), which is left alone because "[E3]" cites evidence.

A person the page shows has a label (their pseudonym); anyone else becomes "[colleague]",
and so does a name, initial or id that several people share, except that in a text about
a person (`subject_id`) their own name parts mean them.
"""

import json
import re
import unicodedata
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache
from itertools import pairwise
from pathlib import Path

COLLEAGUE = "[colleague]"
EMAIL = "[email]"
PRONOUNS = "[pronouns]"
SHORT = 3  # a name part this short counts alone only when capitalised ("Bo", not "bo")
_DATA = Path(__file__).parent / "data"

_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: "Mary-Jane O'Neil" -> 4 words
_JOINER = re.compile(r"[\s\-'\u2019._]*")  # what may stand between the words of one name
# An address is tried only where a run of its characters starts (or where the last one
# ended, see _emails), and the quantifiers never give back: tried from every character of
# a long run with no "@", the plain pattern took seconds on a 100,000-character summary.
_ADDRESS = r"[A-Za-z0-9._%+\-]++@[A-Za-z0-9\-]++(?:\.[A-Za-z0-9\-]++)+"
_EMAIL = re.compile(_ADDRESS)
_EMAIL_AT_RUN = re.compile(r"(?<![A-Za-z0-9._%+\-])" + _ADDRESS)
_PREFIXED_ID = re.compile(r"(?<![\w\-])([A-Za-z]{1,8})[-_]?([0-9]{1,12})(?![\w])")
_CUED_NUMBER = re.compile(  # possessive spaces: "#" and 100,000 spaces is one pass, not n^3
    r"(?i)(?:\b(?:employee|emp|staff|personnel|id|no|number)\b\.?|#)\s*+"
    r"(?:(?:id|no|number)\b\.?)?\s*+[:#]?\s*+([0-9]{1,12})(?![\w])"
)
_ID_SHAPE = re.compile(r"([A-Za-z]{0,8})[-_]?([0-9]{1,12})")
# Citation groups as drafts write them ("[E3, E12]"): evidence ids, never employee ids.
_CITATIONS = re.compile(r"\[\s*E[1-9][0-9]{0,2}(?:\s*,\s*E[1-9][0-9]{0,2})*\s*\]")
# A line break inside a word ("Hea-\nther"): read once more with it taken out.
_BROKEN_WORD = re.compile(r"(?<=[^\W\d_])-?[ \t]*(?:\r\n|\r|\n)[ \t]*(?=[^\W\d_])")
_SENTENCE_END = ".!?\u2026"
_POSSESSIVE = re.compile(r"['\u2019]s?(?![^\W\d_])")
_LETTER = re.compile(r"[^\W\d_]")
_OPENERS = " \t\"'\u201c\u201d\u2018\u2019([{*#>\u2022-\u2013\u2014"


class _Kind(Enum):
    NAME = "name"  # words of the name, any case
    INITIAL_NAME = "initial_name"  # "H. Moore", "Heather M.": the initial in capitals
    INITIALS = "initials"  # "HM", "H.M.": capitals only, not a common abbreviation


@dataclass(frozen=True)
class Identity:
    """What identifies a person in text: the HRIS name, email and employee id."""

    name: str
    email: str | None = None
    employee_id: str | None = None


@dataclass(frozen=True)
class _Words:
    common: frozenset[str]
    acronyms: frozenset[str]
    honorifics: frozenset[str]
    pronouns: re.Pattern[str]
    fold: Mapping[str, str]


@cache
def _words() -> _Words:
    names = json.loads((_DATA / "name_words.json").read_text(encoding="utf-8"))
    glyphs = json.loads((_DATA / "confusables.json").read_text(encoding="utf-8"))
    subjects = "|".join(sorted(names["pronoun_subjects"], key=len, reverse=True))
    objects = "|".join(sorted(names["pronoun_objects"], key=len, reverse=True))
    pronouns = re.compile(
        rf"(?i)(?<![\w/])(?:{subjects})\s*/\s*(?:{objects})(?:\s*/\s*(?:{objects}))*(?![\w/])"
    )
    return _Words(
        common=frozenset(names["common_words"]),
        acronyms=frozenset(names["acronyms"]),
        honorifics=frozenset(names["honorifics"]),
        pronouns=pronouns,
        fold={**glyphs["confusables"], **glyphs["latin_folding"]},
    )


@dataclass(frozen=True)
class _Skeleton:
    """A normalised copy of a text, and for each of its characters the index of the
    character of the original it came from (plus one past the end)."""

    text: str
    origin: tuple[int, ...]


def _skeleton(text: str, skip: frozenset[int] = frozenset()) -> _Skeleton:
    if not skip and text.isascii():  # nothing to fold: most texts, most names
        return _Skeleton(text, tuple(range(len(text) + 1)))
    fold = _words().fold
    out: list[str] = []
    origin: list[int] = []
    for i, char in enumerate(text):
        if i in skip:
            continue
        if char < "\x80":  # ASCII: nothing to fold or drop
            out.append(char)
            origin.append(i)
            continue
        if _invisible(char):
            continue
        for part in unicodedata.normalize("NFKD", fold.get(char, char)):
            if unicodedata.category(part).startswith("M"):
                continue
            folded = fold.get(part, part)
            out.append(folded)
            origin.extend([i] * len(folded))
    origin.append(len(text))
    return _Skeleton("".join(out), tuple(origin))


def _invisible(char: str) -> bool:
    """Format characters (zero-width space and joiners, soft hyphen, direction marks) and
    combining marks: they change how a name is stored, not how it reads."""
    category = unicodedata.category(char)
    return category == "Cf" or category.startswith("M")


def normalised(text: str) -> str:
    """The text as names are matched: look-alikes folded, accents and invisibles gone."""
    return text if text.isascii() else _skeleton(text).text


@dataclass
class _Span:
    start: int  # in the original text
    end: int
    replacement: str


def _by_kind(owners: list[tuple[_Kind, int]]) -> tuple[tuple[_Kind, frozenset[int]], ...]:
    people: defaultdict[_Kind, set[int]] = defaultdict(set)
    for kind, person in owners:
        people[kind].add(person)
    return tuple((kind, frozenset(who)) for kind, who in people.items())


@dataclass(frozen=True)
class _Word:
    match: re.Match[str]  # in the skeleton
    folded: str
    bounds: tuple[int, int]  # in the original


class Redactor:
    """Replaces the people of `people` in text: with `labels[id]` when they have one,
    else "[colleague]" (see the module's notes for what is recognised)."""

    def __init__(
        self, people: Mapping[int, Identity] | Mapping[int, str], labels: Mapping[int, str]
    ) -> None:
        self._labels = dict(labels)
        # name form -> (kind of form, person) pairs: who it may mean, and as what
        self._forms: defaultdict[tuple[str, ...], list[tuple[_Kind, int]]] = defaultdict(list)
        self._emails: defaultdict[str, set[int]] = defaultdict(set)
        self._ids: defaultdict[tuple[str, int], set[int]] = defaultdict(set)
        self._exact_ids: defaultdict[str, set[int]] = defaultdict(set)
        for person_id, who in people.items():
            identity = who if isinstance(who, Identity) else Identity(who)
            self._add(person_id, identity)
        # name form -> (kind, everyone it may mean as that kind): a context check per kind,
        # not per person, however many people share a first name
        self._kinds: dict[tuple[str, ...], tuple[tuple[_Kind, frozenset[int]], ...]] = {
            form: _by_kind(owners) for form, owners in self._forms.items()
        }
        # first word of a form -> the most words a form starting with it has
        self._longest: dict[str, int] = {}
        for form in self._forms:
            self._longest[form[0]] = max(self._longest.get(form[0], 0), len(form))
        exact = sorted(self._exact_ids, key=len, reverse=True)
        self._exact = (
            re.compile("(?i)(?<![\\w\\-])(" + "|".join(map(re.escape, exact)) + ")(?![\\w\\-])")
            if exact
            else None
        )

    # ------------------------------------------------------------------ building

    def _add(self, person_id: int, identity: Identity) -> None:
        for kind, form in _name_forms(identity.name):
            self._forms[form].append((kind, person_id))
        if identity.email:
            self._emails[normalised(identity.email).casefold()].add(person_id)
        if identity.employee_id:
            self._add_employee_id(person_id, normalised(identity.employee_id))

    def _add_employee_id(self, person_id: int, employee_id: str) -> None:
        shape = _ID_SHAPE.fullmatch(employee_id)
        if shape is not None:
            key = (shape[1].casefold(), int(shape[2]))
            self._ids[key].add(person_id)
        if shape is None or (not shape[1] and len(shape[2]) >= 5):
            # An id of another shape, or a long all-digit one: as written, too.
            self._exact_ids[employee_id.casefold()].add(person_id)

    # ------------------------------------------------------------------ redacting

    def redact(self, text: str, subject_id: int | None = None) -> str:
        """The text with every person in it replaced; `subject_id` is whom it is about."""
        plain = _skeleton(text)
        spans = self._fixed_spans(text, plain, subject_id)
        taken = _Marks(len(text))
        for span in spans:
            taken.mark(span.start, span.end)
        spans += self._name_spans(text, plain, subject_id, taken)
        breaks = list(_BROKEN_WORD.finditer(text))
        if breaks:  # again with words joined up, for the names only a join makes
            broken = frozenset(i for m in breaks for i in range(m.start(), m.end()))
            joined = _skeleton(text, broken)
            spans += self._name_spans(text, joined, subject_id, taken, crossing=sorted(broken))
        return _apply(text, spans)

    def _fixed_spans(self, text: str, plain: _Skeleton, subject_id: int | None) -> list[_Span]:
        """Emails, employee ids and pronoun sets, in that order of precedence."""
        spans: list[_Span] = []
        protected = _Marks(len(plain.text))
        for m in _CITATIONS.finditer(plain.text):
            protected.mark(m.start(), m.end())

        def add(start: int, end: int, replacement: str) -> None:
            if protected.any(start, end):
                return
            protected.mark(start, end)
            spans.append(_Span(*_original(text, plain, start, end), replacement))

        for m in _emails(plain.text):
            owners = self._emails.get(m.group().casefold())
            add(m.start(), m.end(), EMAIL if owners is None else self._label(owners, subject_id))
        for m in _PREFIXED_ID.finditer(plain.text):
            owners = self._ids.get((m[1].casefold(), int(m[2])))
            if owners:
                add(m.start(), m.end(), self._label(owners, subject_id))
        for m in _CUED_NUMBER.finditer(plain.text):
            owners = self._ids.get(("", int(m[1])))
            if owners:
                add(m.start(1), m.end(1), self._label(owners, subject_id))
        if self._exact is not None:
            for m in self._exact.finditer(plain.text):
                add(
                    m.start(),
                    m.end(),
                    self._label(self._exact_ids.get(m[1].casefold(), set()), subject_id),
                )
        for m in _words().pronouns.finditer(plain.text):
            add(m.start(), m.end(), PRONOUNS)
        return spans

    def _name_spans(
        self,
        text: str,
        sk: _Skeleton,
        subject_id: int | None,
        taken: "_Marks",
        crossing: list[int] | None = None,
    ) -> list[_Span]:
        """Names in the skeleton outside the `taken` spans; with `crossing` (sorted), only
        the matches that join words over one of those (removed) positions."""
        words = [
            _Word(w, w.group().casefold(), bounds)
            for w in _WORD.finditer(sk.text)
            if not taken.any(*(bounds := _original(text, sk, w.start(), w.end())))
        ]
        spans: list[_Span] = []
        i = 0
        while i < len(words):
            found = self._match(sk.text, words, i)
            if found is None or (
                crossing is not None
                and not any(_holds(crossing, *w.bounds) for w in words[i : i + found[0]])
            ):
                i += 1
                continue
            length, owners = found
            start, end = words[i].match.start(), words[i + length - 1].match.end()
            spans.append(_Span(*_original(text, sk, start, end), self._label(owners, subject_id)))
            i += length
        return spans

    def _match(self, text: str, words: list[_Word], i: int) -> tuple[int, set[int]] | None:
        """The longest name form starting at word i that the context allows: its length
        in words and the people it may mean."""
        longest = self._longest.get(words[i].folded, 0)
        for length in range(min(longest, len(words) - i), 0, -1):
            span = words[i : i + length]
            kinds = self._kinds.get(tuple(w.folded for w in span))
            if kinds is None:
                continue
            joiners = [text[a.match.end() : b.match.start()] for a, b in pairwise(span)]
            if not all(_JOINER.fullmatch(j) for j in joiners):
                continue
            matches = [w.match for w in span]
            allowed = set[int]().union(
                *(people for kind, people in kinds if _allowed(kind, text, matches, joiners))
            )
            if allowed:
                return length, allowed
        return None

    def _label(self, owners: set[int], subject_id: int | None) -> str:
        if subject_id is not None and subject_id in owners:
            return self._labels.get(subject_id, COLLEAGUE)
        if len(owners) == 1:
            return self._labels.get(next(iter(owners)), COLLEAGUE)
        return COLLEAGUE


# ---------------------------------------------------------------------- name forms


@lru_cache(maxsize=1 << 16)
def _name_forms(name: str) -> frozenset[tuple[_Kind, tuple[str, ...]]]:
    """The ways a text may name someone, as normalised, case-folded words (cached: every
    pseudonymised view reads the whole company's names)."""
    tokens = [
        words
        for token in normalised(name).split()
        if (words := tuple(w.casefold() for w in _WORD.findall(token)))
    ]
    if not tokens:
        return frozenset()
    every = tuple(w for token in tokens for w in token)
    first, last = every[0], every[-1]
    names: set[tuple[str, ...]] = {every, *tokens}
    if len(every) > 2:
        names.update({(first, last), every[1:]})  # no middle name; no first name
    if len(tokens) > 1:
        names.add(tuple(w for token in tokens[1:] for w in token))  # "de Vries", "O'Neil"
    names.update((w,) for w in every if len(w) > 1)
    if len(every) > 1:  # run together, as in a user name or a URL: "heathermoore", "hmoore"
        names.add(("".join(every),))
        if len(last) >= 4:
            names.add((first[0] + last,))
    forms = {(_Kind.NAME, n) for n in names if n and any(len(w) > 1 for w in n)}
    if len(every) > 1:
        forms.add((_Kind.INITIAL_NAME, (first[0], last)))
        forms.add((_Kind.INITIAL_NAME, (first[0], *tokens[-1])))
        forms.add((_Kind.INITIAL_NAME, (first, last[0])))
        for initials in {
            "".join(t[0][0] for t in tokens),
            "".join(w[0] for w in every),
            first[0] + last[0],
        }:
            if 2 <= len(initials) <= 4:
                forms.add((_Kind.INITIALS, (initials,)))
                forms.add((_Kind.INITIALS, tuple(initials)))
    return frozenset(forms)


def _allowed(kind: _Kind, text: str, span: list[re.Match[str]], joiners: list[str]) -> bool:
    """Whether these words, where they stand, name someone as a form of this kind."""
    written = [w.group() for w in span]
    if kind is _Kind.INITIALS:
        letters = "".join(written)
        return (
            letters.isupper()
            and letters.casefold() not in _words().acronyms
            and (len(written) == 1 or all("." in j for j in joiners))
            and (len(written) > 1 or len(letters) > 1)
        )
    if kind is _Kind.INITIAL_NAME:
        return all(w.isupper() for w in written if len(w) == 1)
    if len(written) > 1:
        common = _words().common
        return not all(w.casefold() in common and w.islower() for w in written)
    return _alone(text, span[0])


def _alone(text: str, word: re.Match[str]) -> bool:
    """A one-word name form: an everyday word only as a name in context; a short name
    ("Bo", "Kim", or "bin" of "Su-bin") only capitalised; any other in any case."""
    written = word.group()
    if written.casefold() in _words().common:
        return _titled(written) and (
            not _starts_sentence(text, word.start())
            or _possessive(text, word.end())
            or _after_title(text, word.start())
        )
    if len(written) <= SHORT:
        return written[0].isupper()
    return True


def _titled(word: str) -> bool:
    return word[0].isupper() and (len(word) == 1 or word[1:].islower())


def _starts_sentence(text: str, at: int) -> bool:
    """At the start of the text, of a line, or after a full stop (headings and bullets
    count as line starts)."""
    j = at - 1
    while j >= 0 and text[j] in _OPENERS:
        j -= 1
    return j < 0 or text[j] in "\r\n" or text[j] in _SENTENCE_END


def _possessive(text: str, end: int) -> bool:
    """Matched in place: a copy of the rest of the text per word was quadratic."""
    return _POSSESSIVE.match(text, end) is not None


def _after_title(text: str, at: int) -> bool:
    """Whether the word before `at` (then an optional full stop and some space) is a title.
    Read backwards from `at`, through the space and that one word only: searching all the
    text before each word was quadratic."""
    end = at
    while end > 0 and text[end - 1].isspace():  # what `\s` matches
        end -= 1
    if end == at:
        return False
    if end > 0 and text[end - 1] == ".":
        end -= 1
    start = end
    while start > 0 and _LETTER.match(text, start - 1):
        start -= 1
    return start < end and text[start:end].casefold() in _words().honorifics


# ---------------------------------------------------------------------- spans


def _original(text: str, sk: _Skeleton, start: int, end: int) -> tuple[int, int]:
    """A span of the skeleton as a span of the original, with the invisible characters
    that trail its last letter."""
    first, last = sk.origin[start], sk.origin[end - 1] + 1
    while last < len(text) and _invisible(text[last]):
        last += 1
    return first, last


class _Marks:
    """The characters of a text already claimed by a span: asking whether a span touches
    one costs its own length, not the number of spans taken (a list of them was quadratic
    in a text of many emails, ids or pronoun sets)."""

    def __init__(self, size: int) -> None:
        self._marked = bytearray(size)

    def mark(self, start: int, end: int) -> None:
        self._marked[start:end] = b"\x01" * (end - start)

    def any(self, start: int, end: int) -> bool:
        return self._marked.find(1, start, end) >= 0


def _holds(positions: list[int], start: int, end: int) -> bool:
    """Whether the sorted `positions` hold one in [start, end)."""
    at = bisect_left(positions, start)
    return at < len(positions) and positions[at] < end


def _emails(text: str) -> Iterator[re.Match[str]]:
    """What `_EMAIL.finditer(text)` finds, trying only where a run of address characters
    starts or where the last match ended: tried from inside a run, the pattern fails
    exactly as it did from the run's start, since it needs the run to end in "@"."""
    at = 0
    while True:
        found = _EMAIL.match(text, at) if at else None  # right after the last address
        if found is None:
            found = _EMAIL_AT_RUN.search(text, at)
        if found is None:
            return
        yield found
        at = found.end()


def _apply(text: str, spans: Iterable[_Span]) -> str:
    """The text with the spans replaced; where spans overlap, the one that starts first
    (then the longest) wins."""
    out: list[str] = []
    at = 0
    for span in sorted(spans, key=lambda s: (s.start, s.start - s.end)):
        if span.start < at:
            continue
        out.append(text[at : span.start])
        out.append(span.replacement)
        at = span.end
    out.append(text[at:])
    return "".join(out)
