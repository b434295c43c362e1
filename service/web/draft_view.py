"""A draft as the editor page shows it: sentences cut into plain text and flagged phrases,
each sentence with its citations, and the differences between two versions."""

import difflib
from dataclasses import dataclass, field
from typing import Any

from service.drafting.structure import DraftBody


@dataclass(frozen=True)
class Segment:
    text: str
    flag: dict[str, Any] | None = None  # the flag whose phrase this is


@dataclass
class SentenceView:
    segments: list[Segment]
    evidence: list[str]


@dataclass
class SectionView:
    heading: str
    sentences: list[SentenceView] = field(default_factory=list)


def sections_with_flags(body: DraftBody, flags: list[dict[str, Any]]) -> list[SectionView]:
    """Cut each sentence at the character spans of its flags (the check's spans refer to
    the version it checked; the page shows flags only for that version)."""
    by_sentence: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for flag in flags:
        by_sentence.setdefault((flag["section"], flag["sentence"]), []).append(flag)
    out = []
    for s, section in enumerate(body.sections):
        view = SectionView(section.heading)
        for n, sentence in enumerate(section.sentences):
            spans = sorted(by_sentence.get((s, n), []), key=lambda f: f["start"])
            view.sentences.append(SentenceView(_cut(sentence.text, spans), sentence.evidence))
        out.append(view)
    return out


def _cut(text: str, flags: list[dict[str, Any]]) -> list[Segment]:
    segments, at = [], 0
    for flag in flags:
        start, end = flag["start"], flag["end"]
        if start < at or end > len(text) or start >= end:
            continue  # overlapping or stale span: the flag is still listed below the text
        if start > at:
            segments.append(Segment(text[at:start]))
        segments.append(Segment(text[start:end], flag))
        at = end
    if at < len(text):
        segments.append(Segment(text[at:]))
    return segments


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "same", "added" or "removed"
    text: str


def version_diff(before: str, after: str) -> list[DiffLine]:
    """Line differences, the way a reviewer reads them: what was removed, what was added."""
    lines = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        tag, text = line[:2], line[2:]
        if tag == "  ":
            lines.append(DiffLine("same", text))
        elif tag == "- ":
            lines.append(DiffLine("removed", text))
        elif tag == "+ ":
            lines.append(DiffLine("added", text))
    return lines


def evidence_body(item: dict[str, Any]) -> str:
    """An evidence item's text without its title: chunks begin with their record's title
    (it helps retrieval), which the page already shows as the item's heading."""
    text, title = str(item.get("text", "")), str(item.get("title") or "")
    return text[len(title) :].lstrip() if title and text.startswith(title) else text


@dataclass(frozen=True)
class TextBlock:
    heading: str
    lines: list[str]


def text_blocks(text: str) -> list[TextBlock]:
    """A draft in its plain-text form (## headings, - sentences) as headed blocks, so a page
    can show a summary as text rather than as the markup it is written in."""
    blocks: list[TextBlock] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("## "):
            blocks.append(TextBlock(line[3:].strip(), []))
        elif line:
            if not blocks:
                blocks.append(TextBlock("", []))
            blocks[-1].lines.append(line.removeprefix("- "))
    return blocks
