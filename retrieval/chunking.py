"""Split a record into chunks that respect paragraphs and sentences.

A chunk is what gets embedded and cited, so it should hold whole thoughts: we pack whole
paragraphs while they fit, fall back to whole sentences, and cut inside a sentence only
when a single sentence is longer than a chunk. Consecutive chunks share a little text so
that a statement at a boundary is retrievable from either side.

Token counts are approximate (words and punctuation marks), which tracks WordPiece counts
closely enough to stay under MiniLM's 256-token window with the default of 200.
"""

import re
from dataclasses import dataclass
from typing import NamedTuple

from retrieval.sentences import split_line

_TOKEN = re.compile(r"\w+|[^\w\s]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


@dataclass(frozen=True)
class ChunkText:
    position: int
    text: str
    token_count: int


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def split_sentences(paragraph: str) -> list[str]:
    """Sentences of one paragraph (split by `retrieval.sentences`, which knows titles,
    initials and abbreviations); each bulleted line counts as a sentence of its own."""
    sentences: list[str] = []
    for line in _lines_or_paragraph(paragraph):
        sentences.extend(split_line(line))
    return sentences


def _lines_or_paragraph(paragraph: str) -> list[str]:
    lines = [line for line in paragraph.splitlines() if line.strip()]
    if any(_BULLET.match(line) for line in lines):
        return lines
    return [" ".join(line.strip() for line in lines)]


def _split_long_sentence(sentence: str, max_tokens: int) -> list[str]:
    """Cut a sentence longer than a chunk at word boundaries."""
    words = sentence.split()
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for word in words:
        word_tokens = count_tokens(word)
        if current and size + word_tokens > max_tokens:
            parts.append(" ".join(current))
            current, size = [], 0
        current.append(word)
        size += word_tokens
    if current:
        parts.append(" ".join(current))
    return parts


class _Unit(NamedTuple):
    """A sentence (or a piece of one), counted once."""

    text: str
    tokens: int


def _units(body: str, max_tokens: int) -> list[list[_Unit]]:
    """Paragraphs as lists of sentence-sized units, none longer than a chunk."""
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(body.strip()) if p.strip()]
    result: list[list[_Unit]] = []
    for paragraph in paragraphs:
        units: list[_Unit] = []
        for sentence in split_sentences(paragraph):
            tokens = count_tokens(sentence)
            if tokens <= max_tokens:
                units.append(_Unit(sentence, tokens))
            else:
                pieces = _split_long_sentence(sentence, max_tokens)
                units.extend(_Unit(piece, count_tokens(piece)) for piece in pieces)
        result.append(units)
    return result


class _Packer:
    """Greedy packing of units into chunks, carrying a short overlap across each cut."""

    def __init__(self, max_tokens: int, overlap_tokens: int) -> None:
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.chunks: list[list[_Unit]] = []
        self.current: list[_Unit] = []
        self.size = 0
        self.fresh = 0  # units in `current` not carried over from the previous chunk

    def start_paragraph(self, tokens: int) -> None:
        """Cut before a paragraph that would fit a chunk of its own but not the rest of
        this one, so paragraphs are not split when they need not be."""
        if self.fresh and self.size + tokens > self.max_tokens >= tokens:
            self._cut()

    def add(self, unit: _Unit, *, paragraph_start: bool) -> None:
        if self.fresh and self.size + unit.tokens > self.max_tokens:
            self._cut()
        if paragraph_start and self.current:
            unit = _Unit("\n\n" + unit.text, unit.tokens)
        self.current.append(unit)
        self.size += unit.tokens
        self.fresh += 1

    def _cut(self) -> None:
        self.chunks.append(self.current)
        carried: list[_Unit] = []
        size = 0
        for unit in reversed(self.current):
            if size + unit.tokens > self.overlap_tokens:
                break
            carried.insert(0, _Unit(unit.text.lstrip("\n"), unit.tokens))
            size += unit.tokens
        self.current, self.size, self.fresh = carried, size, 0

    def finish(self) -> list[list[_Unit]]:
        if self.fresh:
            self.chunks.append(self.current)
        return self.chunks


def _join(units: list[_Unit]) -> str:
    """Sentences joined by spaces, paragraphs by a blank line, bullets each on its line."""
    text = ""
    for unit in units:
        if not text:
            text = unit.text.lstrip("\n")
        elif unit.text.startswith("\n\n"):
            text += unit.text
        elif _BULLET.match(unit.text):
            text += "\n" + unit.text
        else:
            text += " " + unit.text
    return text


def chunk_text(
    body: str, *, title: str | None = None, max_tokens: int = 200, overlap_tokens: int = 30
) -> list[ChunkText]:
    """Chunks of a record body; the title, when there is one, heads every chunk so a chunk
    read alone still says what it is about. A body that fits is kept exactly as written."""
    header = f"{title.strip()}\n" if title and title.strip() else ""
    header_tokens = count_tokens(header)
    budget = max(16, max_tokens - header_tokens)
    body_tokens = count_tokens(body)
    if body_tokens <= budget:
        return [ChunkText(0, header + body.strip(), header_tokens + body_tokens)]
    packer = _Packer(budget, min(overlap_tokens, budget // 2))
    for units in _units(body, budget):
        packer.start_paragraph(sum(unit.tokens for unit in units))
        for index, unit in enumerate(units):
            packer.add(unit, paragraph_start=index == 0)
    return [
        ChunkText(position, header + _join(units), header_tokens + sum(u.tokens for u in units))
        for position, units in enumerate(packer.finish())
    ]
