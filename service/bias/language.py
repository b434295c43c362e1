"""Language measures of a draft: the wording that research on reviews and reference letters
has found to differ by the gender and race of the person described.

Each measure is a rate over the draft's words or sentences, computed from the word lists in
`data/*.json` (each file names its source; `docs/bias-measures.md` explains every measure).
A profile alone accuses nobody: the bias check compares profiles across groups of people,
and a manager sees the flags on their own draft, each phrase with a concrete rewording.
Flags go only to wording that carries a bias risk (personality criticism, doubt raisers,
hedging, vague praise, gender- and age-coded words); the rest is measured, not flagged.
"""

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval.outcomes import PATTERNS_FILE as OUTCOME_PATTERNS
from retrieval.outcomes import outcome_count
from retrieval.sentences import split_line
from service.bias.agency import LEXICON_FILE, pole_counts
from service.bias.nlp import SENSES_PATH, Candidate, SenseParser, judge, sense_rules
from service.bias.wordlists import DATA_DIR, FLAG_MEASURES, Entry, Hit, tokenize, wordlists
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

if TYPE_CHECKING:
    from spacy.tokens import Doc

# the profile's keys, in a stable order; rates are per 100 words unless said otherwise
MEASURES: tuple[str, ...] = (
    "words",  # length of the draft in words
    "sentences",
    "agentic_rate",
    "communal_rate",
    "agentic_minus_communal",
    "standout_rate",
    "grindstone_rate",
    "personality_criticism_rate",
    "behaviour_criticism_rate",
    "praise_sentences",  # sentences that praise (a count)
    "praise_specificity",  # share of praise sentences with a number, outcome or citation
    "vague_praise_rate",
    "hedging_rate",
    "doubt_raiser_rate",
    "masculine_coded_rate",
    "feminine_coded_rate",
    "age_coded_rate",
    "sentiment",  # mean sentence polarity, in [-1, 1]
    "citations_per_sentence",
)
# rate measure -> the word list it counts
RATE_LISTS = {
    "agentic_rate": "agentic",
    "communal_rate": "communal",
    "standout_rate": "standout",
    "grindstone_rate": "grindstone",
    "personality_criticism_rate": "personality_criticism",
    "behaviour_criticism_rate": "behaviour_criticism",
    "vague_praise_rate": "vague_praise",
    "hedging_rate": "hedging",
    "doubt_raiser_rate": "doubt_raiser",
    "masculine_coded_rate": "masculine_coded",
    "feminine_coded_rate": "feminine_coded",
    "age_coded_rate": "age_coded",
}
# when flags overlap in one sentence, the first measure here wins
FLAG_PRIORITY = (
    "personality_criticism",
    "doubt_raiser",
    "vague_praise",
    "gender_coded",
    "age_coded",
    "hedging",
)
NEGATION_WINDOW = 3  # a negator up to this many words before a sentiment word flips it
_NUMBER = re.compile(r"(?<![^\W\d_])\d")  # a digit not glued to a letter (E3, Q3 are not)
_YEAR = re.compile(r"\b(?:19|20)\d\d\b")
_RESULT_LISTS = ("outcome", "number_words")
_CITATION = re.compile(r"\s*\[\s*(E\d+(?:\s*,\s*E\d+)*)\s*\]")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
TEXT_HEADING = "Text"

# Bump when the profile of a draft changes in code: the measures (MEASURES, `_scan`,
# `_measures`, the counting in agency.py and retrieval/outcomes.py), the flags (`_flags`,
# FLAG_PRIORITY, `_in_sense`, nlp.py's `judge`), the tokenizer or the matcher
# (wordlists.py). A change of a data file the profile reads (`_profile_data`: the word
# lists, the agency lexicon, the rules of sense, the outcome patterns) or of the spaCy
# model or library changes `language_version` by itself. Checks store their profile with
# its version; the cycle's report reuses only those of today's version, and profiles the
# rest again.
LANGUAGE_REVISION = "1"


