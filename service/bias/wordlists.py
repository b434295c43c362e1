"""Word lists of the language measures, loaded from `data/*.json`, and one matcher for all.

The lists are data, each file naming the research it follows, so that a reader can check a
list against its source and change it without touching code. A term is a word or phrase,
matched case-insensitively on whole words: `aggress*` is a prefix (as in Gaucher et al.'s
lists), a lone `*` stands for any one word ("set in * ways"), and a hyphen also matches a
space or nothing ("hard-working", "hard working", "hardworking"). An entry with a
suggestion is flagged wherever it is found; a bare word is only counted. A capitalised word
inside a sentence is a name, not the word it spells ("Harsh", "Grace"), unless the term is
written with a capital itself ("Gen Z"). A match glued by a hyphen to the word after it is
the first half of a compound ("a bit-flip bug", "this time-zone rota"), not the term. An
entry may say `why` it was added or narrowed.

Matching is token lookup, not regular-expression alternation: an alternation of a hundred
terms costs tens of milliseconds a draft in Python's `re`, while one tokenizing pass with a
memoized lookup per token profiles a draft in well under a millisecond. A term may list
words that cancel it when they come just before or after it (`except_prev`,
`except_next`): "aggressive" about a person, not "aggressive timeline".
"""

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
# which lists raise flags, and under which measure name
FLAG_MEASURES = {
    "personality_criticism": "personality_criticism",
    "doubt_raiser": "doubt_raiser",
    "hedging": "hedging",
    "vague_praise": "vague_praise",
    "masculine_coded": "gender_coded",
    "feminine_coded": "gender_coded",
    "age_coded": "age_coded",
}
# words of lower-cased text: a decimal is one word ("4.1"), a possessive 's is left out
_TOKEN = re.compile(r"(?<![^\W_]')(?:\d+(?:[.,]\d+)+|[^\W_]+(?:'(?!s\b)[^\W_]+)*)")
_CURLY_APOSTROPHE = "\u2019"
_GAP = re.compile(r"[\s-]*")  # what may separate the words of a phrase
_MEMO_LIMIT = 200_000


@dataclass(frozen=True)
class Entry:
    """One term of a list; `suggestion` is empty for terms that are counted, never flagged."""

    term: str
    suggestion: str
    except_next: frozenset[str]  # a match followed by one of these words does not count
    except_prev: frozenset[str]  # nor one preceded by one of these ("as well")
    cased: bool = False  # written with a capital ("Gen Z"): matched capitalised too


class Tokens:
    """The words of a text: their normalised keys, and their spans read from the regex
    matches only when needed (cheaper than an object or three lists per word)."""

    __slots__ = ("_matches", "keys")

    def __init__(self, matches: list[re.Match[str]]) -> None:
        self._matches = matches
        self.keys = [m.group() for m in matches]  # lower-case, straight apostrophes

    def __len__(self) -> int:
        return len(self.keys)

    def start(self, i: int) -> int:
        return self._matches[i].start()

    def end(self, i: int) -> int:
        return self._matches[i].end()


@dataclass(frozen=True)
class Hit:
    """A term found in a text: its list, its entry and its character span."""

    lexicon: str
    entry: Entry
    start: int
    end: int
    token: int  # index of the first token


@dataclass(frozen=True)
class _Pattern:
    lexicon: str
    entry: Entry
    parts: tuple[str, ...]  # "word", "stem*" or "*"


def _lowered(text: str) -> str:
    """Lower case with straight apostrophes, keeping every character's position."""
    lowered = text.lower().replace(_CURLY_APOSTROPHE, "'")
    if len(lowered) != len(text):  # a few characters lower to two ("İ")
        lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in text)
        lowered = lowered.replace(_CURLY_APOSTROPHE, "'")
    return lowered


def tokenize(text: str) -> Tokens:
    """Words of the text with their spans; keys are normalised for lookup."""
    return Tokens(list(_TOKEN.finditer(_lowered(text))))


def _variants(term: str) -> list[tuple[str, ...]]:
    """The token sequences a term matches: hyphenated words split, and also joined."""
    words = term.lower().replace(_CURLY_APOSTROPHE, "'").split()
    variants: list[list[str]] = [[]]
    for word in words:
        pieces = [p for p in word.split("-") if p]
        if len(pieces) > 1 and "*" not in "".join(pieces[:-1]):
            joined = "".join(pieces)
            variants = [v + pieces for v in variants] + [[*v, joined] for v in variants]
        else:
            variants = [v + pieces for v in variants]
    return [tuple(v) for v in variants]


