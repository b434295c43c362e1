"""Drafting for one person, or for everyone in a cycle: retrieve, render, write, check, store.

The model call is the only slow step, so drafting is async around it: the database work
(retrieval before, the citation check and storing after) runs in worker threads, and a
cycle keeps a bounded number of model calls in flight. A cycle is resumable: drafts already
stored for the period are skipped, and a failure is recorded and left for the next run
without touching any other draft.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from domain.periods import Period
from retrieval.embedding import Embedder
from retrieval.evidence import EvidencePack
from retrieval.schema import Chunk
from retrieval.search import retrieve_evidence
from service.cycles.store import cycle_id
from service.db.models import Draft, Person
from service.drafting.citations import CitationReport, check_citations
from service.drafting.injection_flags import EvidenceMark, mark_pack
from service.drafting.llm import ChatRunnable, DraftingFailed, chat_model, draft_with_model
from service.drafting.offline import OFFLINE_LABEL, draft_offline
from service.drafting.prompting import RenderedPrompt, context_for, render
from service.drafting.store import save_generated
from service.drafting.structure import DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.directory import find_person
from service.ingest.progress import Advance, NoProgress, ProgressReporter
from service.settings import Settings

_T = TypeVar("_T")
Write = Callable[[EvidencePack, DraftSubject, RenderedPrompt], Awaitable[DraftBody]]


@dataclass(frozen=True)
class Drafter:
    """Who writes: a chat model, or the offline drafter when none is configured."""

    origin: str  # "llm" or "offline"
    model: str
    write: Write
    label: str | None = None  # shown with every draft it writes


def offline_drafter() -> Drafter:
    async def write(pack: EvidencePack, subject: DraftSubject, _: RenderedPrompt) -> DraftBody:
        return draft_offline(pack, subject)

    return Drafter(origin="offline", model="offline", write=write, label=OFFLINE_LABEL)


def model_drafter(model: ChatRunnable, name: str, *, format_retries: int) -> Drafter:
    async def write(_: EvidencePack, __: DraftSubject, prompt: RenderedPrompt) -> DraftBody:
        return await draft_with_model(model, prompt, format_retries=format_retries)

    return Drafter(origin="llm", model=name, write=write)


def drafter_from(settings: Settings) -> Drafter:
    if settings.llm_model is None:
        return offline_drafter()
    return model_drafter(
        chat_model(settings), settings.llm_model, format_retries=settings.llm_format_retries
    )


@dataclass(frozen=True)
class Drafting:
    """What every draft of a run shares: where to store, how to retrieve, who writes."""

    engine: Engine
    settings: Settings
    embedder: Embedder
    drafter: Drafter
    actor: str


@dataclass(frozen=True)
class DraftOutcome:
    person: str
    kind: str
    period: str  # the period's name, as the draft is stored under
    draft_id: int | None = None
    version: int | None = None
    body: DraftBody | None = None
    citations: CitationReport | None = None
    evidence: EvidencePack | None = None
    message: str | None = None  # why nothing was drafted
    outside_model_s: float = 0.0
    model_s: float = 0.0


@dataclass(frozen=True)
class Prepared:
    """Everything a draft is made from, before the drafter runs: the evidence pack (marked
    for instruction-like text), the rendered prompt and the review cycle."""

    person: Person
    subject: DraftSubject
    pack: EvidencePack
    prompt: RenderedPrompt
    cycle_id: int | None
    marks: dict[str, EvidenceMark]  # what each item holds that reads as instructions


def subject_of(person: Person, kind: str) -> DraftSubject:
    """Name, level and job family: all that drafting knows of a person."""
    return DraftSubject(
        name=person.name,
        first_name=person.name.split()[0] if person.name.split() else person.name,
        level=person.level,
        job_family=person.job_family,
        kind=kind,
    )


def prepare(run: Drafting, person: Person, kind: str, period: Period) -> Prepared:
    """Retrieve, mark and render what a draft of `kind` for `person` in `period` is made
    from. Public because the counterfactual probe drafts from the same preparation with a
    swapped name, so both paths see the same evidence and prompt. The review cycle is the
    one named by the period, if HR has set it up; a draft never creates one."""
    with run.engine.connect() as conn:
        pack = retrieve_evidence(
            conn,
            run.embedder,
            subject_id=person.id,
            period=period,
            draft_kind=kind,
            token_budget=run.settings.draft_token_budget,
        )
        cycle = cycle_id(conn, period.name)
    subject = subject_of(person, kind)
    pack, marks = mark_pack(pack)  # before anything reads it: prompt, drafter and check
    prompt = render(context_for(pack, subject, period.name))
    return Prepared(person, subject, pack, prompt, cycle, marks)


def provenance(run: Drafting, prepared: Prepared, period: Period) -> dict[str, Any]:
    """Everything needed to answer "why does it say this?" later."""
    pack = prepared.pack
    return {
        "drafter": run.drafter.origin,
        "model": run.drafter.model,
        "label": run.drafter.label,
        "template": prepared.prompt.template,
        "template_hash": prepared.prompt.template_hash,
        "period": period.name,
        "settings": {
            "embedding_model": run.settings.embedding_model,
            "token_budget": pack.token_budget,
            "ranking": pack.ranking,
            "llm_base_url": run.settings.llm_base_url if run.drafter.origin == "llm" else None,
            "llm_temperature": run.settings.llm_temperature
            if run.drafter.origin == "llm"
            else None,
        },
        "candidates": pack.candidates,
        "evidence": [
            {
                **item.source_facts(),
                "text": item.text,
                "instruction_signals": list(item.instruction_signals or ()),
            }
            for item in pack.items
        ],
    }


def _store(
    run: Drafting, prepared: Prepared, period: Period, body: DraftBody
) -> tuple[int, int, DraftBody, CitationReport]:
    pack_ids = [item.id for item in prepared.pack.items]
    checked, report = check_citations(body, pack_ids, prepared.marks)
    with run.engine.begin() as conn:
        draft_id, version = save_generated(
            conn,
            subject_id=prepared.person.id,
            kind=prepared.subject.kind,
            period=period.name,
            cycle_id=prepared.cycle_id,
            body=checked,
            report=report,
            origin=run.drafter.origin,
            author=run.actor,
            provenance=provenance(run, prepared, period),
        )
    return draft_id, version, checked, report


async def draft_person(run: Drafting, person: Person, kind: str, period: Period) -> DraftOutcome:
    """One draft, stored as the next version of (person, kind, period). An empty history
    gives an outcome with a message and stores nothing; a model failure raises
    DraftingFailed and stores nothing."""
    prepared, preparing = await asyncio.to_thread(_timed, prepare, run, person, kind, period)
    if not prepared.pack.items:
        return DraftOutcome(
            person.email, kind, period.name, evidence=prepared.pack, message=prepared.pack.message
        )
    before_model = time.perf_counter()
    body = await run.drafter.write(prepared.pack, prepared.subject, prepared.prompt)
    model_s = time.perf_counter() - before_model
    if not body.sentences() and any(mark.signals for mark in prepared.marks.values()):
        # the offline drafter left out what reads as instructions, and nothing else was usable
        return DraftOutcome(
            person.email,
            kind,
            period.name,
            evidence=prepared.pack,
            message=_nothing_usable(prepared),
        )
    (draft_id, version, checked, report), storing = await asyncio.to_thread(
        _timed, _store, run, prepared, period, body
    )
    return DraftOutcome(
        person.email,
        kind,
        period.name,
        draft_id=draft_id,
        version=version,
        body=checked,
        citations=report,
        evidence=prepared.pack,
        outside_model_s=preparing + storing,
        model_s=model_s,
    )


def _nothing_usable(prepared: Prepared) -> str:
    marked = sum(1 for mark in prepared.marks.values() if mark.signals)
    return (
        f"nothing drafted: {marked} of the {len(prepared.pack.items)} evidence items read as "
        "instructions to a model, which are never copied into a draft, and the rest gave no "
        "sentence"
    )


def _timed(work: Callable[..., _T], *args: Any) -> tuple[_T, float]:
    """The work's result and its own duration, not counting the wait for a worker thread."""
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started


