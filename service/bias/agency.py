"""Agency and communion measured broadly: the agentic and communal wording of a text.

Why broad: research on letters and reviews (Madera, Hebl & Martin 2009; Correll et al. 2020)
describes women more often in communal terms (helpful, warm, caring) and men in agentic
ones, but agency in review text is mostly capability, achievement and leadership ("shipped
the migration two weeks early", "the team's go-to expert"), not the handful of trait
adjectives (assertive, ambitious) a narrow list holds. The lexicon
(`data/agency/lexicon.json`, its header names the sources: Abele & Wojciszke 2007 and 2014,
Pietraszkiewicz et al. 2019 "The big two dictionaries", Madera et al. 2009, Gaucher et al.
2011) has five agentic categories (capability, achievement, leadership, assertiveness,
independence) and six communal ones (warmth, helping, care, cooperation, support, attending
to others).

How a text is read:
- Terms are lemmas matched on inflections: a word's candidate lemmas are the word itself,
  its irregular lemma from the data ("led" -> lead), and the forms left by stripping
  -s/-es/-ies, -ed/-ied, -ing, -ly/-ily/-ically (with a dropped e or a doubled consonant
  restored), so "leads", "leading", "led" and "leadership" all count. No NLP pipeline: a
  lemma table and suffix rules are enough for a word list and keep the bias report fast.
  An entry marked `exact` matches only its written form ("owned", since "own" is "her own").
- Phrases ("take charge", "look after", "speak * mind") match word by word on lemmas; `*`
  is any one word. At each word the longest term wins, so one phrase counts once.
- A term followed or preceded by one of its `except_next`/`except_prev` words does not
  count ("kind of", "warm standby", "support ticket").
- Negation: a hit preceded, within the window (3 words) and in the same clause, by an odd
  number of negation cues counts for neither pole ("not a natural leader", "lacks
  confidence"); an even number cancels out ("never fails to help" is helping). "not only"
  and "not just" are not negations. Words of other hits are never cues ("no-nonsense").
- A capitalised word inside a sentence, or a capitalised known name anywhere, is a name
  (Patience, Sunny), never a descriptor.

The score: `agentic_minus_communal` = (agentic hits - communal hits) per 100 words of the
draft, like the other rates of the language profile; `agentic_rate` and `communal_rate` are
each pole's hits per 100 words. It is measured, never flagged: being helpful is not a fault;
a group whose drafts run communal-heavy is a finding for the group comparison.
"""

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.errors import Misconfigured
from service.bias.wordlists import Tokens, tokenize

LEXICON_FILE = Path(__file__).parent / "data" / "agency" / "lexicon.json"
POLES: tuple["Pole", ...] = ("agentic", "communal")
_CLAUSE_BREAK = re.compile(r"[,;:.!?()\u2013\u2014\"]")
_MEMO_LIMIT = 200_000

Pole = Literal["agentic", "communal"]


class LexiconError(Misconfigured):
    """The lexicon data file is malformed; the message names the key at fault."""


class TermSpec(BaseModel):
    """One entry of a category, when it needs more than its text."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    term: str = Field(min_length=1)
    exact: bool = False  # only the form written, no inflections
    except_next: list[str] = []
    except_prev: list[str] = []


class CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    about: str = Field(min_length=1)
    terms: list[str | TermSpec] = Field(min_length=1)


class NegationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    about: str
    window: int = Field(ge=1, le=6)
    cues: list[str] = Field(min_length=1)
    cancel_next: list[str]  # "not only": the cue does not deny
    boundaries: list[str]  # words that end the clause a cue reaches over


class LexiconFile(BaseModel):
    """The data file as written: sources, scoring note, lemma table, negation, categories."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(alias="_source", min_length=1)
    scoring: str = Field(alias="_scoring", min_length=1)
    irregular: dict[str, str]
    negation: NegationSpec
    agentic: dict[str, CategorySpec] = Field(min_length=1)
    communal: dict[str, CategorySpec] = Field(min_length=1)


