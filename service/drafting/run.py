"""Drafting for one person, or for everyone in a cycle: retrieve, render, write, check, store.

The model call is the only slow step, so drafting is async around it: the database work
(retrieval before, the citation check and storing after) runs in worker threads. A cycle
keeps `concurrency` model calls in flight and only those wait for a turn: the next drafts
are prepared while the model writes, and stored after it, so a slow model is never kept
waiting by the work around it. That work is CPU, though, one core's worth per process, so
a large cycle is spread over `FAIRDRAFT_DRAFTING_PROCESSES` processes (`spread.py`) that
share the model calls between them. A cycle is resumable: drafts already stored for the
period are skipped, and a failure is recorded and left for the next run without touching
any other draft.
"""

import asyncio
import contextlib
import time
import weakref
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from domain.draft_options import DEFAULT_OPTIONS, DraftOptions
from domain.periods import Period
from retrieval.embedding import Embedder, Vectors
from retrieval.evidence import EvidencePack
from retrieval.queries import queries_for
from retrieval.schema import Chunk
from retrieval.search import QUERY_VECTORS, retrieve_evidence
from service.cycles.store import DraftingCycle, drafting_cycle
from service.db.engine import make_engine
from service.db.models import Draft, Person
from service.drafting.citations import CitationReport, check_citations
from service.drafting.injection_flags import EvidenceMark, mark_pack
from service.drafting.llm import ChatRunnable, DraftingFailed, chat_model, draft_with_model
from service.drafting.offline import OFFLINE_LABEL, draft_offline
from service.drafting.prompting import RenderedPrompt, context_for, render
from service.drafting.spread import Claims, Send, Spread
from service.drafting.store import save_generated
from service.drafting.structure import DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.directory import find_person
from service.ingest.progress import NoProgress, ProgressReporter
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
    # Rebuilt the same in another process from the settings alone (the offline drafter,
    # and the model of the settings), so a cycle may be spread over processes.
    portable: bool = False


def offline_drafter() -> Drafter:
    async def write(pack: EvidencePack, subject: DraftSubject, _: RenderedPrompt) -> DraftBody:
        return draft_offline(pack, subject)

    return Drafter(
        origin="offline", model="offline", write=write, label=OFFLINE_LABEL, portable=True
    )


def model_drafter(model: ChatRunnable, name: str, *, format_retries: int) -> Drafter:
    async def write(_: EvidencePack, __: DraftSubject, prompt: RenderedPrompt) -> DraftBody:
        return await draft_with_model(model, prompt, format_retries=format_retries)

    return Drafter(origin="llm", model=name, write=write)


def drafter_from(settings: Settings) -> Drafter:
    """The drafter the settings name. A model drafter makes one chat model, with its own
    connections, per event loop it is used in: a job, a command or a drafting process is
    one `asyncio.run`, and connections cannot outlive their loop (`chat_model`)."""
    if settings.llm_model is None:
        return offline_drafter()
    models = _PerLoop(lambda: chat_model(settings, own_pool=True))
    retries = settings.llm_format_retries

    async def write(_: EvidencePack, __: DraftSubject, prompt: RenderedPrompt) -> DraftBody:
        return await draft_with_model(models.get(), prompt, format_retries=retries)

    return Drafter(origin="llm", model=settings.llm_model, write=write, portable=True)


class _PerLoop:
    """One chat model per running event loop, made on first use in it (and dropped with it)."""

    def __init__(self, make: Callable[[], ChatRunnable]) -> None:
        self._make = make
        self._models: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ChatRunnable] = (
            weakref.WeakKeyDictionary()
        )

    def get(self) -> ChatRunnable:
        loop = asyncio.get_running_loop()
        model = self._models.get(loop)
        if model is None:
            model = self._models[loop] = self._make()
        return model


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
    note: str | None = None  # what the writer should know of how it was drafted
    outside_model_s: float = 0.0
    model_s: float = 0.0


@dataclass(frozen=True)
class Prepared:
    """Everything a draft is made from, before the drafter runs: the evidence pack (marked
    for instruction-like text), the rendered prompt, the review cycle and the writer's
    options."""

    person: Person
    subject: DraftSubject
    pack: EvidencePack
    prompt: RenderedPrompt
    cycle: DraftingCycle
    marks: dict[str, EvidenceMark]  # what each item holds that reads as instructions
    options: DraftOptions = DEFAULT_OPTIONS


def subject_of(person: Person, kind: str) -> DraftSubject:
    """Name, level and job family: all that drafting knows of a person."""
    return DraftSubject(
        name=person.name,
        first_name=person.name.split()[0] if person.name.split() else person.name,
        level=person.level,
        job_family=person.job_family,
        kind=kind,
    )


