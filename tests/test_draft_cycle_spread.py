"""A cycle's drafting kept lean: model calls never wait on the work around them, a cycle
spread over processes stores what one process would, and the model client survives the
event loops a worker goes through.

The spreading itself runs real helper processes (tests/spread_mains.py); the drafting a
helper does is run here in this process, on claims shared as between processes.
"""

import asyncio
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select

import service.drafting.run as run_module
from domain.errors import Invalid
from domain.kinds import DraftKind
from evals.llm_stub import Reply, running_stub
from retrieval.evidence import EvidencePack
from retrieval.search import retrieve_evidence
from service.cycles.store import DraftingCycle
from service.db.models import Draft, DraftVersion
from service.drafting.llm import parse_draft
from service.drafting.run import (
    Drafter,
    Drafting,
    DraftOutcome,
    Failure,
    KnownQueries,
    cycle_people,
    draft_cycle,
    draft_person,
    drafter_from,
    helper_count,
    helper_main,
    load_person,
    model_drafter,
    offline_drafter,
    part_for,
)
from service.drafting.spread import Claims, HelperFailed, Spread
from service.drafting.structure import DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from tests import spread_mains
from tests.conftest import CountingEmbedder
from tests.test_drafting import H1, fake_model, valid_answer
from tests.test_drafting_wire import llm_settings

KINDS = ("self_reflection", "manager_feedback")


@pytest.fixture
def store(ingestor: Ingestor, org_dir: Path) -> Ingestor:
    ingest_path(ingestor, org_dir)
    return ingestor