@dataclass
class CycleSummary:
    drafted: list[DraftOutcome] = field(default_factory=list)
    skipped: int = 0
    empty: list[DraftOutcome] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # person, kind, reason
    seconds: float = 0.0


def load_person(engine: Engine, reference: str) -> Person:
    """A person by employee_id or email (UnknownPerson otherwise)."""
    with engine.connect() as conn:
        ref = find_person(conn, reference)
    with Session(engine) as session:
        return session.get_one(Person, ref.id)


def cycle_people(engine: Engine, period: Period, model: str) -> list[Person]:
    """Everyone with evidence in the period, in a stable order."""
    has_evidence = (
        select(Chunk.subject_id)
        .where(
            Chunk.embedding_model == model,
            Chunk.occurred_at >= period.starts_at,
            Chunk.occurred_at < period.ends_before,
        )
        .distinct()
    )
    query = select(Person).where(Person.id.in_(has_evidence)).order_by(Person.id)
    with Session(engine) as session:
        return list(session.scalars(query))


def _finished(engine: Engine, period: Period, kinds: Sequence[str]) -> set[tuple[int, str]]:
    """(person, kind) of the drafts already stored for the period, by its name."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(Draft.subject_id, Draft.kind).where(
                Draft.period == period.name, Draft.kind.in_(kinds)
            )
        ).all()
    return {(r.subject_id, r.kind) for r in rows}


async def draft_cycle(
    run: Drafting,
    period: Period,
    kinds: Sequence[str],
    *,
    concurrency: int,
    progress: ProgressReporter | None = None,
) -> CycleSummary:
    """Draft every kind for everyone with evidence in the period, `concurrency` at a time,
    skipping drafts that already exist (so a failed run can simply be run again)."""
    started = time.perf_counter()
    people = await asyncio.to_thread(cycle_people, run.engine, period, run.settings.embedding_model)
    finished = await asyncio.to_thread(_finished, run.engine, period, kinds)
    todo = [(p, k) for p in people for k in kinds if (p.id, k) not in finished]
    summary = CycleSummary(skipped=len(people) * len(kinds) - len(todo))
    gate = asyncio.Semaphore(concurrency)
    with (progress or NoProgress()).task(f"drafting {period.name}", len(todo)) as advance:
        await asyncio.gather(*(_one(run, summary, gate, advance, p, k, period) for p, k in todo))
    summary.seconds = time.perf_counter() - started
    return summary


async def _one(
    run: Drafting,
    summary: CycleSummary,
    gate: asyncio.Semaphore,
    advance: Advance,
    person: Person,
    kind: str,
    period: Period,
) -> None:
    async with gate:
        try:
            outcome = await draft_person(run, person, kind, period)
        except DraftingFailed as exc:
            summary.failed.append((person.email, kind, str(exc)))
        else:
            (summary.drafted if outcome.draft_id else summary.empty).append(outcome)
        advance(1)