def prepare(
    run: Drafting,
    person: Person,
    kind: str,
    period: Period,
    options: DraftOptions = DEFAULT_OPTIONS,
) -> Prepared:
    """Retrieve, mark and render what a draft of `kind` for `person` in `period` is made
    from. Public because the counterfactual probe drafts from the same preparation with a
    swapped name, so both paths see the same evidence and prompt. The review cycle is the
    one named by the period, if HR has set it up (its questions become the sections); a
    draft never creates one."""
    with run.engine.connect() as conn:
        pack = _retrieve(conn, run, person, kind, period, options)
        cycle = drafting_cycle(conn, period.name)
    return _prepared(run, person, kind, period, pack, cycle, options)


def _prepare_in_cycle(
    run: Drafting, person: Person, kind: str, period: Period, cycle: DraftingCycle
) -> Prepared:
    """`prepare`, with the review cycle looked up once for the whole cycle run."""
    with run.engine.connect() as conn:
        pack = _retrieve(conn, run, person, kind, period, DEFAULT_OPTIONS)
    return _prepared(run, person, kind, period, pack, cycle, DEFAULT_OPTIONS)


def _retrieve(
    conn: Connection,
    run: Drafting,
    person: Person,
    kind: str,
    period: Period,
    options: DraftOptions,
) -> EvidencePack:
    return retrieve_evidence(
        conn,
        run.embedder,
        subject_id=person.id,
        period=options.evidence_period or period,
        draft_kind=kind,
        token_budget=run.settings.draft_token_budget,
        exclude_records=options.exclude_records,
    )


def _prepared(
    run: Drafting,
    person: Person,
    kind: str,
    period: Period,
    pack: EvidencePack,
    cycle: DraftingCycle,
    options: DraftOptions,
) -> Prepared:
    subject = subject_of(person, kind)
    pack, marks = mark_pack(pack)  # before anything reads it: prompt, drafter and check
    window = options.evidence_period
    label = period.name if window is None else f"{period.name}, evidence from {window.name}"
    context = context_for(
        pack, subject, label, questions=cycle.questions_for(kind), tone=options.tone
    )
    return Prepared(person, subject, pack, render(context), cycle, marks, options)


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
        "options": prepared.options.as_payload(),
        "questions": list(prepared.prompt.sections),
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
            cycle_id=prepared.cycle.id,
            body=checked,
            report=report,
            origin=run.drafter.origin,
            author=run.actor,
            provenance=provenance(run, prepared, period),
        )
    return draft_id, version, checked, report


async def draft_person(
    run: Drafting,
    person: Person,
    kind: str,
    period: Period,
    options: DraftOptions = DEFAULT_OPTIONS,
) -> DraftOutcome:
    """One draft, stored as the next version of (person, kind, period), written with the
    writer's `options`. An empty history gives an outcome with a message and stores
    nothing; a model failure raises DraftingFailed and stores nothing."""
    return await _draft(run, person, kind, period, _Turns(None, None), options)


@dataclass(frozen=True)
class _Turns:
    """What a draft within a cycle shares with the others: the cycle's review cycle (None
    when drafting one person: looked up with the evidence) and the model calls' gate."""

    cycle: DraftingCycle | None
    model_gate: asyncio.Semaphore | None


async def _draft(
    run: Drafting,
    person: Person,
    kind: str,
    period: Period,
    turns: _Turns,
    options: DraftOptions = DEFAULT_OPTIONS,
) -> DraftOutcome:
    if turns.cycle is None:
        prepared, preparing = await asyncio.to_thread(
            _timed, prepare, run, person, kind, period, options
        )
    else:
        prepared, preparing = await asyncio.to_thread(
            _timed, _prepare_in_cycle, run, person, kind, period, turns.cycle
        )
    if not prepared.pack.items:
        return DraftOutcome(
            person.email, kind, period.name, evidence=prepared.pack, message=prepared.pack.message
        )
    async with turns.model_gate or contextlib.nullcontext():
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
        note=_note(run, prepared),
        outside_model_s=preparing + storing,
        model_s=model_s,
    )


def _note(run: Drafting, prepared: Prepared) -> str | None:
    """What the offline drafter could not do that was asked of it: it writes in one voice
    and under its kind's own headings."""
    if run.drafter.origin != "offline":
        return None
    unmet = []
    if prepared.options.tone is not None:
        unmet.append(f"a {prepared.options.tone.value.replace('_', ' ')} tone")
    if prepared.cycle.questions_for(prepared.subject.kind):
        unmet.append("the cycle's questions as headings")
    if not unmet:
        return None
    asked = " and ".join(unmet)
    return f"the offline drafter writes in one voice under its own headings: {asked} need a model"


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


Failure = tuple[str, str, str]  # person's email, kind, why the drafter failed