def _check_term(lexicon: str, term: str) -> None:
    parts = term.replace("-", " ").split()
    if not parts or parts[0] == "*" or any("*" in p[:-1] for p in parts):
        raise ValueError(f"{lexicon}: bad term {term!r} ('*' only at a word's end or alone)")


@dataclass(frozen=True)
class _Candidates:
    """The patterns that may start at a word: single words, phrases indexed by their
    second word, and phrases whose second word is a stem or a wildcard."""

    words: tuple[_Pattern, ...]
    by_second: dict[str, tuple[_Pattern, ...]]
    other_phrases: tuple[_Pattern, ...]


_NO_CANDIDATES = _Candidates((), {}, ())


class Matcher:
    """Finds the terms of many lists in one pass over a text's tokens."""

    def __init__(self, patterns: list[_Pattern]) -> None:
        self._exact: dict[str, list[_Pattern]] = {}
        self._prefix: dict[str, list[_Pattern]] = {}
        for pattern in patterns:
            first = pattern.parts[0]
            if first.endswith("*"):
                self._prefix.setdefault(first[:-1], []).append(pattern)
            else:
                self._exact.setdefault(first, []).append(pattern)
        self._lengths = sorted({len(stem) for stem in self._prefix})
        self._memo: dict[str, _Candidates] = {}

    def _candidates(self, key: str) -> _Candidates:
        """The patterns whose first part matches the word, memoized: a review's vocabulary
        is small, so nearly every lookup after the first few drafts is one dict access."""
        found = list(self._exact.get(key, ()))
        for length in self._lengths:
            if length > len(key):
                break
            found.extend(self._prefix.get(key[:length], ()))
        candidates = _NO_CANDIDATES
        if found:
            by_second: dict[str, list[_Pattern]] = {}
            for p in found:
                if len(p.parts) > 1 and not p.parts[1].endswith("*"):
                    by_second.setdefault(p.parts[1], []).append(p)
            candidates = _Candidates(
                tuple(p for p in found if len(p.parts) == 1),
                {second: tuple(ps) for second, ps in by_second.items()},
                tuple(p for p in found if len(p.parts) > 1 and p.parts[1].endswith("*")),
            )
        if len(self._memo) > _MEMO_LIMIT:
            self._memo.clear()
        self._memo[key] = candidates
        return candidates

    def hits(self, text: str, tokens: Tokens, names: frozenset[str] = frozenset()) -> list[Hit]:
        """Every match of every list; overlaps within one list keep the longest match.
        `names` (lower case) are people's names: capitalised, they are never a match."""
        found = []
        keys, memo, count = tokens.keys, self._memo, len(tokens)
        for i, key in enumerate(keys):
            candidates = memo.get(key) or self._candidates(key)
            if candidates is _NO_CANDIDATES:
                continue
            name = _proper_name(text, tokens, i, key, names)
            for pattern in candidates.words:
                if (not name or pattern.entry.cased) and _allowed(
                    text, tokens, i, i, pattern.entry
                ):
                    found.append(
                        Hit(pattern.lexicon, pattern.entry, tokens.start(i), tokens.end(i), i)
                    )
            if i + 1 == count:
                continue
            phrases = candidates.by_second.get(keys[i + 1], ()) + candidates.other_phrases
            for pattern in phrases:
                if name and not pattern.entry.cased:
                    continue
                last = _match_rest(text, tokens, i, pattern)
                if last is not None and _allowed(text, tokens, i, last, pattern.entry):
                    found.append(
                        Hit(pattern.lexicon, pattern.entry, tokens.start(i), tokens.end(last), i)
                    )
        return _longest_per_lexicon(found) if len(found) > 1 else found


def _proper_name(text: str, tokens: Tokens, i: int, key: str, names: frozenset[str]) -> bool:
    """A capitalised word inside a sentence, or a capitalised known name anywhere, is a
    name ("Harsh", "Grace", "Rich"), not the descriptor it spells: English does not
    capitalise adjectives mid-sentence."""
    word = text[tokens.start(i) : tokens.end(i)]
    capitalised = word[:1].isupper() and word[1:].islower()
    return capitalised and (i > 0 or key in names)


