"""A rewrite of a flagged sentence that keeps its citations: proposed beside the original,
applied as a person's edit.

Why the bias room and not drafting: a rewrite is asked of a flag (a check's key, its
sentence and its measure) and judged by the check that raised it; drafting's parts are
reused as they are (its model client and retries, its system message, its quoting of
evidence as data), and drafting knows nothing of flags.

- With an LLM configured, the model gets `prompts/rewrite/sentence.j2` after the drafts'
  own system message, with only the evidence the sentence cites and may rest on, quoted as
  drafting quotes it. It answers in the drafts' schema with exactly one sentence, which
  must cite only ids the original cited, and at least one (new claims are hard to check;
  new citations are not). An answer that breaks this is sent back with the reason, as a
  malformed draft is; after the last try the caller gets `RewriteFailed` and nothing is
  proposed.
- Offline, a template: the first sentence of the first item the sentence cites, trimmed,
  said to be a template.

Evidence that reads as instructions to a model is never a source: a flag on such a
sentence (`prompt_injection`) is not rewritten, and such an item is neither quoted nor
citable. Applying saves the sentence as an edit of the version the check saw
(`save_or_keep_edit`), so an apply after someone else's save is kept, not lost.
"""

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from domain.errors import Conflict, Invalid, Unavailable
from service.access.principal import Principal
from service.audit import audit
from service.bias.gate import INJECTION_MEASURE
from service.bias.suggestions import (
    CitedItem,
    cited_items,
    first_sentence,
    model_note,
    template_note,
)
from service.db.models import Draft, DraftCheck, Person
from service.drafting.injection_flags import evidence_marks
from service.drafting.llm import ChatRunnable, chat_model, draft_with_model
from service.drafting.prompting import (
    PROMPTS_DIR,
    SYSTEM_TEMPLATE,
    PromptEvidence,
    RenderedPrompt,
    environment,
    quoted,
)
from service.drafting.queries import writable_draft
from service.drafting.store import EditOutcome, draft_evidence, load_version, save_or_keep_edit
from service.drafting.structure import DraftBody, DraftSection, DraftSentence
from service.drafting.subject import DraftSubject
from service.settings import Settings

REWRITE_TEMPLATE = "rewrite/sentence.j2"
MAX_SENTENCE_CHARS = 2000
Origin = Literal["llm", "template"]
_CITED_IN_TEXT = re.compile(r"\[\s*(E\d+(?:\s*[,;]\s*E\d+)*)\s*\]")


class RewriteRefused(Conflict):
    """The flag's sentence cannot be rewritten now; the message says why and what to do."""


class RewriteFailed(Unavailable):
    """The model's rewrite broke the rules on every try; nothing was proposed."""


class RewriteInvalid(Invalid):
    """A rewrite sent to apply is not one: empty, or citing what the sentence did not."""


@dataclass(frozen=True)
class FlaggedSentence:
    """A flag of a check and the sentence it sits on, with what a rewrite may rest on."""

    draft_id: int
    version: int  # the version the check saw
    key: str
    measure: str
    phrase: str
    advice: str  # the flag's stored suggestion
    section: int
    index: int  # of the sentence in its section
    start: int  # the phrase's span in the sentence
    end: int
    sentence: DraftSentence
    body: DraftBody
    sources: tuple[CitedItem, ...]  # the cited items a rewrite may rest on, with their text
    subject: DraftSubject
    period: str

    @property
    def allowed(self) -> tuple[str, ...]:
        """The ids a rewrite may cite: those of `sources`, in the order cited."""
        return tuple(item.id for item in self.sources)


@dataclass(frozen=True)
class Proposal:
    """A proposed rewrite: the sentence, who made it, and what to tell the person."""

    target: FlaggedSentence
    sentence: DraftSentence
    origin: Origin
    model: str | None
    note: str


# ---------------------------------------------------------------- the flag and its sentence