@dataclass
class CycleSummary:
    drafted: list[DraftOutcome] = field(default_factory=list)
    skipped: int = 0
    empty: list[DraftOutcome] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, result: "DraftOutcome | Failure") -> None:
        if isinstance(result, DraftOutcome):
            (self.drafted if result.draft_id else self.empty).append(result)
        else:
            self.failed.append(result)


def load_person(engine: Engine, reference: str) -> Person:
    """A person by employee_id or email (UnknownPerson otherwise)."""
    with engine.connect() as conn:
        ref = find_person(conn, reference)
    with Session(engine) as session:
        return session.get_one(Person, ref.id)


def cycle_people(
    engine: Engine, period: Period, model: str, only: Collection[int] | None = None
) -> list[Person]:
    """Everyone with evidence in the period (of `only`, where given), in a stable order."""
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
    if only is not None:
        query = query.where(Person.id.in_(sorted(only)))
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


MIN_DRAFTS_PER_PROCESS = 100  # a helper process costs its imports: ~1.5 s, ~100 drafts' work
AHEAD = 2  # drafts a process has under way per model call it may make: prepared or storing


async def draft_cycle(
    run: Drafting,
    period: Period,
    kinds: Sequence[str],
    *,
    concurrency: int,
    progress: ProgressReporter | None = None,
    processes: int | None = None,
    only: Collection[int] | None = None,
) -> CycleSummary:
    """Draft every kind for everyone with evidence in the period, `concurrency` model calls
    at a time, skipping drafts that already exist (so a failed run can simply be run again).

    `processes` (default FAIRDRAFT_DRAFTING_PROCESSES): how many processes share the work,
    this one included, when the cycle is large enough to pay for starting them
    (`MIN_DRAFTS_PER_PROCESS` each) and the drafter can be rebuilt in them (`portable`).
    `only`: draft for these people alone (a calibration panel's cohort)."""
    started = time.perf_counter()
    people = await asyncio.to_thread(
        cycle_people, run.engine, period, run.settings.embedding_model, only
    )
    finished = await asyncio.to_thread(_finished, run.engine, period, kinds)
    todo = [(p, k) for p in people for k in kinds if (p.id, k) not in finished]
    summary = CycleSummary(skipped=len(people) * len(kinds) - len(todo))
    cycle = await asyncio.to_thread(_cycle_of, run.engine, period)
    wanted = run.settings.drafting_processes if processes is None else processes
    helpers = helper_count(run, wanted, len(todo), concurrency)
    with (progress or NoProgress()).task(f"drafting {period.name}", len(todo)) as advance:

        def record(result: DraftOutcome | Failure) -> None:
            summary.add(result)
            advance(1)

        if helpers:
            await _spread(run, period, cycle, todo, concurrency, helpers, record)
        else:
            items = iter(todo)
            await _draft_claimed(run, period, cycle, lambda: next(items, None), concurrency, record)
    summary.seconds = time.perf_counter() - started
    return summary


