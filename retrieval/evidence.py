"""The evidence pack: what retrieval hands to drafting, each item citable by a stable id."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from domain.periods import Period


@dataclass(frozen=True)
class Scores:
    """Why an item was picked: its best cosine similarity to the kind's queries, its
    full-text rank, its fused (RRF) score and its place in the diversified order."""

    vector: float
    text: float
    fused: float
    pick: int


@dataclass(frozen=True)
class EvidenceItem:
    id: str
    chunk_id: int
    record_id: int
    text: str
    token_count: int
    kind: str
    source: str
    external_id: str
    title: str | None
    occurred_at: datetime
    author: str | None
    scores: Scores
    # Rules of the injection detector its record matched at ingest ([] none; None: ingested
    # before the detector). Drafting checks the text again and widens this; see
    # service/drafting/injection.py.
    instruction_signals: tuple[str, ...] | None = None

    @property
    def reads_as_instructions(self) -> bool:
        return bool(self.instruction_signals)

    def source_facts(self) -> dict[str, Any]:
        """Where the item comes from, as plain JSON values (for provenance and metadata)."""
        return {
            "id": self.id,
            "chunk_id": self.chunk_id,
            "record_id": self.record_id,
            "kind": self.kind,
            "source": self.source,
            "external_id": self.external_id,
            "title": self.title,
            "occurred_at": self.occurred_at.isoformat(),
        }


@dataclass(frozen=True)
class EvidencePack:
    subject_id: int
    period: Period | None
    draft_kind: str
    ranking: str
    token_budget: int
    candidates: int
    items: list[EvidenceItem] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(item.token_count for item in self.items)

    @property
    def message(self) -> str | None:
        """Said instead of an error when there is nothing to draft from."""
        if self.items:
            return None
        where = f" in {self.period.name}" if self.period else ""
        if not self.candidates:
            return f"no evidence recorded for this person{where}"
        return f"none of this person's {self.candidates} chunks{where} matched a {self.draft_kind}"