@dataclass(frozen=True)
class Term:
    """A lexicon term ready for matching: its words (lemmas, exact forms or `*`)."""

    text: str
    words: tuple[str, ...]
    pole: Pole
    category: str
    exact: bool
    except_next: frozenset[str]
    except_prev: frozenset[str]

    @property
    def simple(self) -> bool:
        """One word and no exceptions: found wherever its word is (the common case)."""
        return len(self.words) == 1 and not self.except_next and not self.except_prev


@dataclass(frozen=True)
class AgencyHit:
    """A term found in a text, with its character span and whether it was negated."""

    term: Term
    start: int
    end: int
    first: int  # token indices of the match
    last: int
    negated: bool


@dataclass(frozen=True)
class Negation:
    window: int
    cues: frozenset[str]
    cancel_next: frozenset[str]
    boundaries: frozenset[str]


def lemma_candidates(word: str, irregular: dict[str, str]) -> frozenset[str]:
    """The lemmas a lower-case word may be an inflection of (over-generating is harmless:
    only candidates that are lexicon terms count). A verb redone ("rebuilt", "relaunched")
    is also read without its re- prefix."""
    found = set(_inflection_lemmas(word, irregular))
    if word.startswith("re") and len(word) >= 6:
        found.update(_inflection_lemmas(word[2:], irregular))
    return frozenset(found)