def flagged_for(engine: Engine, principal: Principal, draft_id: int, key: str) -> FlaggedSentence:
    """`flagged_sentence` of a draft the principal may change, read in a short transaction
    of its own, so that no database connection waits while a model writes."""
    with engine.connect() as connection:
        writable_draft(connection, principal, draft_id)
        return flagged_sentence(connection, draft_id, key)


def flagged_sentence(
    connection: Connection, draft_id: int, key: str, *, version: int | None = None
) -> FlaggedSentence:
    """Flag `key` of the draft's latest check (or of its latest check of `version`), its
    sentence and the evidence it cites; RewriteRefused when there is nothing to rewrite."""
    check = _check(connection, draft_id, version)
    seen = f"its check of version {version}" if version is not None else "its latest check"
    if check is None:
        raise RewriteRefused(
            f"draft {draft_id} has no bias check{f' of version {version}' if version else ''}: "
            "check it, then ask for a rewrite",
            field="flag",
        )
    flag = next((f for f in check.flags if f.get("key") == key), None)
    if flag is None:
        raise RewriteRefused(f"draft {draft_id} has no flag {key} on {seen}", field="flag")
    if flag.get("measure") == INJECTION_MEASURE:
        raise RewriteRefused(
            f"flag {key} marks a sentence that relies on evidence reading as instructions to "
            "a model, which is never a source of a rewrite: remove the sentence or keep it "
            "with a reason",
            field="flag",
        )
    body = load_version(connection, draft_id, check.version).body
    sentence = _sentence_at(body, flag, draft_id, key)
    evidence = draft_evidence(connection, draft_id)
    marks = evidence_marks(evidence)
    stored = {str(e["id"]): CitedItem.of(e) for e in evidence if "id" in e}
    unusable = {k for k, mark in marks.items() if mark.signals}
    return FlaggedSentence(
        draft_id=draft_id,
        version=check.version,
        key=key,
        measure=str(flag["measure"]),
        phrase=str(flag["phrase"]),
        advice=str(flag.get("suggestion", "")),
        section=int(flag["section"]),
        index=int(flag["sentence"]),
        start=int(flag["start"]),
        end=int(flag["end"]),
        sentence=sentence,
        body=body,
        sources=tuple(cited_items(sentence.evidence, stored, unusable)),
        subject=_subject(connection, draft_id),
        period=_period(connection, draft_id),
    )


def _check(connection: Connection, draft_id: int, version: int | None) -> Any:
    statement = select(DraftCheck.version, DraftCheck.flags).where(DraftCheck.draft_id == draft_id)
    if version is not None:
        statement = statement.where(DraftCheck.version == version)
    return connection.execute(statement.order_by(DraftCheck.id.desc()).limit(1)).one_or_none()


def _sentence_at(body: DraftBody, flag: dict[str, Any], draft_id: int, key: str) -> DraftSentence:
    section, index = flag.get("section"), flag.get("sentence")
    if (
        isinstance(section, int)
        and isinstance(index, int)
        and 0 <= section < len(body.sections)
        and 0 <= index < len(body.sections[section].sentences)
    ):
        return body.sections[section].sentences[index]
    raise RewriteRefused(
        f"flag {key} of draft {draft_id} names no sentence of the version it checked",
        field="flag",
    )


def _subject(connection: Connection, draft_id: int) -> DraftSubject:
    """What a prompt may know of the draft's person: as drafting's `subject_of`."""
    row = connection.execute(
        select(Person.name, Person.level, Person.job_family, Draft.kind)
        .join(Draft, Draft.subject_id == Person.id)
        .where(Draft.id == draft_id)
    ).one()
    first = row.name.split()[0] if row.name.split() else row.name
    return DraftSubject(row.name, first, row.level, row.job_family, row.kind)


def _period(connection: Connection, draft_id: int) -> str:
    return str(connection.execute(select(Draft.period).where(Draft.id == draft_id)).scalar_one())


def rewritable(target: FlaggedSentence) -> tuple[str, ...]:
    """The ids a rewrite may cite; RewriteRefused when the sentence cites none."""
    if not target.allowed:
        raise RewriteRefused(
            f"the sentence of flag {target.key} cites no evidence a rewrite can rest on: cite "
            "the item that shows what happened, save, check again and ask again",
            field="flag",
        )
    return target.allowed


