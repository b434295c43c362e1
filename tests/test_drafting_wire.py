"""The model drafter over real HTTP: ChatOpenAI and the openai client against a local
OpenAI-compatible server (evals.llm_stub), scripted to answer, fail, stall or ramble."""

import asyncio
import shutil
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from evals.llm_stub import Reply, Stub, running_stub
from retrieval.evidence import EvidencePack
from service.drafting.llm import DraftingFailed, chat_model, draft_with_model
from service.drafting.prompting import RenderedPrompt, context_for, render
from service.drafting.run import Drafting, draft_person, drafter_from, load_person
from service.drafting.store import load_version
from service.drafting.structure import DraftBody
from service.drafting.subject import DraftSubject
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from tests.conftest import FIXTURES, CountingEmbedder
from tests.test_drafting import H1, pack_of

SUBJECT = DraftSubject("Cy Diaz", "Cy", "L3", "engineering", "self_reflection")


def llm_settings(settings: Settings, stub: Stub, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "llm_model": "stub",
        "llm_base_url": stub.base_url,
        "llm_timeout_s": 5.0,
        "llm_max_retries": 0,
        "llm_format_retries": 1,
    }
    return settings.model_copy(update=values | overrides)


def prompt_for(pack: EvidencePack) -> RenderedPrompt:
    return render(context_for(pack, SUBJECT, "2026-H1"))


def ask(settings: Settings, pack: EvidencePack) -> DraftBody:
    model = chat_model(settings)
    prompt = prompt_for(pack)
    return asyncio.run(draft_with_model(model, prompt, format_retries=settings.llm_format_retries))


def test_structured_output_is_asked_for_and_parsed(settings: Settings) -> None:
    pack = pack_of("Moved card payments.", "Cut retries from 4.1% to 1.3%.")
    with running_stub() as stub:
        body = ask(llm_settings(settings, stub), pack)

    cited = {c for s in body.sentences() for c in s.evidence}
    assert cited and cited <= {"E1", "E2"}
    request = stub.requests[0]
    assert request["response_format"]["type"] == "json_schema"
    assert "sections" in str(request["response_format"]["json_schema"]["schema"])
    assert request["model"] == "stub"


def test_rate_limits_and_server_errors_are_retried_with_back_off(settings: Settings) -> None:
    replies = [Reply.error(429, retry_after_s=0.3), Reply.error(500)]
    with running_stub(replies) as stub:
        started = time.perf_counter()
        ask(llm_settings(settings, stub, llm_max_retries=2), pack_of("Moved card payments."))
        elapsed = time.perf_counter() - started

    assert len(stub.requests) == 3
    assert elapsed >= 0.3, "the client waited as Retry-After asked"


def test_a_time_out_is_retried(settings: Settings) -> None:
    with running_stub([Reply.delay(3.0)]) as stub:
        tuned = llm_settings(settings, stub, llm_timeout_s=0.5, llm_max_retries=1)
        body = ask(tuned, pack_of("Moved card payments."))

    assert len(stub.requests) == 2
    assert body.sentences()


def test_after_the_last_retry_the_failure_is_clear(settings: Settings) -> None:
    with (
        running_stub([Reply.error(503)] * 3) as stub,
        pytest.raises(DraftingFailed, match="answered 503"),
    ):
        ask(llm_settings(settings, stub, llm_max_retries=2), pack_of("Moved card payments."))
    assert len(stub.requests) == 3


def test_a_time_out_on_every_try_fails_clearly(settings: Settings) -> None:
    with running_stub([Reply.delay(3.0)] * 2) as stub:
        tuned = llm_settings(settings, stub, llm_timeout_s=0.3, llm_max_retries=1)
        with pytest.raises(DraftingFailed, match="timed out"):
            ask(tuned, pack_of("Moved card payments."))
    assert len(stub.requests) == 2


def test_malformed_output_is_retried_with_the_error_then_fails_cleanly(
    settings: Settings,
) -> None:
    replies = [Reply.answer("Here you go: {not json"), Reply.answer('{"sections": 3}')]
    with (
        running_stub(replies) as stub,
        pytest.raises(DraftingFailed, match="still not a valid draft after 2 tries"),
    ):
        ask(llm_settings(settings, stub), pack_of("Moved card payments."))

    assert len(stub.requests) == 2
    retry = stub.requests[1]["messages"][-1]["content"]
    assert "not valid JSON" in retry


@pytest.fixture
def marked_store(ingestor: Ingestor, tmp_path: Path) -> Ingestor:
    """The fixture org with unmistakable demographic values."""
    org = tmp_path / "org"
    shutil.copytree(FIXTURES / "org", org)
    shutil.copy(FIXTURES / "drafts" / "people_marked.csv", org / "people.csv")
    ingest_path(ingestor, org)
    return ingestor


def test_over_the_wire_a_failure_leaves_the_earlier_draft_and_no_demographics_are_sent(
    engine: Engine, settings: Settings, embedder: CountingEmbedder, marked_store: Ingestor
) -> None:
    with running_stub() as stub:
        tuned = llm_settings(settings, stub)
        run = Drafting(engine, tuned, embedder, drafter_from(tuned), actor="test")
        person = load_person(engine, "cy.diaz@example.com")
        stub.queue(Reply.answer(), Reply.answer("garbage"), Reply.answer("more garbage"))

        async def twice() -> None:
            await draft_person(run, person, "self_reflection", H1)
            with pytest.raises(DraftingFailed):
                await draft_person(run, person, "self_reflection", H1)

        asyncio.run(twice())

    with engine.connect() as conn:
        current = load_version(conn, 1)
        values = conn.execute(text("SELECT value FROM restricted.demographics")).scalars().all()
    assert current.version == 1 and current.origin == "llm" and current.body.sentences()
    wire = str(stub.requests).lower()
    assert len(stub.requests) == 3 and "cy diaz" in wire
    assert values and not [v for v in values if v.lower() in wire]
