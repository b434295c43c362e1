"""Rendering a draft kind's prompt from its jinja2 template and typed context.

One environment for prompts, created once: StrictUndefined (a missing value is an error, not
an empty string in front of a model), no autoescape (this is not HTML). Evidence text is
quoted as data between <evidence> delimiters, and neutralised first so it cannot forge one:
characters that render as nothing are dropped, anything that opens a tag (`<`, its
full-width and look-alike forms) becomes U+2039 (a single angle quote), chat-template
markers (`[INST]`) and bracketed citation ids (`[E12]`) lose their brackets. An item that
reads as instructions to a model (`injection.py`) is quoted line by line behind "> " with
a visible note that it is data, never to be followed, repeated or cited.
"""

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

import prompts
from domain.draft_options import Tone
from retrieval.evidence import EvidenceItem, EvidencePack
from service.drafting.injection_text import strip_invisible
from service.drafting.subject import DraftSubject

PROMPTS_DIR = Path(prompts.__file__).parent
SYSTEM_TEMPLATE = "partials/system.j2"
# A tag opener (`<`, full-width, small and look-alike forms) before a name, `/`, `|` or `!`.
_TAG_OPEN = re.compile(
    "[<\uff1c\ufe64\u2039\u3008\u27e8\u02c2\u1438\u2329\u276e](?=\\s*+[/|!]?\\s*+[^\\W\\d_])"
)
_BRACKETED = re.compile(
    r"\[\s*+(/?\s*+INST|E\d++(?:\s*+[,;]\s*+E\d++)*+)\s*+\]", re.IGNORECASE
)  # possessive: long runs of white space in evidence cannot make it backtrack


@dataclass(frozen=True)
class PromptEvidence:
    """One evidence item as the prompt shows it: no author, nothing beyond the record."""

    id: str
    kind: str
    date: str
    source: str
    title: str | None
    text: str
    instructions: list[str]  # the detector's rules it matched; empty for ordinary evidence

    @classmethod
    def of(cls, item: EvidenceItem) -> "PromptEvidence":
        signals = list(item.instruction_signals or ())
        text = quoted(item.text)
        if signals:
            text = "\n".join(f"> {line}" for line in text.splitlines())
        return cls(
            id=item.id,
            kind=item.kind,
            date=item.occurred_at.date().isoformat(),
            source=quoted(item.source).replace('"', "'"),
            title=quoted(item.title).replace('"', "'") if item.title else None,
            text=text,
            instructions=signals,
        )


@dataclass(frozen=True)
class PromptContext:
    subject: DraftSubject
    period: str
    evidence: list[PromptEvidence]
    sections: list[str]
    sentences_per_section: int
    tone: Tone | None = None


@dataclass(frozen=True)
class RenderedPrompt:
    template: str
    template_hash: str
    system: str
    user: str
    sections: tuple[str, ...] = ()  # the headings asked for, in order


def quoted(text: str) -> str:
    """Text from people at work (evidence, a draft's sentence) that cannot open or close a
    delimiter of the prompt."""
    text = _TAG_OPEN.sub("\u2039", strip_invisible(text))
    return _BRACKETED.sub(lambda m: f"({m.group(1)})", text)


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
    every = environment().list_templates(extensions=["j2"])
    partials = [n for n in every if n.startswith("partials/")]  # rewrite/ is not a draft's
    names = [template_name(kind), "sections.json", *sorted(partials)]
    for name in dict.fromkeys(names):
        digest.update(name.encode())
        digest.update((PROMPTS_DIR / name).read_bytes())
    return digest.hexdigest()


def context_for(
    pack: EvidencePack,
    subject: DraftSubject,
    period: str,
    *,
    questions: Sequence[str] | None = None,
    tone: Tone | None = None,
) -> PromptContext:
    """The prompt's context. A review cycle's `questions` for the kind, where its set-up
    has them, are the sections asked for (a draft answers the cycle's questions); HR wrote
    them, yet they are quoted like evidence, since nothing but the template gives orders."""
    sections, per_section = sections_for(subject.kind)
    return PromptContext(
        subject=subject,
        period=period,
        evidence=[PromptEvidence.of(item) for item in pack.items],
        sections=[quoted(q) for q in questions] if questions else sections,
        sentences_per_section=per_section,
        tone=tone,
    )


def render(context: PromptContext) -> RenderedPrompt:
    env = environment()
    variables = {
        "subject": context.subject,
        "period": context.period,
        "evidence": context.evidence,
        "sections": context.sections,
        "sentences_per_section": context.sentences_per_section,
        "tone": None if context.tone is None else context.tone.value,
    }
    kind = context.subject.kind
    return RenderedPrompt(
        template=template_name(kind),
        template_hash=template_hash(kind),
        system=env.get_template(SYSTEM_TEMPLATE).render(),
        user=env.get_template(template_name(kind)).render(**variables),
        sections=tuple(context.sections),
    )
