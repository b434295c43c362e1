"""Sentence boundaries of plain text, with a kept splitter: pysbd (rule-based, after the
Golden Rules of pragmatic_segmenter) where a line has a boundary a regex would get wrong.

Why pysbd and not spaCy's parser or senter: it is rule-based, so it splits the same way on
every machine and for every model, needs no model loaded (chunking at ingest and the CLI
stay light), and it knows titles, initials, abbreviations, decimals and ellipses, which is
exactly where a regex fails ("I have watched Ms. Okafor grow." is one sentence). spaCy's
statistical senter splits well on news text but moves its boundaries with the model
version and scores sentence F 0.91 on OntoNotes; the rules here are tested on
`evals/data/sentence_splits.jsonl` (tests/test_sentence_splits.py).

Cost: pysbd takes about 0.4 ms a line, so it runs only on lines where a period, ? or ! is
followed by more text and the word before it could be an abbreviation (a known one, a
single letter, a word with an inner period) or the line holds an ellipsis; other lines
split at every ". " with the same result, much faster.
"""

import re
from functools import cache
from pathlib import Path
from typing import Protocol

_DATA = Path(__file__).parent / "data" / "abbreviations.txt"
# a possible end: . ! ? (maybe closed by a quote or bracket), white space, more text
_CANDIDATE = re.compile(r"[.!?][\"')\]\u201d\u2019]*\s+(?=\S)")
_WORD_BEFORE = re.compile(r"([^\s(\[\"'\u201c\u2018]+)[.!?][\"')\]\u201d\u2019]*\s+$")
_ELLIPSIS = re.compile(r"\.\.\.|\u2026")
# evidence citations as drafts write them after a sentence's period: "... it. [E1, E2]"
_LEADING_CITATION = re.compile(r"\[\s*E\d+(?:\s*,\s*E\d+)*\s*\]")
_STARTS_LOWER_OR_DIGIT = re.compile(r"[\"'(\[\u201c\u2018]?[a-z0-9$]")


class _Segmenter(Protocol):
    def segment(self, text: str) -> list[str]: ...


@cache
def _abbreviations() -> frozenset[str]:
    """pysbd's English abbreviations and ours (`data/abbreviations.txt`), lower case."""
    from pysbd.lang.english import English  # type: ignore[import-untyped]

    ours = {
        line.strip().lower()
        for line in _DATA.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    return frozenset(ours) | frozenset(a.lower() for a in English.Abbreviation.ABBREVIATIONS)


@cache
def _segmenter() -> _Segmenter:
    """pysbd's English segmenter: rules only, no model; kept once per process (it holds
    compiled rules, not a model, and no state between calls)."""
    import pysbd  # type: ignore[import-untyped]

    segmenter: _Segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
    return segmenter


def split_line(line: str) -> list[str]:
    """The sentences of one line of text, stripped, in order, none empty."""
    line = line.strip()
    if not line:
        return []
    ends = list(_CANDIDATE.finditer(line))
    if not ends:
        return [line]
    if not _ambiguous(line, ends):
        return _keep_citations(_cut(line, [m.end() for m in ends]))
    pieces = [p.strip() for p in _segmenter().segment(line) if p.strip()]
    return _keep_citations(_rejoin(pieces))


def _ambiguous(line: str, ends: list[re.Match[str]]) -> bool:
    """True when some possible end follows a word that may be an abbreviation or an
    initial, or precedes a lower-case word or a number, or the line holds an ellipsis: the
    cases a plain cut gets wrong."""
    if _ELLIPSIS.search(line):
        return True
    known = _abbreviations()
    for end in ends:
        if _STARTS_LOWER_OR_DIGIT.match(line, end.end()):
            return True
        found = _WORD_BEFORE.search(line, 0, end.end())
        if found is None:
            continue
        word = found.group(1).lower().rstrip(".")
        if len(word) <= 1 or "." in word or word in known:
            return True
    return False


def _cut(line: str, cuts: list[int]) -> list[str]:
    starts = [0, *cuts]
    ends = [*cuts, len(line)]
    return [line[a:b].strip() for a, b in zip(starts, ends, strict=True) if line[a:b].strip()]


def _rejoin(pieces: list[str]) -> list[str]:
    """pysbd ends a sentence after an abbreviation it does not know as one taking a
    number ("approx. 18%"); a piece that ends with a known abbreviation and is followed by
    one starting with a digit or a lower-case word continues that sentence."""
    known = _abbreviations()
    joined: list[str] = []
    for piece in pieces:
        if joined and _STARTS_LOWER_OR_DIGIT.match(piece):
            last_word = joined[-1].rsplit(maxsplit=1)[-1].lower()
            if last_word.endswith(".") and last_word.rstrip(".") in known:
                joined[-1] = f"{joined[-1]} {piece}"
                continue
        joined.append(piece)
    return joined


def _keep_citations(pieces: list[str]) -> list[str]:
    """A citation mark after a period belongs to the sentence before it."""
    kept: list[str] = []
    for piece in pieces:
        found = _LEADING_CITATION.match(piece)
        if kept and found:
            kept[-1] = f"{kept[-1]} {found.group()}"
            piece = piece[found.end() :].strip()
        if piece:
            kept.append(piece)
    return kept