def stored(engine: Engine) -> dict[tuple[int, str], tuple[Any, Any, Any]]:
    """Each stored draft's body, citation report and provenance, by (person, kind)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Draft.subject_id,
                Draft.kind,
                DraftVersion.body,
                DraftVersion.citations,
                DraftVersion.provenance,
            ).join(DraftVersion, DraftVersion.draft_id == Draft.id)
        ).all()
    return {(r.subject_id, r.kind): (r.body, r.citations, r.provenance) for r in rows}


def forget_drafts(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(Draft))


# --- the spreading, with real helper processes ------------------------------------------


async def collected(spread: Spread) -> list[Any]:
    received: list[Any] = []
    await spread.collect(received.append)
    return received


def test_helpers_share_the_items_each_claimed_exactly_once() -> None:
    items = list(range(40))

    async def run() -> list[Any]:
        async with Spread(spread_mains.squares, items, helpers=2, total=len(items)) as spread:
            return await collected(spread)

    received = asyncio.run(run())

    assert sorted((item, square) for _, item, square in received) == [(i, i * i) for i in items]
    assert {helper for helper, _, _ in received} <= {1, 2}


def test_an_error_in_a_helper_reaches_the_asking_process_as_itself() -> None:
    async def run() -> None:
        async with Spread(spread_mains.refuses, None, helpers=1, total=10) as spread:
            await collected(spread)

    with pytest.raises(Invalid, match="item 3 is not a number") as caught:
        asyncio.run(run())
    assert caught.value.field == "items"


def test_an_error_that_cannot_travel_is_named_by_its_class_only() -> None:
    async def run() -> None:
        async with Spread(spread_mains.leaks, None, helpers=1, total=10) as spread:
            await collected(spread)

    with pytest.raises(HelperFailed, match=r"a drafting process failed \(Unportable\)") as caught:
        asyncio.run(run())
    assert "evidence" not in str(caught.value)


def test_a_helper_that_dies_without_a_word_fails_the_spread_clearly() -> None:
    async def run() -> None:
        async with Spread(spread_mains.dies, None, helpers=1, total=10) as spread:
            await collected(spread)

    with pytest.raises(HelperFailed, match=r"ended unexpectedly \(exit code 3\)"):
        asyncio.run(run())


# --- the drafting a helper does ---------------------------------------------------------


def shared_claims(total: int) -> Claims:
    return Claims(multiprocessing.get_context("spawn").Value("q", 0), total)


def test_a_helper_drafts_what_this_process_would_with_the_same_provenance(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, store: Ingestor
) -> None:
    run = Drafting(engine, settings, embedder, offline_drafter(), "test")
    here = asyncio.run(draft_cycle(run, H1, KINDS, concurrency=2, processes=1))
    expected = stored(engine)
    forget_drafts(engine)
    todo = [(p, k) for p in cycle_people(engine, H1, embedder.name) for k in KINDS]
    asked = len(embedder.texts)

    results: list[DraftOutcome | Failure] = []
    part = part_for(run, H1, DraftingCycle(), todo, [1, 2])
    helper_main(part, 1, shared_claims(len(todo)), results.append)

    assert len(embedder.texts) == asked, "a helper embeds nothing: the queries come with it"
    assert isinstance(part.queries, KnownQueries)
    assert len(results) == len(todo) == len(here.drafted) + len(here.empty)
    assert stored(engine) == expected


def test_a_helper_records_a_model_failure_and_drafts_the_rest(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, store: Ingestor
) -> None:
    with running_stub([Reply.error(500)]) as stub:
        tuned = llm_settings(settings, stub)
        run = Drafting(engine, tuned, embedder, drafter_from(tuned), "test")
        todo = [(p, "self_reflection") for p in cycle_people(engine, H1, embedder.name)]
        results: list[DraftOutcome | Failure] = []
        helper_main(
            part_for(run, H1, DraftingCycle(), todo, [1, 2]), 1, shared_claims(3), results.append
        )

    failures = [r for r in results if not isinstance(r, DraftOutcome)]
    assert len(results) == 3 and len(failures) == 1
    assert "answered 500" in failures[0][2]
    assert len(stored(engine)) == 2


def test_a_cycle_spread_over_processes_stores_what_one_process_stores(
    engine: Engine,
    settings: Settings,
    embedder: CountingEmbedder,
    store: Ingestor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twelve drafts, one model call at a time per process, each call a second long: this
    process alone would take twelve seconds, so the helpers, started meanwhile, draft too
    (the stub sees more than one call at once)."""
    kinds = [kind.value for kind in DraftKind]
    with running_stub(latency_s=1.0) as stub:
        tuned = llm_settings(settings, stub)
        run = Drafting(engine, tuned, embedder, drafter_from(tuned), "test")
        one = asyncio.run(draft_cycle(run, H1, kinds, concurrency=3, processes=1))
        expected = stored(engine)
        forget_drafts(engine)
        stub.max_in_flight = 0
        monkeypatch.setattr(run_module, "MIN_DRAFTS_PER_PROCESS", 1)

        spread = asyncio.run(draft_cycle(run, H1, kinds, concurrency=3, processes=3))
        again = asyncio.run(draft_cycle(run, H1, kinds, concurrency=3, processes=3))

    assert stub.max_in_flight >= 2, "a helper process made model calls beside this one"
    assert stored(engine) == expected
    assert len(spread.drafted) == len(one.drafted) == 12 and not spread.failed
    assert again.skipped == 12 and not again.drafted


def test_only_a_large_cycle_with_a_rebuildable_drafter_is_spread(
    engine: Engine, settings: Settings, embedder: CountingEmbedder
) -> None:
    offline = Drafting(engine, settings, embedder, offline_drafter(), "test")
    fake = model_drafter(fake_model(), "fake", format_retries=0)
    custom = Drafting(engine, settings, embedder, fake, "test")

    assert helper_count(offline, 2, 2400, 32) == 1
    assert helper_count(offline, 4, 250, 32) == 1, "each process gets 100 drafts or more"
    assert helper_count(offline, 4, 2400, 2) == 1, "no process without a model call to make"
    assert helper_count(offline, 2, 150, 32) == 0
    assert helper_count(offline, 1, 2400, 32) == 0
    assert helper_count(custom, 2, 2400, 32) == 0, "a model built here cannot be rebuilt there"


# --- model calls never wait on the work around them -------------------------------------


