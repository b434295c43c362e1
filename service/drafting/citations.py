"""The citation check run on every draft, whoever wrote it.

A citation must name an item of the draft's own evidence pack: any other id (invented by a
model, or left over from an edit) is removed from the sentence and flagged. A sentence left
with no citation is flagged as unsupported. The share of supported sentences is kept with
the draft, so a reader sees at once how much of it rests on evidence.

Evidence that reads as instructions to a model supports nothing: a citation of a marked
item stays in the sentence (so the reader sees where it came from) but is flagged, and a
sentence citing only marked items counts as unsupported. A sentence that repeats what a
marked item tells the model to write, or reads as instructions itself, is flagged too
(`injection_flags.py`); the bias gate will not approve the draft until a person looks.
"""

import re
from collections.abc import Collection, Mapping

from pydantic import BaseModel

from service.drafting.injection_flags import (
    CITES,
    EvidenceMark,
    InjectionFinding,
    detector_version,
    draft_findings,
)
from service.drafting.structure import DraftBody, DraftSection, DraftSentence

_ID = re.compile(r"^E[1-9]\d*$")


class CitationFlag(BaseModel):
    """One finding: where (section and sentence index) and what."""

    section: int
    sentence: int
    # "unknown_citation", "unsupported", "instruction_evidence" (cites an item that reads as
    # instructions) or "prompt_injection" (repeats such an item, or reads as instructions)
    problem: str
    citation: str | None = None
    detail: str | None = None


class CitationReport(BaseModel):
    sentences: int
    supported: int
    flags: list[CitationFlag]
    # Every sentence relying on instructions as the detector `detector` read them when the
    # version was saved, so a check need not read the draft again; "" when the version was
    # checked without its evidence's marks (or saved before findings were kept).
    injection: list[InjectionFinding] = []
    detector: str = ""

    @property
    def supported_share(self) -> float:
        return self.supported / self.sentences if self.sentences else 0.0


def check_citations(
    body: DraftBody,
    pack_ids: Collection[str],
    marks: Mapping[str, EvidenceMark] | None = None,
) -> tuple[DraftBody, CitationReport]:
    """The draft with unknown citations removed, and the report of what was found.
    `marks`: the pack's items as the injection detector found them."""
    known = set(pack_ids)
    marked = {key for key, mark in (marks or {}).items() if mark.signals}
    flags: list[CitationFlag] = []
    grounded = 0
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
            flags += [
                CitationFlag(
                    section=s_index, sentence=t_index, problem="instruction_evidence", citation=c
                )
                for c in kept
                if c in marked
            ]
            if any(c not in marked for c in kept):
                grounded += 1
            else:
                flags.append(CitationFlag(section=s_index, sentence=t_index, problem="unsupported"))
            sentences.append(DraftSentence(text=sentence.text, evidence=kept))
        sections.append(DraftSection(heading=section.heading, sentences=sentences))
    checked = DraftBody(sections=sections)
    injection = draft_findings(checked, marks or {})
    flags += [
        CitationFlag(
            section=f.section,
            sentence=f.sentence,
            problem="prompt_injection",
            citation=f.evidence,
            detail=f.reason,
        )
        for f in injection
        if f.kind != CITES
    ]
    total = sum(len(s.sentences) for s in sections)
    report = CitationReport(
        sentences=total,
        supported=grounded,
        flags=flags,
        injection=injection if marks is not None else [],
        detector=detector_version() if marks is not None else "",
    )
    return checked, report