def helper_count(run: Drafting, processes: int, drafts: int, concurrency: int) -> int:
    """Processes to start beside this one: none for a drafter that cannot be rebuilt
    elsewhere, and no more than the drafts (and the model calls) go round."""
    if not run.drafter.portable:
        return 0
    return max(0, min(processes, drafts // MIN_DRAFTS_PER_PROCESS, concurrency) - 1)


def _cycle_of(engine: Engine, period: Period) -> DraftingCycle:
    with engine.connect() as conn:
        return drafting_cycle(conn, period.name)


Item = tuple[Person, str]


async def _draft_claimed(
    run: Drafting,
    period: Period,
    cycle: DraftingCycle,
    claim: Callable[[], Item | None],
    concurrency: int,
    record: Callable[[DraftOutcome | Failure], None],
) -> None:
    """Draft the items `claim` hands out until it has none: at most `concurrency` model
    calls at once and `AHEAD` times as many drafts under way. An unexpected error (not a
    drafter's failure, which is recorded) stops the claiming, cancels the drafts under
    way and is raised."""
    turns = _Turns(cycle, asyncio.Semaphore(concurrency))
    room = asyncio.Semaphore(AHEAD * concurrency)
    running: set[asyncio.Task[None]] = set()
    errors: list[BaseException] = []

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        room.release()
        failure = None if task.cancelled() else task.exception()
        if failure is not None:
            errors.append(failure)

    try:
        while not errors:
            await room.acquire()
            item = None if errors else claim()
            if item is None:
                room.release()
                break
            task = asyncio.create_task(_one(run, period, turns, item, record))
            running.add(task)
            task.add_done_callback(ended)
        if not errors:
            await asyncio.gather(*running, return_exceptions=True)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    if errors:
        raise errors[0]


async def _one(
    run: Drafting,
    period: Period,
    turns: _Turns,
    item: Item,
    record: Callable[[DraftOutcome | Failure], None],
) -> None:
    person, kind = item
    try:
        outcome = await _draft(run, person, kind, period, turns)
    except DraftingFailed as exc:
        record((person.email, kind, str(exc)))
    else:
        record(outcome)


# --- spread over processes ----------------------------------------------------------------


@dataclass(frozen=True)
class HelperPart:
    """What a helper process needs to draft its claims like this process would: picklable,
    so no engine, drafter or model, only what rebuilds them."""

    database_url: str
    settings: Settings
    actor: str
    offline: bool  # the offline drafter, else the model of the settings
    queries: "KnownQueries"
    period: Period
    cycle: DraftingCycle
    items: list[tuple[int, str]]  # (person id, kind), claimed by index
    concurrency: list[int]  # model calls at once, by process (0 is this one)


@dataclass(frozen=True)
class KnownQueries:
    """An embedder that knows only the vectors of the draft kinds' queries, computed by the
    asking process's embedder: a helper retrieves with exactly those vectors without loading
    the model (retrieval embeds nothing else in a cycle)."""

    name: str
    dim: int
    vectors: dict[str, Vectors]

    @classmethod
    def of(cls, embedder: Embedder, kinds: Sequence[str]) -> "KnownQueries":
        vectors: dict[str, Vectors] = {}
        for kind in kinds:
            queries = queries_for(kind).queries
            vectors.update(zip(queries, QUERY_VECTORS.vectors(embedder, queries), strict=True))
        return cls(embedder.name, embedder.dim, vectors)

    def embed(self, texts: Sequence[str]) -> Vectors:
        unknown = [text for text in texts if text not in self.vectors]
        if unknown:
            raise LookupError(f"{len(unknown)} texts were not embedded ahead for this process")
        return np.vstack([self.vectors[text] for text in texts]).astype(np.float32)


def part_for(
    run: Drafting, period: Period, cycle: DraftingCycle, todo: list[Item], shares: list[int]
) -> HelperPart:
    """What helpers need to draft `todo` (any of it) as this process would."""
    return HelperPart(
        database_url=run.engine.url.render_as_string(hide_password=False),
        settings=run.settings,
        actor=run.actor,
        offline=run.drafter.origin == "offline",
        queries=KnownQueries.of(run.embedder, sorted({kind for _, kind in todo})),
        period=period,
        cycle=cycle,
        items=[(person.id, kind) for person, kind in todo],
        concurrency=shares,
    )


def _shares(concurrency: int, processes: int) -> list[int]:
    """The model calls each process may make, together `concurrency`."""
    return [concurrency // processes + (i < concurrency % processes) for i in range(processes)]


async def _spread(
    run: Drafting,
    period: Period,
    cycle: DraftingCycle,
    todo: list[Item],
    concurrency: int,
    helpers: int,
    record: Callable[[DraftOutcome | Failure], None],
) -> None:
    """Draft `todo` here and in `helpers` processes, all claiming from one list; each
    helper's outcomes are recorded here as they arrive."""
    shares = _shares(concurrency, helpers + 1)
    part = part_for(run, period, cycle, todo, shares)
    async with Spread(helper_main, part, helpers=helpers, total=len(todo)) as spread:

        def claim() -> Item | None:
            index = spread.claims.next()
            return None if index is None else todo[index]

        here = asyncio.create_task(_draft_claimed(run, period, cycle, claim, shares[0], record))
        there = asyncio.create_task(spread.collect(record))
        try:
            await asyncio.gather(here, there)
        finally:
            spread.claims.stop()
            for task in (here, there):
                task.cancel()
            await asyncio.gather(here, there, return_exceptions=True)


def helper_main(part: HelperPart, index: int, claims: Claims, send: Send) -> None:
    """A helper process's work (module level, so a fresh interpreter can import it)."""
    asyncio.run(_helper(part, index, claims, send))


async def _helper(part: HelperPart, index: int, claims: Claims, send: Send) -> None:
    engine = make_engine(part.database_url, pool_size=part.settings.db_pool_size)
    try:
        drafter = offline_drafter() if part.offline else drafter_from(part.settings)
        run = Drafting(engine, part.settings, part.queries, drafter, part.actor)
        people = await asyncio.to_thread(_people, engine, {pid for pid, _ in part.items})

        def claim() -> Item | None:
            claimed = claims.next()
            if claimed is None:
                return None
            person_id, kind = part.items[claimed]
            return people[person_id], kind

        await _draft_claimed(run, part.period, part.cycle, claim, part.concurrency[index], send)
    finally:
        engine.dispose()


def _people(engine: Engine, ids: set[int]) -> dict[int, Person]:
    with Session(engine) as session:
        return {p.id: p for p in session.scalars(select(Person).where(Person.id.in_(ids)))}
