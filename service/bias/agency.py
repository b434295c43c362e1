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
  its irregular lemma from the data ("led" -> lead, "herself" -> oneself), and the forms
  left by stripping -s/-es/-ies, -ed/-ied, -ing, -est/-iest, -ly/-ily/-ically (with a
  dropped e or a doubled consonant restored), so "leads", "leading", "led" and "leadership"
  all count, "strongest" is "strong" and "taught herself" is "teach oneself". No NLP
  pipeline: a lemma table and suffix rules are enough for a word list and keep the bias
  report fast. An entry marked `exact` matches only its written form ("owned", since "own"
  is "her own").
- Phrases ("take charge", "look after", "speak * mind") match word by word on lemmas; `*`
  is any one word. At each word the longest term wins, so one phrase counts once.
- A term followed or preceded by one of its `except_next`/`except_prev` words does not
  count ("kind of", "warm standby", "support ticket").
- Negation: a hit preceded, within the window (3 words) and in the same clause, by an odd
  number of negation cues counts for neither pole ("not a natural leader", "lacks
  confidence", "little initiative"); an even number cancels out ("never fails to help" is
  helping). "not only" and "a little" are not negations. Words of other hits are never
  cues ("no-nonsense").
- The low ends of the two dimensions (the `denied` lists: "hesitate", "supervision",
  "grudge", "complain") count for the high end only when negated ("does not hesitate",
  "needs little supervision", "never holds a grudge"); affirmed, for neither.