# ---------------------------------------------------------------- proposing


async def propose_rewrite(target: FlaggedSentence, settings: Settings) -> Proposal:
    """The model's rewrite when an LLM is configured, else the offline template."""
    if settings.llm_model is None:
        return template_rewrite(target)
    return await model_rewrite(
        target,
        chat_model(settings),
        settings.llm_model,
        tries=settings.llm_format_retries + 1,
        format_retries=settings.llm_format_retries,
    )


def template_rewrite(target: FlaggedSentence) -> Proposal:
    """The first sentence of the first cited item that has one (the first the draft does
    not already say), citing what the original cited (of what a rewrite may rest on)."""
    allowed = rewritable(target)
    taken = [s.text for s in target.body.sentences()]
    for item in target.sources:
        text = first_sentence(item, taken)
        if text is not None:
            sentence = DraftSentence(text=text, evidence=list(allowed))
            return Proposal(target, sentence, "template", None, template_note(item))
    raise RewriteRefused(
        f"the evidence that flag {target.key}'s sentence cites ({', '.join(allowed)}) holds "
        "no sentence to build a template from: reword the sentence yourself",
        field="flag",
    )


async def model_rewrite(
    target: FlaggedSentence,
    model: ChatRunnable,
    name: str,
    *,
    tries: int,
    format_retries: int,
) -> Proposal:
    """Ask for the one sentence; an answer that is not one, or cites what the original did
    not, is sent back with the reason, `tries` times in all."""
    allowed = rewritable(target)
    prompt = rewrite_prompt(target)
    problem = ""
    for _ in range(max(tries, 1)):
        body = await draft_with_model(model, prompt, format_retries=format_retries)
        sentence, problem = _one_sentence(body, allowed)
        if sentence is not None:
            note = model_note(name, target.sources)
            return Proposal(target, sentence, "llm", name, note)
        prompt = _asked_again(prompt, problem, allowed)
    raise RewriteFailed(
        f"the model's rewrite of flag {target.key} {problem} after {max(tries, 1)} "
        f"tr{'ies' if tries > 1 else 'y'}; a rewrite cites only what the sentence cited "
        f"({', '.join(allowed)}), at least one. Nothing was proposed: ask again, or reword "
        "the sentence yourself",
        field="flag",
    )


def _one_sentence(body: DraftBody, allowed: Sequence[str]) -> tuple[DraftSentence | None, str]:
    """The answer's one sentence, or None and what is wrong with it."""
    sentences = body.sentences()
    if len(sentences) != 1:
        return None, f"held {len(sentences)} sentences, not one"
    text, evidence = split_citations(sentences[0].text, sentences[0].evidence)
    problem = citation_problem(evidence, allowed) or ("was empty" if not text else None)
    if problem is not None:
        return None, problem
    return DraftSentence(text=text, evidence=evidence), ""


def split_citations(text: str, evidence: Sequence[str]) -> tuple[str, list[str]]:
    """One line of text without bracketed ids ("... [E4]"), and every id cited, listed or
    bracketed, once each: a bracketed id is a citation like any other."""
    bracketed = [e.strip() for m in _CITED_IN_TEXT.finditer(text) for e in re.split("[,;]", m[1])]
    clean = " ".join(_CITED_IN_TEXT.sub(" ", text).split())
    return clean, list(dict.fromkeys([*(e.strip() for e in evidence), *bracketed]))


def citation_problem(evidence: Sequence[str], allowed: Sequence[str]) -> str | None:
    """What is wrong with a rewrite's citations, in words; None when nothing is."""
    added = [e for e in evidence if e not in allowed]
    if added:
        named = ", ".join(e[:20] for e in added[:3]) + (" ..." if len(added) > 3 else "")
        return f"cites {named}, which the sentence does not cite"
    if not evidence:
        return "cites no evidence"
    return None


