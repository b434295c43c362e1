"""The citation check run on every draft, whoever wrote it.

A citation must name an item of the draft's own evidence pack: any other id (invented by a
model, or left over from an edit) is removed from the sentence and flagged. A sentence left
with no citation is flagged as unsupported. The share of supported sentences is kept with
the draft, so a reader sees at once how much of it rests on evidence.
"""

import re
from collections.abc import Collection

from pydantic import BaseModel

from service.drafting.structure import DraftBody, DraftSection, DraftSentence

_ID = re.compile(r"^E[1-9]\d*$")


class CitationFlag(BaseModel):
    """One finding: where (section and sentence index) and what."""

    section: int
    sentence: int
    problem: str  # "unknown_citation" or "unsupported"
    citation: str | None = None


class CitationReport(BaseModel):
    sentences: int
    supported: int
    flags: list[CitationFlag]

    @property
    def supported_share(self) -> float:
        return self.supported / self.sentences if self.sentences else 0.0


def check_citations(body: DraftBody, pack_ids: Collection[str]) -> tuple[DraftBody, CitationReport]:
    """The draft with unknown citations removed, and the report of what was found."""
    known = set(pack_ids)
    flags: list[CitationFlag] = []
    sections = []
    for s_index, section in enumerate(body.sections):
        sentences = []
        for t_index, sentence in enumerate(section.sentences):
            cited = list(dict.fromkeys(c.strip() for c in sentence.evidence))
            kept = [c for c in cited if _ID.match(c) and c in known]
            flags += [
                CitationFlag(
                    section=s_index, sentence=t_index, problem="unknown_citation", citation=c
                )
                for c in cited
                if c not in kept
            ]
            if not kept:
                flags.append(CitationFlag(section=s_index, sentence=t_index, problem="unsupported"))
            sentences.append(DraftSentence(text=sentence.text, evidence=kept))
        sections.append(DraftSection(heading=section.heading, sentences=sentences))
    total = sum(len(s.sentences) for s in sections)
    supported = sum(1 for s in sections for t in s.sentences if t.evidence)
    return DraftBody(sections=sections), CitationReport(
        sentences=total, supported=supported, flags=flags
    )