@dataclass(frozen=True)
class LanguageFlag:
    """A phrase of one sentence that carries a bias risk, and how to reword it."""

    section: int  # index into DraftBody.sections
    sentence: int  # index into that section's sentences
    start: int  # character span of the phrase in the sentence's text
    end: int
    phrase: str
    measure: str  # one of FLAG_PRIORITY
    suggestion: str


@dataclass(frozen=True)
class LanguageProfile:
    measures: dict[str, float]  # every key of MEASURES
    flags: list[LanguageFlag]


@dataclass(frozen=True)
class _Flagged:
    """A flag and the word-list entry that raised it (its `except_next` words also cancel
    it as the parsed object of the term: `nlp.Candidate.except_objects`)."""

    flag: LanguageFlag
    entry: Entry


@dataclass(frozen=True)
class _Scan:
    """What one sentence contributes to the profile."""

    words: int
    counts: dict[str, int]  # hits per word list
    polarity: float
    praise: bool
    specific: bool
    citations: int


def _polarity(hits: list[Hit]) -> float:
    """(positive - negative) / (positive + negative) over the sentence's sentiment words,
    a word counting for the other side when a negator precedes it closely."""
    negators = [h.token for h in hits if h.lexicon == "negators"]
    positive = negative = 0
    for hit in hits:
        if hit.lexicon not in ("positive", "negative"):
            continue
        negated = any(hit.token - NEGATION_WINDOW <= n < hit.token for n in negators)
        if (hit.lexicon == "positive") != negated:
            positive += 1
        else:
            negative += 1
    total = positive + negative
    return (positive - negative) / total if total else 0.0


def _scan(sentence: DraftSentence, names: frozenset[str]) -> tuple[_Scan, list[Hit]]:
    text = sentence.text
    tokens = tokenize(text)
    hits = wordlists().matcher.hits(text, tokens, names)
    counts: dict[str, int] = {}
    for hit in hits:
        counts[hit.lexicon] = counts.get(hit.lexicon, 0) + 1
    counts.update(pole_counts(text, tokens, names))  # agentic, communal: agency.py
    polarity = _polarity(hits)
    praise = polarity > 0 or "standout" in counts or "vague_praise" in counts
    specific = praise and (
        bool(sentence.evidence)
        or "outcome" in counts
        or "number_words" in counts
        or _NUMBER.search(text) is not None
        or outcome_count(text) > 0
    )
    scan = _Scan(len(tokens), counts, polarity, praise, specific, len(sentence.evidence))
    return scan, hits


def _flags(section: int, index: int, text: str, hits: list[Hit]) -> list[_Flagged]:
    """Flags of one sentence, each with its word-list entry; of overlapping flags only the
    highest-priority one stays."""
    candidates = [
        _Flagged(
            LanguageFlag(
                section,
                index,
                h.start,
                h.end,
                text[h.start : h.end],
                FLAG_MEASURES[h.lexicon],
                h.entry.suggestion,
            ),
            h.entry,
        )
        for h in hits
        if h.entry.suggestion and h.lexicon in FLAG_MEASURES
    ]
    candidates.sort(
        key=lambda c: (FLAG_PRIORITY.index(c.flag.measure), c.flag.start - c.flag.end, c.flag.start)
    )
    kept: list[_Flagged] = []
    for candidate in candidates:
        flag = candidate.flag
        if all(flag.end <= k.flag.start or flag.start >= k.flag.end for k in kept):
            kept.append(candidate)
    return sorted(kept, key=lambda c: c.flag.start)


