"""Rendering a draft kind's prompt from its jinja2 template and typed context.

One environment for prompts, created once: StrictUndefined (a missing value is an error, not
an empty string in front of a model), no autoescape (this is not HTML). Evidence text is
quoted as data between <evidence> delimiters; anything inside it that could close or open a
delimiter is neutralised first, so evidence cannot break out of its quote.
"""

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

import prompts
from retrieval.evidence import EvidenceItem, EvidencePack
from service.drafting.subject import DraftSubject

PROMPTS_DIR = Path(prompts.__file__).parent
SYSTEM_TEMPLATE = "partials/system.j2"
_DELIMITER = re.compile(r"<\s*(/?)\s*evidence", re.IGNORECASE)


@dataclass(frozen=True)
class PromptEvidence:
    """One evidence item as the prompt shows it: no author, nothing beyond the record."""

    id: str
    kind: str
    date: str
    source: str
    title: str | None
    text: str

    @classmethod
    def of(cls, item: EvidenceItem) -> "PromptEvidence":
        return cls(
            id=item.id,
            kind=item.kind,
            date=item.occurred_at.date().isoformat(),
            source=_quoted(item.source).replace('"', "'"),
            title=_quoted(item.title).replace('"', "'") if item.title else None,
            text=_quoted(item.text),
        )


@dataclass(frozen=True)
class PromptContext:
    subject: DraftSubject
    period: str
    evidence: list[PromptEvidence]
    sections: list[str]
    sentences_per_section: int


@dataclass(frozen=True)
class RenderedPrompt:
    template: str
    template_hash: str
    system: str
    user: str


def _quoted(text: str) -> str:
    return _DELIMITER.sub(lambda m: f"\u2039{m.group(1)}evidence", text)


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(PROMPTS_DIR),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )


@cache
def sections_for(kind: str) -> tuple[list[str], int]:
    """The headings a draft kind asks for, and how many sentences each may hold."""
    spec = json.loads((PROMPTS_DIR / "sections.json").read_text())[kind]
    return list(spec["sections"]), int(spec["sentences_per_section"])


def template_name(kind: str) -> str:
    return f"{kind}.j2"


@cache
def template_hash(kind: str) -> str:
    """sha256 over the kind's template and every partial, so any prompt change shows."""
    digest = hashlib.sha256()
    partials = [n for n in environment().list_templates(extensions=["j2"]) if "/" in n]
    names = [template_name(kind), "sections.json", *sorted(partials)]
    for name in dict.fromkeys(names):
        digest.update(name.encode())
        digest.update((PROMPTS_DIR / name).read_bytes())
    return digest.hexdigest()


def context_for(pack: EvidencePack, subject: DraftSubject, period: str) -> PromptContext:
    sections, per_section = sections_for(subject.kind)
    return PromptContext(
        subject=subject,
        period=period,
        evidence=[PromptEvidence.of(item) for item in pack.items],
        sections=sections,
        sentences_per_section=per_section,
    )


def render(context: PromptContext) -> RenderedPrompt:
    env = environment()
    variables = {
        "subject": context.subject,
        "period": context.period,
        "evidence": context.evidence,
        "sections": context.sections,
        "sentences_per_section": context.sentences_per_section,
    }
    kind = context.subject.kind
    return RenderedPrompt(
        template=template_name(kind),
        template_hash=template_hash(kind),
        system=env.get_template(SYSTEM_TEMPLATE).render(),
        user=env.get_template(template_name(kind)).render(**variables),
    )
