"""A draft as plain text, and back: what a person edits in their own editor.

    ## Strengths
    You cut the team's recurring meetings from five to two. [E1]
    - A colleague wrote: "..." [E3, E7]

A line starting with `## ` opens a section; every other non-empty line is one sentence,
with an optional leading bullet and trailing evidence ids in brackets. `DraftBody.as_text`
writes exactly this, so show -> edit -> save loses nothing.
"""

import re

from domain.errors import Invalid
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

_CITATIONS = re.compile(r"\s*\[\s*([A-Za-z]\w*(?:\s*,\s*[A-Za-z]\w*)*)\s*\]\s*$")
_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+")


class DraftTextError(Invalid):
    """The text cannot be read as a draft; the message names the line."""


def parse_text(text: str) -> DraftBody:
    sections: list[DraftSection] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("## "):
            sections.append(DraftSection(heading=line[3:].strip() or "Untitled", sentences=[]))
            continue
        if not sections:
            raise DraftTextError(
                f"line {number}: text before the first '## ' heading; start with a section",
                field="text",
            )
        sections[-1].sentences.append(_sentence(line))
    if not any(section.sentences for section in sections):
        raise DraftTextError("the text holds no sentences", field="text")
    return DraftBody(sections=sections)


def _sentence(line: str) -> DraftSentence:
    line = _BULLET.sub("", line)
    cited = _CITATIONS.search(line)
    if cited is None:
        return DraftSentence(text=line, evidence=[])
    ids = [part.strip() for part in cited.group(1).split(",")]
    return DraftSentence(text=line[: cited.start()].rstrip(), evidence=ids)