def _inflection_lemmas(word: str, irregular: dict[str, str]) -> set[str]:
    found = {word}
    if word in irregular:
        found.add(irregular[word])
    if word.endswith(("ies", "ied")) and len(word) > 4:
        found.add(word[:-3] + "y")
    if word.endswith("es") and len(word) > 3:
        found.add(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        found.add(word[:-1])
    if word.endswith("ed") and len(word) > 4:
        found.update(_stem_forms(word[:-2]))
    if word.endswith("ing") and len(word) > 5:
        found.update(_stem_forms(word[:-3]))
    if word.endswith("ly") and len(word) > 4:
        found.add(word[:-2])
        if word.endswith("ily"):
            found.add(word[:-3] + "y")
        if word.endswith("bly"):
            found.add(word[:-1] + "e")  # capably -> capable
        if word.endswith("ically"):
            found.add(word[:-4])  # strategically -> strategic
    return found


def _stem_forms(stem: str) -> tuple[str, ...]:
    """A stem left by -ed or -ing, with a dropped e restored and a doubled consonant undone
    (cared -> care, stopped -> stop)."""
    forms = [stem, stem + "e"]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        forms.append(stem[:-1])
    return tuple(forms)


def _index_keys(term: Term) -> tuple[str, ...]:
    """The lemmas a term's first word is found under: itself, and for a participle
    adjective ("accommodating", "encouraging") also its verb, so that "accommodates" and
    "encouraged" count; verb stems under 4 letters are left out ("caring" is not "car")."""
    first = term.words[0]
    if term.exact or not first.endswith("ing") or len(first) <= 5:
        return (first,)
    verbs = tuple(form for form in _stem_forms(first[:-3]) if len(form) >= 4)
    return (first, *verbs)


def _term_words(text: str) -> tuple[str, ...]:
    words = tuple(w for w in re.split(r"[\s-]+", text.lower().replace("\u2019", "'")) if w)
    if not words or words[0] == "*":
        raise LexiconError(f"lexicon: bad term {text!r}", field=text)
    return words


class Lexicon:
    """The agentic and communal terms, indexed by their first word, with memoized lookups:
    a review's vocabulary is small, so nearly every word after the first few drafts costs
    one dict access."""

    def __init__(
        self, terms: list[Term], irregular: dict[str, str], negation: Negation, source: str
    ) -> None:
        self.terms = tuple(terms)
        self.source = source
        self.negation = negation
        self._irregular = irregular
        self._by_first: dict[str, list[Term]] = {}
        for term in terms:
            for key in _index_keys(term):
                self._by_first.setdefault(key, []).append(term)
        self._starts: dict[str, tuple[Term, ...]] = {}
        self._triggers: set[str] = set()  # the words of _starts that start a term
        self._lemmas: dict[str, frozenset[str]] = {}

    def lemmas(self, key: str) -> frozenset[str]:
        found = self._lemmas.get(key)
        if found is None:
            if len(self._lemmas) > _MEMO_LIMIT:
                self._lemmas.clear()
            found = self._lemmas[key] = lemma_candidates(key, self._irregular)
        return found

    def starting(self, key: str) -> tuple[Term, ...]:
        """The terms whose first word matches this word."""
        found = self._starts.get(key)
        if found is None:
            found = tuple(
                term
                for lemma in sorted(self.lemmas(key))
                for term in self._by_first.get(lemma, ())
                if not term.exact or key == term.words[0]
            )
            if len(self._starts) > _MEMO_LIMIT:
                self._starts.clear()
                self._triggers.clear()
            self._starts[key] = found
            if found:
                self._triggers.add(key)
        return found

    def hits(
        self, text: str, tokens: Tokens, names: frozenset[str] = frozenset()
    ) -> list[AgencyHit]:
        """Every term of the text, left to right, the longest at each word; negated hits
        are returned marked, so a reader can see what was discounted."""
        keys = tokens.keys
        for key in set(keys).difference(self._starts):  # set operations run in C
            self.starting(key)
        triggers = self._triggers
        if triggers.isdisjoint(keys):  # most sentences of a draft: no term at all
            return []
        starts = self._starts
        matches: list[tuple[Term, int, int]] = []
        after = 0  # the first word not inside an earlier match
        for i in [i for i, key in enumerate(keys) if key in triggers]:
            if i < after:
                continue
            best: tuple[Term, int] | None = None
            for term in starts[keys[i]]:
                last = i if term.simple else self._match(text, tokens, i, term)
                if last is not None and (best is None or last > best[1]):
                    best = (term, last)
            if (
                best is not None
                and not _is_name(text, tokens, i, keys[i], names)
                and not _compound_head(text, tokens, i)
            ):
                matches.append((best[0], i, best[1]))
                after = best[1] + 1
        may_negate = not self.negation.cues.isdisjoint(keys)
        covered = {t for _, first, last in matches for t in range(first, last + 1)}
        return [
            AgencyHit(
                term,
                tokens.start(first),
                tokens.end(last),
                first,
                last,
                may_negate and self._negated(text, tokens, first, covered),
            )
            for term, first, last in matches
        ]

    def _match(self, text: str, tokens: Tokens, i: int, term: Term) -> int | None:
        """The last token index of the term matched at token i, or None."""
        keys = tokens.keys
        last = i
        for word in term.words[1:]:
            last += 1
            if last >= len(keys) or _CLAUSE_BREAK.search(
                text, tokens.end(last - 1), tokens.start(last)
            ):
                return None
            if word != "*" and word not in self.lemmas(keys[last]):
                return None
        if term.except_next and last + 1 < len(keys) and keys[last + 1] in term.except_next:
            return None
        if term.except_prev and i > 0 and keys[i - 1] in term.except_prev:
            return None
        return last

    def _negated(self, text: str, tokens: Tokens, first: int, covered: set[int]) -> bool:
        """An odd number of negation cues within the window before the hit, in its clause."""
        rule, keys = self.negation, tokens.keys
        cues = 0
        for j in range(first - 1, max(-1, first - 1 - rule.window), -1):
            if _CLAUSE_BREAK.search(text, tokens.end(j), tokens.start(j + 1)):
                break
            if keys[j] in rule.boundaries:
                break
            if j in covered:
                continue
            if keys[j] in rule.cues and keys[j + 1] not in rule.cancel_next:
                cues += 1
        return cues % 2 == 1


def _compound_head(text: str, tokens: Tokens, i: int) -> bool:
    """The word ends a hyphenated compound ("wound-care", "customer-support", "data-driven"):
    the compound names a thing, not the person's trait or act, unless the whole compound is
    a term (those start at its first word)."""
    return i > 0 and text[tokens.end(i - 1) : tokens.start(i)] == "-"


def _is_name(text: str, tokens: Tokens, i: int, key: str, names: frozenset[str]) -> bool:
    """A capitalised word inside a sentence, or a capitalised known name anywhere."""
    word = text[tokens.start(i) : tokens.end(i)]
    capitalised = word[:1].isupper() and word[1:].islower()
    return capitalised and (i > 0 or key in names)


@dataclass(frozen=True)
class AgencyScore:
    """A text's agentic and communal hits (negated ones left out) over its words."""

    words: int
    agentic: int
    communal: int
    negated: int  # hits that counted for neither pole

    @property
    def agentic_rate(self) -> float:
        return 100.0 * self.agentic / self.words if self.words else 0.0

    @property
    def communal_rate(self) -> float:
        return 100.0 * self.communal / self.words if self.words else 0.0

    @property
    def agentic_minus_communal(self) -> float:
        """The balance, per 100 words: above 0 agentic, below 0 communal."""
        return self.agentic_rate - self.communal_rate


def pole_counts(text: str, tokens: Tokens, names: frozenset[str] = frozenset()) -> dict[str, int]:
    """Hits per pole of one sentence, negated ones left out: what the language profile adds
    to its counts (keys `agentic` and `communal`, each always present)."""
    counts: dict[str, int] = dict.fromkeys(POLES, 0)
    for hit in lexicon().hits(text, tokens, names):
        if not hit.negated:
            counts[hit.term.pole] += 1
    return counts


def score_text(text: str, names: frozenset[str] = frozenset()) -> AgencyScore:
    """The agency score of a text read as one span (tests and readers; the bias check
    scores sentence by sentence through `pole_counts`)."""
    tokens = tokenize(text)
    hits = lexicon().hits(text, tokens, names)
    kept = [h for h in hits if not h.negated]
    return AgencyScore(
        len(tokens),
        sum(1 for h in kept if h.term.pole == "agentic"),
        sum(1 for h in kept if h.term.pole == "communal"),
        len(hits) - len(kept),
    )


def _terms(pole: Pole, categories: dict[str, CategorySpec]) -> list[Term]:
    terms = []
    for category, spec in categories.items():
        for raw in spec.terms:
            entry = TermSpec(term=raw) if isinstance(raw, str) else raw
            terms.append(
                Term(
                    entry.term,
                    _term_words(entry.term),
                    pole,
                    category,
                    entry.exact,
                    frozenset(w.lower() for w in entry.except_next),
                    frozenset(w.lower() for w in entry.except_prev),
                )
            )
    return terms


def load_lexicon(path: Path = LEXICON_FILE) -> Lexicon:
    """Read and check the data file: every key known, every category with terms, no term
    twice (a term in two categories or poles would count twice or cancel itself)."""
    try:
        data = LexiconFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LexiconError(f"{path.name}: cannot read the lexicon ({error})") from None
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise LexiconError(f"{path.name}: {field}: {first['msg']}", field=field) from None
    terms = _terms("agentic", data.agentic) + _terms("communal", data.communal)
    seen: dict[tuple[str, ...], Term] = {}
    for term in terms:
        if term.words in seen:
            raise LexiconError(
                f"{path.name}: {term.text!r} is in {seen[term.words].category} and {term.category}",
                field=term.text,
            )
        seen[term.words] = term
    rule = data.negation
    negation = Negation(
        rule.window,
        frozenset(c.lower() for c in rule.cues),
        frozenset(c.lower() for c in rule.cancel_next),
        frozenset(c.lower() for c in rule.boundaries),
    )
    irregular = {form.lower(): lemma.lower() for form, lemma in data.irregular.items()}
    return Lexicon(terms, irregular, negation, data.source)


@cache
def lexicon() -> Lexicon:
    """The package's lexicon, loaded once per process."""
    return load_lexicon()