def _part_matches(part: str, key: str) -> bool:
    if part == key or part == "*":
        return True
    return part[-1] == "*" and key.startswith(part[:-1])


def _match_rest(text: str, tokens: Tokens, i: int, pattern: _Pattern) -> int | None:
    """Index of a phrase's last token when its words follow token i, else None."""
    keys, last = tokens.keys, i
    for part in pattern.parts[1:]:
        last += 1
        if last >= len(keys) or not _part_matches(part, keys[last]):
            return None
        if _GAP.fullmatch(text, tokens.end(last - 1), tokens.start(last)) is None:
            return None
    return last


def _allowed(text: str, tokens: Tokens, first: int, last: int, entry: Entry) -> bool:
    """False when a neighbouring word cancels the match ("aggressive timeline"), or when a
    hyphen glues the match to the next word ("bit-flip"): a compound, not the term."""
    end = tokens.end(last)
    if text[end : end + 1] == "-" and text[end + 1 : end + 2].isalnum():
        return False
    keys = tokens.keys
    if entry.except_next and last + 1 < len(keys) and keys[last + 1] in entry.except_next:
        return False
    return not (entry.except_prev and first > 0 and keys[first - 1] in entry.except_prev)


def _longest_per_lexicon(hits: list[Hit]) -> list[Hit]:
    hits.sort(key=lambda h: (h.lexicon, h.start, h.start - h.end))
    kept: list[Hit] = []
    end_of: dict[str, int] = {}
    for hit in hits:
        if hit.start >= end_of.get(hit.lexicon, -1):
            end_of[hit.lexicon] = hit.end
            kept.append(hit)
    return kept


_ENTRY_KEYS = frozenset({"term", "suggestion", "except_next", "except_prev", "why"})


def _entries(lexicon: str, spec: dict[str, Any]) -> list[Entry]:
    default = str(spec.get("suggestion", ""))
    entries = []
    for raw in spec["terms"]:
        item: dict[str, Any] = {"term": raw} if isinstance(raw, str) else raw
        unknown = set(item) - _ENTRY_KEYS
        if unknown:
            raise ValueError(f"{lexicon}: {item.get('term')!r} has unknown keys {sorted(unknown)}")
        term = str(item["term"]).strip()
        _check_term(lexicon, term)
        suggestion = str(item.get("suggestion", default))
        if suggestion and lexicon not in FLAG_MEASURES:
            raise ValueError(f"{lexicon}: {term!r} has a suggestion but the list never flags")
        except_next = frozenset(str(w).lower() for w in item.get("except_next", ()))
        except_prev = frozenset(str(w).lower() for w in item.get("except_prev", ()))
        cased = term != term.lower()
        entries.append(Entry(term, suggestion, except_next, except_prev, cased))
    terms = [e.term.lower() for e in entries]
    if len(set(terms)) != len(terms):
        raise ValueError(f"{lexicon}: duplicate terms")
    return entries


@dataclass(frozen=True)
class WordLists:
    """All lists by name (`agentic`, `hedging`, ...), their sources, and their matcher."""

    lists: dict[str, tuple[Entry, ...]]
    sources: dict[str, str]  # file name -> its `_source`
    matcher: Matcher


def load_wordlists(data_dir: Path = DATA_DIR) -> WordLists:
    """Read every data file; a list name may appear in one file only."""
    lists: dict[str, tuple[Entry, ...]] = {}
    sources: dict[str, str] = {}
    patterns: list[_Pattern] = []
    for path in sorted(data_dir.glob("*.json")):
        data: dict[str, Any] = json.loads(path.read_text())
        if not str(data.get("_source", "")).strip():
            raise ValueError(f"{path.name}: no _source")
        sources[path.name] = data["_source"]
        for name, spec in data.items():
            if name.startswith("_"):
                continue
            if name in lists:
                raise ValueError(f"{path.name}: list {name!r} is defined twice")
            entries = _entries(name, spec)
            lists[name] = tuple(entries)
            for entry in entries:
                for parts in _variants(entry.term):
                    patterns.append(_Pattern(name, entry, parts))
    return WordLists(lists, sources, Matcher(patterns))


@cache
def wordlists() -> WordLists:
    """The package's lists, loaded once per process."""
    return load_wordlists()