- Scope: in a phrase holding both poles, one side may not be the person's. An agentic term
  just after a communal act done for others is the others' agency ("cheers on her
  colleagues' successes", "helps the juniors succeed") and counts for neither; an agentic
  verb of making with a communal object ("builds good working relationships", "creates a
  friendly atmosphere") counts for neither, its object does.
- A capitalised word inside a sentence, or a capitalised known name anywhere, is a name
  (Patience, Sunny), never a descriptor.

The score: `agentic_minus_communal` = (agentic hits - communal hits) per 100 words of the
draft, like the other rates of the language profile; `agentic_rate` and `communal_rate` are
each pole's hits per 100 words. It is measured, never flagged: being helpful is not a fault;
a group whose drafts run communal-heavy is a finding for the group comparison.
"""

import json
import re
from dataclasses import dataclass, replace
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
    cancel_prev: list[str] = []  # "a little": the cue does not deny
    boundaries: list[str]  # words that end the clause a cue reaches over


class DeniedSpec(BaseModel):
    """The low poles of the two dimensions, counted for the high pole only when denied."""

    model_config = ConfigDict(extra="forbid")

    about: str = Field(min_length=1)
    agentic: CategorySpec  # low agency denied: "never hesitates", "needs little supervision"
    communal: CategorySpec  # low communion denied: "never holds a grudge"


class ScopeSpec(BaseModel):
    """Pairs of terms of both poles in one phrase where only one side is the person's."""

    model_config = ConfigDict(extra="forbid")

    about: str = Field(min_length=1)
    window: int = Field(ge=1, le=6)
    acts_for_others: list[str]  # communal acts whose agentic object is someone else's
    made_by_object: list[str]  # agentic verbs that yield to a communal object


class LexiconFile(BaseModel):
    """The data file as written: sources, scoring note, lemma table, negation, categories."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(alias="_source", min_length=1)
    scoring: str = Field(alias="_scoring", min_length=1)
    irregular: dict[str, str]
    negation: NegationSpec
    scope: ScopeSpec
    agentic: dict[str, CategorySpec] = Field(min_length=1)
    communal: dict[str, CategorySpec] = Field(min_length=1)
    denied: DeniedSpec


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
    denied: bool = False  # a low-pole term: counts for `pole` only when negated
    for_others: bool = False  # a communal act: an agentic term just after it is the others'
    object_decides: bool = False  # an agentic verb that yields to a communal object

    @property
    def simple(self) -> bool:
        """One word and no exceptions: found wherever its word is (the common case)."""
        return len(self.words) == 1 and not self.except_next and not self.except_prev


@dataclass(frozen=True)
class AgencyHit:
    """A term found in a text, with its character span, whether it was negated and whether
    it yielded to the other pole's term of its phrase (see `ScopeSpec`)."""

    term: Term
    start: int
    end: int
    first: int  # token indices of the match
    last: int
    negated: bool
    yielded: bool = False

    @property
    def counted(self) -> bool:
        """Counts for its term's pole: affirmed (or, for a low-pole term, denied) and not
        yielded to the other pole's term of its phrase."""
        return self.negated == self.term.denied and not self.yielded


@dataclass(frozen=True)
class Negation:
    window: int
    cues: frozenset[str]
    cancel_next: frozenset[str]
    cancel_prev: frozenset[str]
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
    if word.endswith("est") and len(word) > 5:  # superlatives: strongest, bravest, kindest
        found.update(_stem_forms(word[:-3]))
        if word.endswith("iest"):
            found.add(word[:-4] + "y")  # friendliest -> friendly
    if word.endswith("ly") and len(word) > 4:
        found.add(word[:-2])
        if word.endswith("ily"):
            found.add(word[:-3] + "y")
        if word.endswith("bly"):
            found.add(word[:-1] + "e")  # capably -> capable
        if word.endswith("ically"):
            found.add(word[:-4])  # strategically -> strategic
    return found


def surface_forms(lemma: str, irregular: dict[str, str]) -> frozenset[str]:
    """Every word whose `lemma_candidates` may hold the lemma: the suffix rules run
    backwards without their length limits, the irregular forms, and each of those with a
    re- prefix. A superset (over-generating is harmless: a word found is then read with
    `lemma_candidates`), so that the words that may start a term are known before any
    text is read (`_Openers`)."""
    forms = {lemma, lemma + "s", lemma + "es", lemma + "ly", lemma + "ally"}
    forms.update(form for form, base in irregular.items() if base == lemma)
    for suffix in ("ed", "ing", "est"):
        forms.update((lemma + suffix, lemma + lemma[-1] + suffix))  # stopped
        if lemma.endswith("e"):
            forms.add(lemma[:-1] + suffix)  # cared
    if lemma.endswith("y"):
        forms.update(lemma[:-1] + suffix for suffix in ("ies", "ied", "iest", "ily"))
    if lemma.endswith("e"):
        forms.add(lemma[:-1] + "y")  # capable -> capably
    return frozenset(forms | {"re" + form for form in forms})


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


@dataclass(frozen=True)
class _Plan:
    """How the terms that may start at one word are tried, worked out once per word: the
    first plain one-word term (found wherever its word is), the one-word terms with
    exceptions to check, and the phrases by their second word (those that may follow a
    word pair are remembered, `Lexicon._pairs`). Each term carries its rank in
    `Lexicon.starting`'s order: of the longest matches, the first ranked wins, as when
    every term was tried in that order."""

    plain: Term | None
    plain_rank: int
    checked: tuple[tuple[int, Term], ...]
    by_second: dict[str, tuple[tuple[int, Term], ...]]
    any_second: tuple[tuple[int, Term], ...]  # phrases whose second word is `*`
    phrases: bool  # by_second or any_second


_NO_RANK = 1 << 30


def _make_plan(starting: tuple[Term, ...]) -> _Plan:
    plain: Term | None = None
    plain_rank = _NO_RANK
    checked: list[tuple[int, Term]] = []
    by_second: dict[str, list[tuple[int, Term]]] = {}
    any_second: list[tuple[int, Term]] = []
    for rank, term in enumerate(starting):
        if len(term.words) > 1:
            second = term.words[1]
            if second == "*":
                any_second.append((rank, term))
            else:
                by_second.setdefault(second, []).append((rank, term))
        elif not term.simple:
            checked.append((rank, term))
        elif plain is None:
            plain, plain_rank = term, rank
    return _Plan(
        plain,
        plain_rank,
        tuple(checked),
        {word: tuple(terms) for word, terms in by_second.items()},
        tuple(any_second),
        bool(by_second or any_second),
    )


# a match: the term, its first and last token, whether negated, whether it yielded
_Found = tuple[Term, int, int, bool, bool]


class _Openers:
    """The words (as written, in any inflection) that may open a term, known from the
    lexicon alone, so that a sentence's words are sorted out in one pass: a word that may
    open a one-word term is tried; a word that only opens phrases ("on" of "on * own",
    "in" of "in charge") is tried only when the word after it (or the one after that,
    around a `*`) may be the phrase's next word. Found by `surface_forms`, a superset:
    trying a word that matches nothing costs time, never a result."""

    def __init__(self, terms: list[Term], irregular: dict[str, str]) -> None:
        forms: dict[str, frozenset[str]] = {}

        def of(lemma: str) -> frozenset[str]:
            if lemma not in forms:
                forms[lemma] = surface_forms(lemma, irregular)
            return forms[lemma]

        single: set[str] = set()
        second: dict[str, set[str]] = {}
        third: dict[str, set[str]] = {}  # around a `*`: "on * own"
        for term in terms:
            words = term.words
            firsts = {words[0]} if term.exact else {f for key in _index_keys(term) for f in of(key)}
            if len(words) == 1 or (words[1] == "*" and (len(words) < 3 or words[2] == "*")):
                single |= firsts
            else:
                offset, ahead = (1, second) if words[1] != "*" else (2, third)
                for first in firsts:
                    ahead.setdefault(first, set()).update(of(words[offset]))
        # each opener: whether it may open a one-word term, and the words that may come
        # next in its phrases, and after a `*` (None for none)
        plain = (True, None, None)  # most openers: shared, one object for the cache
        self.role: dict[str, tuple[bool, frozenset[str] | None, frozenset[str] | None]] = {
            first: plain
            if first not in second and first not in third
            else (
                first in single,
                frozenset(second[first]) if first in second else None,
                frozenset(third[first]) if first in third else None,
            )
            for first in single | second.keys() | third.keys()
        }


class Lexicon:
    """The agentic and communal terms, indexed by their first word, with memoized lookups:
    a review's vocabulary is small, so nearly every word after the first few drafts costs
    one dict access."""

    def __init__(
        self,
        terms: list[Term],
        irregular: dict[str, str],
        negation: Negation,
        source: str,
        scope_window: int = 1,
    ) -> None:
        self.terms = tuple(terms)
        self.source = source
        self.negation = negation
        self.scope_window = scope_window
        self._irregular = irregular
        self._by_first: dict[str, list[Term]] = {}
        for term in terms:
            for key in _index_keys(term):
                self._by_first.setdefault(key, []).append(term)
        self._openers = _Openers(terms, irregular)
        self._plans: dict[str, _Plan] = {}
        self._pairs: dict[tuple[str, str], tuple[tuple[int, Term], ...]] = {}
        self._lemmas: dict[str, frozenset[str]] = {}

    def lemmas(self, key: str) -> frozenset[str]:
        found = self._lemmas.get(key)
        if found is None:
            if len(self._lemmas) > _MEMO_LIMIT:
                self._lemmas.clear()
            found = self._lemmas[key] = lemma_candidates(key, self._irregular)
        return found

    def starting(self, key: str) -> tuple[Term, ...]:
        """The terms whose first word matches this word, in the order ties are settled."""
        return tuple(
            term
            for lemma in sorted(self.lemmas(key))
            for term in self._by_first.get(lemma, ())
            if not term.exact or key == term.words[0]
        )

    def _plan(self, key: str) -> _Plan:
        found = self._plans.get(key)
        if found is None:
            if len(self._plans) > _MEMO_LIMIT:
                self._plans.clear()
            found = self._plans[key] = _make_plan(self.starting(key))
        return found

    def pole_counts(self, text: str, tokens: Tokens, names: frozenset[str]) -> tuple[int, int]:
        """(agentic, communal) hits counted in a sentence, as `hits` would count them
        (`AgencyHit.counted`) without building them: the report counts every sentence."""
        matches = self._matches(text, tokens, names)
        if not matches:  # most sentences of a draft
            return 0, 0
        if len(matches) == 1 and self.negation.cues.isdisjoint(tokens.keys):
            term = matches[0][0]  # not negated, nothing to yield to
            if term.denied:
                return 0, 0
            return (1, 0) if term.pole == "agentic" else (0, 1)
        agentic = communal = 0
        for term, _, _, negated, yielded in self._flagged(text, tokens, matches):
            if negated == term.denied and not yielded:  # AgencyHit.counted
                if term.pole == "agentic":
                    agentic += 1
                else:
                    communal += 1
        return agentic, communal

    def hits(
        self, text: str, tokens: Tokens, names: frozenset[str] = frozenset()
    ) -> list[AgencyHit]:
        """Every term of the text, left to right, the longest at each word; negated hits
        are returned marked, so a reader can see what was discounted."""
        matches = self._matches(text, tokens, names)
        return [
            AgencyHit(term, tokens.start(first), tokens.end(last), first, last, negated, yielded)
            for term, first, last, negated, yielded in self._flagged(text, tokens, matches)
        ]

    def _matches(
        self, text: str, tokens: Tokens, names: frozenset[str]
    ) -> list[tuple[Term, int, int]]:
        """Every term of the text, left to right, the longest at each word: (term, first
        token, last token). The language profile reads every sentence of every draft of a
        cycle, so this is the hot path: one pass over the words picks the few that may
        open a term (`_Openers`), and only there is a term tried."""
        keys = tokens.keys
        role = self._openers.role
        plans, pairs, size = self._plans, self._pairs, len(keys)
        hyphen = "-" in text
        matches: list[tuple[Term, int, int]] = []
        after = 0  # the first word not inside an earlier match
        for i in [i for i, key in enumerate(keys) if key in role]:
            if i < after:
                continue
            key = keys[i]
            single, second, third = role[key]
            if not (
                single  # else it only opens phrases: may their next word be there?
                or (second is not None and i + 1 < size and keys[i + 1] in second)
                or (third is not None and i + 2 < size and keys[i + 2] in third)
            ):
                continue
            plan = plans.get(key) or self._plan(key)
            phrases: tuple[tuple[int, Term], ...] = ()
            if plan.phrases and i + 1 < size:
                pair = (key, keys[i + 1])
                known = pairs.get(pair)
                if known is None:
                    known = pairs[pair] = self._phrases(plan, keys[i + 1])
                phrases = known
            if plan.checked or phrases:
                best = self._best(text, tokens, i, plan, phrases)
            elif plan.plain is not None:
                best = (plan.plain, i)
            else:
                continue
            if best is None:
                continue
            # a name is capitalised (the key is the word lower-cased, a lexicon word in ASCII)
            may_be_name = (i > 0 or key in names) and key.capitalize() in text
            if (may_be_name or hyphen) and _name_or_compound(text, tokens, i, names):
                continue
            matches.append((best[0], i, best[1]))
            after = best[1] + 1
        return matches

    def _flagged(
        self, text: str, tokens: Tokens, matches: list[tuple[Term, int, int]]
    ) -> list[_Found]:
        """The matches with whether each was negated and whether it yielded."""
        if not matches:
            return []
        may_negate = not self.negation.cues.isdisjoint(tokens.keys)
        covered = (
            {t for _, first, last in matches for t in range(first, last + 1)}
            if may_negate
            else set()
        )
        yielded = self._yielded(text, tokens, matches) if len(matches) > 1 else set()
        return [
            (
                term,
                first,
                last,
                may_negate and self._negated(text, tokens, first, covered),
                n in yielded,
            )
            for n, (term, first, last) in enumerate(matches)
        ]

    def _phrases(self, plan: _Plan, following: str) -> tuple[tuple[int, Term], ...]:
        """The phrases of a plan whose second word may be the word following."""
        found = list(plan.any_second)
        for lemma in self.lemmas(following):
            found.extend(plan.by_second.get(lemma, ()))
        if len(self._pairs) > _MEMO_LIMIT:
            self._pairs.clear()
        return tuple(found)

    def _best(
        self,
        text: str,
        tokens: Tokens,
        i: int,
        plan: _Plan,
        phrases: tuple[tuple[int, Term], ...],
    ) -> tuple[Term, int] | None:
        """The longest term matched at token i, the first ranked of equally long ones."""
        best, best_last, best_rank = plan.plain, i, plan.plain_rank
        keys = tokens.keys
        for rank, term in plan.checked:  # one word with exceptions
            if rank < best_rank and not (
                (i + 1 < len(keys) and keys[i + 1] in term.except_next)
                or (i > 0 and keys[i - 1] in term.except_prev)
            ):
                best, best_rank = term, rank
        for rank, term in phrases:
            last = self._match(text, tokens, i, term)
            if last is not None and (last > best_last or (last == best_last and rank < best_rank)):
                best, best_last, best_rank = term, last, rank
        return (best, best_last) if best is not None else None

    def _match(self, text: str, tokens: Tokens, i: int, term: Term) -> int | None:
        """The last token index of the term matched at token i, or None. The words are
        compared first, the text between them (no clause break) only for a match."""
        keys = tokens.keys
        last = i + len(term.words) - 1
        if last >= len(keys):
            return None
        for j, word in enumerate(term.words[1:], start=i + 1):
            if word != "*" and word not in self.lemmas(keys[j]):
                return None
        for j in range(i + 1, last + 1):
            if _CLAUSE_BREAK.search(text, tokens.end(j - 1), tokens.start(j)):
                return None
        if term.except_next and last + 1 < len(keys) and keys[last + 1] in term.except_next:
            return None
        if term.except_prev and i > 0 and keys[i - 1] in term.except_prev:
            return None
        return last

    def _yielded(self, text: str, tokens: Tokens, matches: list[tuple[Term, int, int]]) -> set[int]:
        """The matches that count for neither pole because their phrase is the other
        pole's: an agentic term in the scope of a communal act ("cheers on her colleagues'
        successes": the successes are theirs) and an agentic verb with a communal object
        ("builds good working relationships"). The scope is the window of words after the
        act or verb, in its clause."""
        found: set[int] = set()
        for a, (act, _, act_last) in enumerate(matches):
            if not (act.for_others or act.object_decides):
                continue
            for b in range(a + 1, len(matches)):
                other, other_first, _ = matches[b]
                if other_first - act_last > self.scope_window or self._clause_ends(
                    text, tokens, act_last, other_first
                ):
                    break
                if other.pole == act.pole:
                    continue
                if act.for_others:
                    found.add(b)
                else:
                    found.add(a)
                    break
        return found

    def _clause_ends(self, text: str, tokens: Tokens, after: int, before: int) -> bool:
        """A clause break or boundary word between token `after` and token `before`."""
        if _CLAUSE_BREAK.search(text, tokens.end(after), tokens.start(before)):
            return True
        return any(tokens.keys[j] in self.negation.boundaries for j in range(after + 1, before))

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
            if (
                keys[j] in rule.cues
                and keys[j + 1] not in rule.cancel_next
                and (j == 0 or keys[j - 1] not in rule.cancel_prev)
            ):
                cues += 1
        return cues % 2 == 1


def _name_or_compound(text: str, tokens: Tokens, i: int, names: frozenset[str]) -> bool:
    """The word at i is a name (a capitalised word inside a sentence, or a capitalised
    known name anywhere: Patience, Sunny) or ends a hyphenated compound ("wound-care",
    "customer-support", "data-driven": the compound names a thing, not the person's trait
    or act, unless the whole compound is a term, and those start at its first word)."""
    start = tokens.start(i)
    if start and text[start - 1] == "-" and tokens.end(i - 1) == start - 1:
        return True
    if not text[start].isupper():
        return False
    word = text[start : tokens.end(i)]
    return word[1:].islower() and (i > 0 or tokens.keys[i] in names)


@dataclass(frozen=True)
class AgencyScore:
    """A text's agentic and communal hits (those counted, see `AgencyHit.counted`) over its
    words."""

    words: int
    agentic: int
    communal: int
    negated: int  # hits that counted for neither pole (negated, affirmed low end, scope)

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
    """Hits per pole of one sentence (`tokens` are its words), those counted only: what
    the language profile adds to its counts (keys `agentic` and `communal`, each always
    present)."""
    agentic, communal = lexicon().pole_counts(text, tokens, names)
    return {"agentic": agentic, "communal": communal}


def score_text(text: str, names: frozenset[str] = frozenset()) -> AgencyScore:
    """The agency score of a text read as one span (tests and readers; the bias check
    scores sentence by sentence through `pole_counts`)."""
    tokens = tokenize(text)
    hits = lexicon().hits(text, tokens, names)
    kept = [h for h in hits if h.counted]
    return AgencyScore(
        len(tokens),
        sum(1 for h in kept if h.term.pole == "agentic"),
        sum(1 for h in kept if h.term.pole == "communal"),
        len(hits) - len(kept),
    )


def _terms(pole: Pole, categories: dict[str, CategorySpec], *, denied: bool = False) -> list[Term]:
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
                    denied,
                )
            )
    return terms


