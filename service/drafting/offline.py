"""The offline drafter: a grounded first draft built from the evidence pack alone.

With no language model configured, fairdraft still drafts: it writes the same structure an
LLM fills (`DraftBody`), from the evidence itself. Evidence is grouped by theme (what the
person delivered, strengths and growth areas from feedback, goals, 1:1 themes), each item
condensed to its one or two most informative sentences, and restated in the voice of the
draft kind (first person for a self-reflection, second person to the report for manager
feedback, the first name for a packet or a calibration summary). Every sentence cites the
item it came from; what cannot be restated safely is quoted with its source named.

The draft is extractive and says so: callers store and show `OFFLINE_LABEL` with it. The
label is not a sentence of the draft, since every sentence of a draft must cite evidence.
The same pack always gives the same draft.

Evidence that reads as instructions to a model is never copied: an item marked by the
injection detector (`injection.py`; drafting marks every pack first) is left out whole, and
a candidate sentence that reads as instructions itself is dropped, whatever its item.
"""

import json
import re
from dataclasses import dataclass, replace
from functools import cache

from retrieval.evidence import EvidenceItem, EvidencePack
from service.drafting.injection import reads_as_instructions
from service.drafting.offline_text import item_sentences
from service.drafting.offline_themes import BUILDERS, KINDS_FILE, Candidate, Context
from service.drafting.offline_voice import Voice
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.drafting.subject import DraftSubject

OFFLINE_LABEL = (
    "Offline draft: assembled from the evidence without a language model; edit before sharing."
)
NEAR_DUPLICATE = 0.6  # word-set overlap (Jaccard) above which a bullet repeats another
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class SectionPlan:
    heading: str
    theme: str
    limit: int


@dataclass(frozen=True)
class KindPlan:
    voice: Voice
    sections: tuple[SectionPlan, ...]


@cache
def kind_plan(kind: str) -> KindPlan:
    """Sections and voice of a draft kind, from `data/offline_kinds.json`."""
    kinds = json.loads(KINDS_FILE.read_text())["kinds"]
    if kind not in kinds:
        raise ValueError(f"unknown draft kind {kind!r}; use one of {', '.join(kinds)}")
    spec = kinds[kind]
    sections = tuple(
        SectionPlan(s["heading"], s["theme"], int(s["limit"])) for s in spec["sections"]
    )
    return KindPlan(Voice(spec["voice"]), sections)


def draft_offline(pack: EvidencePack, subject: DraftSubject) -> DraftBody:
    """The draft of `subject.kind` from the pack; no sections when the pack is empty (the
    caller reports `pack.message` instead)."""
    plan = kind_plan(subject.kind)
    items = tuple(item for item in pack.items if not _instructions(item))
    if not items:
        return DraftBody(sections=[])
    ctx = Context(
        items=items,
        sentences={item.id: item_sentences(item) for item in items},
        subject=subject,
        voice=plan.voice,
    )
    taken: list[set[str]] = []
    sections = []
    for section in plan.sections:
        chosen = _pick(_candidates(ctx, section.theme), section.limit, taken)
        if chosen:
            sentences = [DraftSentence(text=c.text, evidence=[c.item_id]) for c in chosen]
            sections.append(DraftSection(heading=section.heading, sentences=sentences))
    return DraftBody(sections=sections)


def _instructions(item: EvidenceItem) -> bool:
    """Marked, or (not checked yet: a pack that did not go through drafting's marking)
    reading as instructions now."""
    if item.instruction_signals is None:
        return reads_as_instructions(item.text)
    return item.reads_as_instructions


def _candidates(ctx: Context, themes: str) -> list[Candidate]:
    """Candidates of a section's themes ("influence+strengths"); an earlier theme's
    candidates rank above a later one's, so the later theme only fills what is left."""
    out: list[Candidate] = []
    parts = themes.split("+")
    for rank, theme in enumerate(parts):
        bonus = 10.0 * (len(parts) - 1 - rank)
        out += [replace(c, score=c.score + bonus) for c in BUILDERS[theme](ctx)]
    return out


def _pick(candidates: list[Candidate], limit: int, taken: list[set[str]]) -> list[Candidate]:
    """The best `limit` candidates, one per item, none repeating a bullet already in the
    draft (evidence often says the same thing twice: a work record and its readout)."""
    chosen: list[Candidate] = []
    items: set[str] = set()
    for candidate in sorted(candidates, key=lambda c: (-c.score, c.order, c.text)):
        if len(chosen) == limit:
            break
        bag = set(_WORD.findall(candidate.text.lower()))
        if candidate.item_id in items or any(
            _overlap(bag, other) > NEAR_DUPLICATE for other in taken
        ):
            continue
        if reads_as_instructions(candidate.text):
            continue
        chosen.append(candidate)
        items.add(candidate.item_id)
        taken.append(bag)
    return chosen


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0