def _measures(scans: list[_Scan]) -> dict[str, float]:
    words = sum(s.words for s in scans)
    sentences = len(scans)
    counts: dict[str, int] = {}
    for scan in scans:
        for lexicon, n in scan.counts.items():
            counts[lexicon] = counts.get(lexicon, 0) + n
    measures = dict.fromkeys(MEASURES, 0.0)
    measures["words"] = float(words)
    measures["sentences"] = float(sentences)
    if words:
        for measure, lexicon in RATE_LISTS.items():
            measures[measure] = 100.0 * counts.get(lexicon, 0) / words
    measures["agentic_minus_communal"] = measures["agentic_rate"] - measures["communal_rate"]
    praise = [s for s in scans if s.praise]
    measures["praise_sentences"] = float(len(praise))
    if praise:
        measures["praise_specificity"] = sum(s.specific for s in praise) / len(praise)
    if sentences:
        measures["sentiment"] = sum(s.polarity for s in scans) / sentences
        measures["citations_per_sentence"] = sum(s.citations for s in scans) / sentences
    return measures


def profile_draft(
    body: DraftBody,
    names: frozenset[str] = frozenset(),
    *,
    parser: SenseParser | None = None,
    subject: str = "",
) -> LanguageProfile:
    """The measures of a draft and the flags on its phrases. `names`: people's names in
    lower case, so that a colleague called Harsh or Grace is not read as a descriptor.
    With a `parser`, a flag stays only where its phrase describes the person (`nlp.py`);
    only sentences with a candidate flag are parsed. `subject`: the draft's person's name.
    Without one, every word-list hit is flagged (the measures are the same either way)."""
    return profile_drafts([(body, subject)], names, parser=parser)[0]


def profile_drafts(
    drafts: Sequence[tuple[DraftBody, str]],
    names: frozenset[str] = frozenset(),
    *,
    parser: SenseParser | None = None,
) -> list[LanguageProfile]:
    """`profile_draft` of many (body, subject) drafts, the flagged sentences of all of them
    parsed in one batch, each distinct sentence once (a cycle's report profiles thousands:
    one spaCy call per draft cost more than the parsing)."""
    scanned = [_scan_body(body, names) for body, _ in drafts]
    if parser is None:
        return [
            LanguageProfile(_measures(scans), [f.flag for f in flagged])
            for scans, flagged in scanned
        ]
    texts = {
        body.sections[f.flag.section].sentences[f.flag.sentence].text
        for (body, _), (_, flagged) in zip(drafts, scanned, strict=True)
        for f in flagged
    }
    ordered = sorted(texts)
    docs = dict(zip(ordered, parser.parse(ordered), strict=True))
    profiles = []
    for (body, subject), (scans, flagged) in zip(drafts, scanned, strict=True):
        persons = names | name_words([subject] if subject else [])
        kept = _in_sense(body, flagged, persons, parser, docs) if flagged else []
        profiles.append(LanguageProfile(_measures(scans), kept))
    return profiles


def _scan_body(body: DraftBody, names: frozenset[str]) -> tuple[list[_Scan], list[_Flagged]]:
    """Every sentence's counts, and the word-list hits that would raise a flag."""
    scans: list[_Scan] = []
    flagged: list[_Flagged] = []
    for s, section in enumerate(body.sections):
        for i, sentence in enumerate(section.sentences):
            scan, hits = _scan(sentence, names)
            scans.append(scan)
            flagged.extend(_flags(s, i, sentence.text, hits))
    return scans, flagged


def _in_sense(
    body: DraftBody,
    flagged: list[_Flagged],
    persons: frozenset[str],
    parser: SenseParser,
    docs: Mapping[str, "Doc"],
) -> list[LanguageFlag]:
    """The flags whose phrase describes the person; `docs`: the parsed flagged sentences."""
    by_sentence: dict[tuple[int, int], list[_Flagged]] = {}
    for candidate in flagged:
        by_sentence.setdefault((candidate.flag.section, candidate.flag.sentence), []).append(
            candidate
        )
    rules = sense_rules()
    kept: list[LanguageFlag] = []
    for (s, i), mine in by_sentence.items():
        sentence = body.sections[s].sentences[i]
        result = any(c.flag.measure in rules.cleared_by_result for c in mine) and _names_result(
            sentence, rules.not_results
        )
        verdicts = judge(
            docs[sentence.text],
            [
                Candidate(c.flag.start, c.flag.end, c.flag.measure, c.entry.except_next)
                for c in mine
            ],
            persons,
            result,
            rules,
            parser.common_nouns,
        )
        kept.extend(c.flag for c, keep in zip(mine, verdicts, strict=True) if keep)
    return kept


