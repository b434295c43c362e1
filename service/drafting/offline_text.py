"""Reading evidence text for the offline drafter: sentences, their labels, and cues.

Evidence is written in many small formats: a 1:1 note of labelled bullets ("- Risks: ..."),
peer feedback in "Keep doing / One thing to work on" paragraphs, a work record with a title
line and retro headings ("Worked well ..."). A draft sentence must be a clean sentence, so
we split the text into sentences, strip bullets and labels, and remember the label: it
says more about a sentence (a growth area, a status, a next step) than its words do.
The cue lists are data (`data/offline_cues.json`), with their source.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from retrieval.chunking import split_sentences
from retrieval.evidence import EvidenceItem
from retrieval.outcomes import outcome_count

CUES_FILE = Path(__file__).parent / "data" / "offline_cues.json"

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")
_LABEL = re.compile(r"^([A-Z][A-Za-z0-9'/ -]{0,40}?):\s+(?=\S)")
_LABEL_LINE = re.compile(r"^[A-Z][A-Za-z0-9' -]{0,40}:$")
_MAX_LABEL_WORDS = 5
_MAX_WORDS = 50
_MIN_WORDS = 4


@dataclass(frozen=True)
class Sentence:
    """One sentence of an evidence item: cleaned text, the label over it, where it was."""

    text: str
    raw: str
    label: str | None
    paragraph: int
    index: int


@dataclass(frozen=True)
class Cues:
    growth_labels: frozenset[str]
    strength_labels: frozenset[str]
    growth: tuple[re.Pattern[str], ...]
    boilerplate: tuple[re.Pattern[str], ...]
    context: tuple[re.Pattern[str], ...]
    influence: tuple[re.Pattern[str], ...]
    scope: tuple[re.Pattern[str], ...]
    headings: tuple[str, ...]
    objective_labels: frozenset[str]
    status_labels: frozenset[str]
    career_labels: frozenset[str]
    follow_up_labels: frozenset[str]


def _compiled(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for p in patterns)


@cache
def cues() -> Cues:
    data = json.loads(CUES_FILE.read_text())
    return Cues(
        growth_labels=frozenset(data["growth_labels"]),
        strength_labels=frozenset(data["strength_labels"]),
        growth=_compiled(data["growth_patterns"]),
        boilerplate=_compiled(data["boilerplate_patterns"]),
        context=_compiled(data["context_patterns"]),
        influence=_compiled(data["influence_patterns"]),
        scope=_compiled(data["scope_patterns"]),
        # longest first, so "Do differently next time" wins over a shorter heading
        headings=tuple(sorted(data["section_headings_without_colon"], key=len, reverse=True)),
        objective_labels=frozenset(data["objective_labels"]),
        status_labels=frozenset(data["status_labels"]),
        career_labels=frozenset(data["career_labels"]),
        follow_up_labels=frozenset(data["follow_up_labels"]),
    )


def matches(patterns: Iterable[re.Pattern[str]], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def is_boilerplate(sentence: Sentence) -> bool:
    """Openers, sign-offs and pointers carry no evidence of their own."""
    return matches(cues().boilerplate, sentence.raw) or matches(cues().boilerplate, sentence.text)


def is_context(sentence: Sentence) -> bool:
    """The situation before the work: true, but not an accomplishment."""
    return matches(cues().context, sentence.raw)


def outcomes(sentence: Sentence) -> int:
    return outcome_count(sentence.text)


def word_count(text: str) -> int:
    return len(text.split())


def usable(sentence: Sentence) -> bool:
    """Long enough to say something, short enough to read, and not boilerplate."""
    return _MIN_WORDS <= word_count(sentence.text) <= _MAX_WORDS and not is_boilerplate(sentence)


def item_sentences(item: EvidenceItem) -> list[Sentence]:
    """The item's sentences in order, each cleaned of bullets, headings and labels.

    A chunk can start inside a sentence (chunks overlap); such a fragment starts in lower
    case and is left out, since it cannot stand as a sentence of a draft.
    """
    body = _without_title(item.text.replace("\u2019", "'"), item.title)
    sentences: list[Sentence] = []
    for p_index, paragraph in enumerate(_PARAGRAPH_BREAK.split(body)):
        heading: str | None = None
        for line in _lines(paragraph):
            if _LABEL_LINE.match(line.strip()):
                heading = line.strip().rstrip(":").lower()  # "Key results:" over bullets
                continue
            sentences.extend(_line_sentences(line, p_index, len(sentences), heading))
    return sentences


def _without_title(text: str, title: str | None) -> str:
    """Chunks start with their record's title line; the title is not a sentence."""
    if title and text.startswith(title.strip()):
        return text[len(title.strip()) :].lstrip("\n")
    return text


def _lines(paragraph: str) -> list[str]:
    """Bulleted lines stand alone; otherwise the paragraph's lines are one text."""
    lines = [line for line in paragraph.splitlines() if line.strip()]
    if any(_BULLET.match(line) for line in lines):
        return lines
    return [" ".join(line.strip() for line in lines)] if lines else []


def _line_sentences(line: str, paragraph: int, start: int, heading: str | None) -> list[Sentence]:
    """A label ("Risks: ...") heads the rest of its line or paragraph."""
    label = heading
    out: list[Sentence] = []
    for raw in split_sentences(_BULLET.sub("", line)):
        text, own_label = strip_labels(raw)
        if own_label is not None:
            label = own_label
        elif raw[:1].islower() and not out:
            continue  # a fragment left by chunk overlap
        text = finish(text)
        if text:
            out.append(Sentence(text, raw, label, paragraph, start + len(out)))
    return out


def strip_labels(raw: str) -> tuple[str, str | None]:
    """The text without its leading headings and labels, and the innermost label."""
    text, label = raw.strip(), None
    for _ in range(3):
        heading = next((h for h in cues().headings if _starts_heading(text, h)), None)
        if heading is not None:
            text, label = text[len(heading) :].lstrip(" :"), heading.lower()
            continue
        match = _LABEL.match(text)
        if match and len(match[1].split()) <= _MAX_LABEL_WORDS:
            text, label = text[match.end() :], match[1].strip().lower()
            continue
        break
    return text, label


def _starts_heading(text: str, heading: str) -> bool:
    """A retro heading run into its paragraph: "Worked well The weekly update ..."."""
    rest = text[len(heading) :]
    return text.startswith(heading) and (rest.startswith(": ") or rest[:2].strip()[:1].isupper())


def finish(text: str) -> str:
    """Capitalised, single-spaced, ending in a full stop."""
    text = " ".join(text.split()).strip(" ;,-")
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def growth_mode(sentences: list[Sentence]) -> list[bool]:
    """Per sentence of a feedback item: is it about growth (True) or a strength (False)?

    A label ("One thing to work on:") decides for the sentences under it; an unlabelled
    sentence is growth when it has growth wording itself, since one note often praises
    in one sentence and suggests in the next.
    """
    c = cues()
    modes = []
    for s in sentences:
        if s.label is not None and _label_in(s.label, c.growth_labels):
            modes.append(True)
        elif s.label is not None and _label_in(s.label, c.strength_labels):
            modes.append(False)
        else:
            modes.append(matches(c.growth, s.raw))
    return modes


def _label_in(label: str, names: frozenset[str]) -> bool:
    """ "What Allison does well" is a strength label: match whole labels or their end."""
    return label in names or any(label.endswith(" " + name) for name in names)


def label_in(sentence: Sentence, names: frozenset[str]) -> bool:
    return sentence.label is not None and _label_in(sentence.label, names)
