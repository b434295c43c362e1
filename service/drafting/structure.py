"""The shape of a draft: sections of sentences, each resting on evidence ids of its pack.

The same models are the schema the LLM is asked to fill (structured output), what the
offline drafter writes, and what is stored with each draft version, so a draft reads the
same whoever wrote it.
"""

from pydantic import BaseModel, Field

from domain.kinds import DRAFT_KINDS as DRAFT_KINDS  # named in kinds.py, kept here


class DraftSentence(BaseModel):
    """One sentence or bullet, and the evidence items (ids like "E3") it rests on."""

    text: str = Field(min_length=1, description="One sentence or bullet of the draft.")
    evidence: list[str] = Field(
        default_factory=list,
        description='Ids of the evidence items this sentence rests on, e.g. ["E3", "E7"].',
    )


class DraftSection(BaseModel):
    heading: str = Field(min_length=1, description="The section's heading.")
    sentences: list[DraftSentence] = Field(description="The section's sentences, in order.")


class DraftBody(BaseModel):
    """A whole draft."""

    sections: list[DraftSection] = Field(description="The draft's sections, in order.")

    def sentences(self) -> list[DraftSentence]:
        return [sentence for section in self.sections for sentence in section.sentences]

    def as_text(self) -> str:
        """Plain text with citations in brackets, for printing and for editors."""
        parts = []
        for section in self.sections:
            lines = [
                f"{s.text} [{', '.join(s.evidence)}]" if s.evidence else s.text
                for s in section.sentences
            ]
            parts.append(f"## {section.heading}\n" + "\n".join(lines))
        return "\n\n".join(parts)