def _asked_again(prompt: RenderedPrompt, problem: str, allowed: Sequence[str]) -> RenderedPrompt:
    """The prompt with the reason the last answer was not used (ids and counts only)."""
    again = (
        f"\n\nYour last answer could not be used: it {problem}. Answer again with exactly one "
        f"sentence citing only {', '.join(allowed)} (at least one), as JSON only."
    )
    return RenderedPrompt(prompt.template, prompt.template_hash, prompt.system, prompt.user + again)


def rewrite_prompt(target: FlaggedSentence) -> RenderedPrompt:
    """The system message drafts get, and the rewrite request with the cited evidence."""
    env = environment()
    user = env.get_template(REWRITE_TEMPLATE).render(
        subject=target.subject,
        period=target.period,
        sentence=quoted(target.sentence.text),
        phrase=quoted(target.phrase),
        measure=target.measure.replace("_", " "),
        advice=quoted(target.advice),
        cited=list(target.allowed),
        evidence=[prompt_evidence(item) for item in target.sources],
    )
    system = env.get_template(SYSTEM_TEMPLATE).render()
    return RenderedPrompt(REWRITE_TEMPLATE, rewrite_template_hash(), system, user)


def prompt_evidence(item: CitedItem) -> PromptEvidence:
    """A cited item as drafting's evidence block quotes it (never one that reads as
    instructions: those are not sources of a rewrite)."""
    return PromptEvidence(
        id=item.id,
        kind=item.kind or "record",
        date=item.day.isoformat() if item.day else "unknown",
        source=quoted(item.source).replace('"', "'"),
        title=quoted(item.title).replace('"', "'") if item.title else None,
        text=quoted(item.text),
        instructions=[],
    )


@cache
def rewrite_template_hash() -> str:
    """sha256 over the rewrite request and every partial it is sent with."""
    digest = hashlib.sha256()
    for name in (REWRITE_TEMPLATE, SYSTEM_TEMPLATE, "partials/evidence.j2"):
        digest.update(name.encode())
        digest.update((PROMPTS_DIR / name).read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------- applying


def apply_rewrite(
    connection: Connection,
    draft_id: int,
    key: str,
    *,
    based_on: int,
    text: str,
    evidence: Sequence[str],
    author: str,
) -> EditOutcome:
    """Replace flag `key`'s sentence in version `based_on` (the version its check saw)
    with the rewrite, saved as the person's edit: the new current version, or, when
    someone saved since, a kept version that is not current (the caller tells them)."""
    target = flagged_sentence(connection, draft_id, key, version=based_on)
    allowed = rewritable(target)
    clean, cited = split_citations(text, evidence)
    if not clean:
        raise RewriteInvalid("the rewritten sentence is empty", field="text")
    if len(clean) > MAX_SENTENCE_CHARS:
        raise RewriteInvalid(
            f"the rewritten sentence is over {MAX_SENTENCE_CHARS} characters", field="text"
        )
    problem = citation_problem(cited, allowed)
    if problem is not None:
        raise RewriteInvalid(
            f"the rewrite {problem}: a rewrite of flag {key} cites only what its sentence "
            f"cited ({', '.join(allowed)}), at least one",
            field="evidence",
        )
    body = replaced(target, DraftSentence(text=clean, evidence=cited))
    outcome = save_or_keep_edit(
        connection, draft_id=draft_id, based_on=based_on, body=body, author=author
    )
    audit(
        connection,
        actor=author,
        action="flag.rewrite_applied",
        entity="draft",
        entity_id=str(draft_id),
        before={"version": based_on, "flag": key},
        after={
            "version": outcome.saved.version if outcome.saved else None,
            "kept_version": outcome.kept_version,
            "evidence": cited,
        },
    )
    return outcome


def replaced(target: FlaggedSentence, sentence: DraftSentence) -> DraftBody:
    """The checked version's body with the flag's sentence replaced."""
    sections = []
    for s, section in enumerate(target.body.sections):
        sentences = [
            sentence if (s, i) == (target.section, target.index) else old
            for i, old in enumerate(section.sentences)
        ]
        sections.append(DraftSection(heading=section.heading, sentences=sentences))
    return DraftBody(sections=sections)