def _scoped(path: Path, scope: ScopeSpec, terms: list[Term]) -> list[Term]:
    """The terms with the scope's roles marked; a role naming no term of its pole (a typo,
    a term since removed) is refused, since it would silently do nothing."""
    roles = {
        "acts_for_others": ("communal", set(scope.acts_for_others)),
        "made_by_object": ("agentic", set(scope.made_by_object)),
    }
    for role, (pole, texts) in roles.items():
        known = {t.text for t in terms if t.pole == pole and not t.denied}
        for text in sorted(texts - known):
            raise LexiconError(
                f"{path.name}: scope.{role}: {text!r} is no {pole} term", field=f"scope.{role}"
            )
    return [
        replace(
            term,
            for_others=not term.denied and term.text in roles["acts_for_others"][1],
            object_decides=not term.denied and term.text in roles["made_by_object"][1],
        )
        for term in terms
    ]


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
    terms = _scoped(
        path,
        data.scope,
        _terms("agentic", data.agentic)
        + _terms("communal", data.communal)
        + _terms("agentic", {"low agency denied": data.denied.agentic}, denied=True)
        + _terms("communal", {"low communion denied": data.denied.communal}, denied=True),
    )
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
        frozenset(c.lower() for c in rule.cancel_prev),
        frozenset(c.lower() for c in rule.boundaries),
    )
    irregular = {form.lower(): lemma.lower() for form, lemma in data.irregular.items()}
    return Lexicon(terms, irregular, negation, data.source, data.scope.window)


@cache
def lexicon() -> Lexicon:
    """The package's lexicon, loaded once per process."""
    return load_lexicon()