def test_the_next_draft_is_prepared_while_the_model_writes(
    engine: Engine,
    settings: Settings,
    embedder: CountingEmbedder,
    store: Ingestor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One model call at a time: while it runs, the next draft's evidence is retrieved,
    so the model is never kept waiting by retrieval (or by storing)."""
    retrieved: list[int] = []

    def counting(*args: Any, **kwargs: Any) -> EvidencePack:
        pack = retrieve_evidence(*args, **kwargs)
        retrieved.append(kwargs["subject_id"])
        return pack

    monkeypatch.setattr(run_module, "retrieve_evidence", counting)
    ahead: list[bool] = []  # per model call: was the next draft's evidence retrieved by its end

    async def write(pack: EvidencePack, subject: DraftSubject, prompt: Any) -> DraftBody:
        wanted = len(ahead) + 2  # this draft's retrieval and the next one's
        deadline = time.monotonic() + 5
        while len(retrieved) < wanted and len(ahead) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        ahead.append(len(retrieved) >= wanted)
        return parse_draft(valid_answer(pack.items[0].id))

    run = Drafting(engine, settings, embedder, Drafter("llm", "fake", write), "test")
    summary = asyncio.run(draft_cycle(run, H1, ["self_reflection"], concurrency=1))

    assert len(summary.drafted) == 3
    assert ahead[:2] == [True, True], "the next draft was prepared during each model call"


def test_an_unexpected_error_stops_the_cycle_and_is_raised_as_itself(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, store: Ingestor
) -> None:
    """Only a drafter's failure (DraftingFailed) is recorded and left for the next run;
    anything else is a bug or an outage, and ends the cycle with its own error."""
    written: list[str] = []

    async def write(pack: EvidencePack, subject: DraftSubject, prompt: Any) -> DraftBody:
        written.append(subject.name)
        raise LookupError("a bug in the drafter")

    run = Drafting(engine, settings, embedder, Drafter("llm", "broken", write), "test")
    with pytest.raises(LookupError, match="a bug in the drafter"):
        asyncio.run(draft_cycle(run, H1, KINDS, concurrency=1))
    assert len(written) <= 2, "nothing more was claimed after the error"
    assert stored(engine) == {}


# --- the model client ---------------------------------------------------------------------


def test_a_drafter_serves_one_event_loop_after_another(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, store: Ingestor
) -> None:
    """A job worker runs each job in an event loop of its own: a connection kept from the
    last loop must not break the next draft ("Event loop is closed")."""
    with running_stub() as stub:
        tuned = llm_settings(settings, stub)
        person = load_person(engine, "cy.diaz@example.com")
        shared = Drafting(engine, tuned, embedder, drafter_from(tuned), "test")
        outcomes = [asyncio.run(draft_person(shared, person, "self_reflection", H1))]
        for _ in range(2):  # a new drafter per job, as the worker builds them
            run = Drafting(engine, tuned, embedder, drafter_from(tuned), "test")
            outcomes.append(asyncio.run(draft_person(run, person, "self_reflection", H1)))
        outcomes.append(asyncio.run(draft_person(shared, person, "self_reflection", H1)))

    assert [o.version for o in outcomes] == [1, 2, 3, 4]
    assert len(stub.requests) == 4


def test_an_answer_cut_off_at_the_length_limit_is_asked_for_again(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, store: Ingestor
) -> None:
    with running_stub([Reply.answer('{"sections": [{"head', finish_reason="length")]) as stub:
        tuned = llm_settings(settings, stub)
        run = Drafting(engine, tuned, embedder, drafter_from(tuned), "test")
        person = load_person(engine, "cy.diaz@example.com")
        outcome = asyncio.run(draft_person(run, person, "self_reflection", H1))

    assert outcome.draft_id is not None and outcome.body is not None
    assert len(stub.requests) == 2
    assert "not valid JSON" in stub.requests[1]["messages"][-1]["content"]
    assert stub.requests[0]["response_format"]["type"] == "json_schema"