def _names_result(sentence: DraftSentence, not_results: frozenset[str]) -> bool:
    """The sentence cites evidence or names a result: a number in digits (a year is a date,
    not a result) or words, a measured outcome, or an outcome word. Stricter than what
    makes a praise sentence specific in the measures (`_scan`): the words in
    `not_results` ("one of our best", "customers") do not tie praise to a result."""
    text = sentence.text
    if sentence.evidence or _NUMBER.search(_YEAR.sub("", text)) or outcome_count(text) > 0:
        return True
    return any(
        hit.lexicon in _RESULT_LISTS and hit.entry.term not in not_results
        for hit in wordlists().matcher.hits(text, tokenize(text))
    )


def split_sentences(text: str) -> list[str]:
    """Sentences of plain text: one or more per line, split by `retrieval.sentences` (which
    knows titles, initials, abbreviations and decimals); markdown headings (`## ...`) and
    bullet marks are dropped."""
    sentences: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        line = _BULLET.sub("", line)
        sentences.extend(split_line(line))
    return sentences


def text_to_body(text: str) -> DraftBody:
    """Plain text as a one-section draft. Citation marks like `[E3, E7]` (as
    `DraftBody.as_text` writes them) become the sentence's evidence and leave its text, so
    an edited draft's text profiles like the draft it came from."""
    sentences: list[DraftSentence] = []
    for raw in split_sentences(text):
        evidence = [e.strip() for m in _CITATION.finditer(raw) for e in m.group(1).split(",")]
        clean = _CITATION.sub("", raw).strip()
        if clean:
            sentences.append(DraftSentence(text=clean, evidence=evidence))
    return DraftBody(sections=[DraftSection(heading=TEXT_HEADING, sentences=sentences)])


def profile_text(
    text: str,
    names: frozenset[str] = frozenset(),
    *,
    parser: SenseParser | None = None,
    subject: str = "",
) -> LanguageProfile:
    """The profile of plain text; flags index into `text_to_body(text)`."""
    return profile_draft(text_to_body(text), names, parser=parser, subject=subject)


def name_words(full_names: Iterable[str]) -> frozenset[str]:
    """The lower-case words of people's names, for `names`."""
    return frozenset(word.lower() for name in full_names for word in name.split())


def language_version(parser: SenseParser | None) -> str:
    """Which rules profile a draft with this `parser`: LANGUAGE_REVISION, the data files
    the profile reads, the spaCy model and library. A stored profile of another version
    may differ from today's, so it is profiled again."""
    return _language_version(LANGUAGE_REVISION, parser.name if parser else "no parser")


@cache
def _language_version(revision: str, parser_name: str) -> str:
    digest = hashlib.sha256()
    for part in (revision, parser_name, _installed("spacy")):
        digest.update(part.encode() + b"\0")
    for path in _profile_data():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _profile_data() -> list[Path]:
    """Every data file a profile depends on, in a stable order."""
    return [*sorted(DATA_DIR.glob("*.json")), LEXICON_FILE, SENSES_PATH, OUTCOME_PATTERNS]


def _installed(package: str) -> str:
    try:
        return package_version(package)
    except PackageNotFoundError:
        return "none"


def names_version(names: frozenset[str]) -> str:
    """Which people's names a profile was read with: a colleague called Harsh changes
    what counts as harsh wording (`names`), so a profile read before a person joined or
    was renamed is profiled again."""
    joined = "\n".join(sorted(names)).encode()
    return hashlib.sha256(joined).hexdigest()[:16]
