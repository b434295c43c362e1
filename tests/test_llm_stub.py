"""The LLM stub, through real HTTP and the real openai client under `ChatOpenAI`.

Drafting tests will lean on the stub to reach every failure path, so these pin both the
stub's behaviour and how langchain-openai reacts to it (which error surfaces where).
"""

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import ValidationError

from evals.llm_stub import Reply, Stub, build_draft, evidence_ids, running_stub
from service.drafting.structure import DraftBody

ROOT = Path(__file__).resolve().parents[1]
PROMPT = [
    ("system", "Write a self-reflection. Cite evidence by id, like [E99]."),
    ("user", "Evidence:\n[E3] Shipped the billing export.\n[E7] Led the incident review.\n"),
]
Method = Literal["json_schema", "function_calling"]


@pytest.fixture
def stub() -> Iterator[Stub]:
    with running_stub() as running:
        yield running


def chat(stub: Stub, **options: Any) -> ChatOpenAI:
    """A client on the stub; no retries unless a test asks, so failures surface at once."""
    options.setdefault("max_retries", 0)
    return ChatOpenAI(base_url=stub.base_url, api_key="x", model="stub", **options)


def cited(draft: DraftBody) -> set[str]:
    return {i for sentence in draft.sentences() for i in sentence.evidence}


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_is_a_draft_citing_the_prompts_evidence(
    stub: Stub, method: Method
) -> None:
    draft = chat(stub).with_structured_output(DraftBody, method=method).invoke(PROMPT)

    assert isinstance(draft, DraftBody)
    assert [s.heading for s in draft.sections] == ["Impact", "Growth"]
    assert cited(draft) == {"E3", "E7"}  # not E99, the instructions' example
    assert len(stub.requests) == 1


def test_json_schema_is_asked_as_response_format(stub: Stub) -> None:
    chat(stub).with_structured_output(DraftBody, method="json_schema").invoke(PROMPT)

    body = stub.requests[0]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == "DraftBody"
    assert "tools" not in body
    assert body["messages"][1]["content"].startswith("Evidence:")


def test_function_calling_is_asked_as_a_forced_tool(stub: Stub) -> None:
    chat(stub).with_structured_output(DraftBody, method="function_calling").invoke(PROMPT)

    body = stub.requests[0]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "DraftBody"}}
    assert [t["function"]["name"] for t in body["tools"]] == ["DraftBody"]
    assert "response_format" not in body


def test_streamed_structured_output_is_parsed_too(stub: Stub) -> None:
    model = chat(stub, streaming=True).with_structured_output(DraftBody, method="function_calling")

    draft = model.invoke(PROMPT)

    assert isinstance(draft, DraftBody)
    assert stub.requests[0]["stream"] is True


def test_queued_answers_come_in_order_then_the_default(stub: Stub) -> None:
    scripted = build_draft(["E1"])
    stub.queue(Reply.answer(scripted), Reply.answer('{"sections": []}'))
    model = chat(stub).with_structured_output(DraftBody, method="json_schema")

    answers = [model.invoke(PROMPT) for _ in range(3)]

    assert answers[0] == scripted
    assert answers[1] == DraftBody(sections=[])
    assert isinstance(answers[2], DraftBody)
    assert cited(answers[2]) == {"E3", "E7"}
    assert stub.pending == 0


def test_a_server_error_then_success_is_a_success_after_one_retry(stub: Stub) -> None:
    stub.queue(Reply.error(500, retry_after_s=0.01))

    draft = chat(stub, max_retries=1).with_structured_output(DraftBody).invoke(PROMPT)

    assert isinstance(draft, DraftBody)
    assert len(stub.requests) == 2


def test_the_client_waits_as_retry_after_says(stub: Stub) -> None:
    stub.queue(Reply.error(429, retry_after_s=0.3))
    started = time.perf_counter()

    chat(stub, max_retries=1).invoke(PROMPT)

    assert time.perf_counter() - started >= 0.3
    assert len(stub.requests) == 2


def test_rate_limit_carries_retry_after_headers(stub: Stub) -> None:
    stub.queue(Reply.error(429, retry_after_s=2))
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="stub", messages=[{"role": "user", "content": "hi"}])

    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"


def test_errors_beyond_the_retries_reach_the_caller(stub: Stub) -> None:
    stub.queue(Reply.error(503, retry_after_s=0.01), Reply.error(503, retry_after_s=0.01))

    with pytest.raises(openai.InternalServerError) as caught:
        chat(stub, max_retries=1).invoke(PROMPT)

    assert caught.value.status_code == 503
    assert len(stub.requests) == 2


def test_a_delay_past_the_clients_timeout_is_a_timeout(stub: Stub) -> None:
    stub.queue(Reply.delay(5))
    started = time.perf_counter()

    with pytest.raises(openai.APITimeoutError):
        chat(stub, timeout=0.3).invoke(PROMPT)

    assert time.perf_counter() - started < 2
    assert isinstance(chat(stub).invoke(PROMPT).content, str)  # the stub is still serving


def test_a_delayed_answer_arrives_within_the_timeout(stub: Stub) -> None:
    stub.queue(Reply.answer(build_draft(["E3"]), delay_s=0.2))
    started = time.perf_counter()

    draft = chat(stub, timeout=5).with_structured_output(DraftBody).invoke(PROMPT)

    assert time.perf_counter() - started >= 0.2
    assert draft == build_draft(["E3"])


@pytest.mark.parametrize("include_raw", [False, True])
def test_malformed_json_content_raises_a_validation_error(stub: Stub, include_raw: bool) -> None:
    """With json_schema the openai client parses inside the model call, so even
    include_raw=True raises rather than reporting a parsing_error."""
    stub.queue(Reply.answer('{"sections": [{"heading": "Impact", '))
    model = chat(stub).with_structured_output(
        DraftBody, method="json_schema", include_raw=include_raw
    )

    with pytest.raises(ValidationError):
        model.invoke(PROMPT)


def test_content_outside_the_schema_raises_a_validation_error(stub: Stub) -> None:
    stub.queue(Reply.answer({"sections": [{"heading": "", "sentences": []}]}))
    model = chat(stub).with_structured_output(DraftBody, method="json_schema")

    with pytest.raises(ValidationError):
        model.invoke(PROMPT)


def test_tool_arguments_outside_the_schema_are_a_parsing_error(stub: Stub) -> None:
    stub.queue(Reply.answer({"sections": [{"heading": "", "sentences": []}]}))
    stub.queue(Reply.answer({"sections": [{"heading": "", "sentences": []}]}))
    model = chat(stub).with_structured_output(DraftBody, method="function_calling")
    raw_model = chat(stub).with_structured_output(
        DraftBody, method="function_calling", include_raw=True
    )

    with pytest.raises(ValidationError):
        model.invoke(PROMPT)
    result = raw_model.invoke(PROMPT)

    assert isinstance(result, dict)
    assert isinstance(result["parsing_error"], ValidationError)
    assert result["parsed"] is None


def test_malformed_tool_arguments_parse_to_none_without_an_error(stub: Stub) -> None:
    """langchain drops a tool call whose arguments are not JSON: callers must check None."""
    stub.queue(Reply.answer('{"sections": ['))

    result = chat(stub).with_structured_output(DraftBody, method="function_calling").invoke(PROMPT)

    assert result is None


def test_thirty_two_requests_are_answered_concurrently() -> None:
    async def ask_all(stub: Stub) -> list[Any]:
        # An HTTP client of this loop's own: langchain-openai caches its default async
        # client per base URL across event loops, which breaks the next asyncio.run.
        async with openai.DefaultAsyncHttpxClient() as http:
            model = chat(stub, http_async_client=http)
            structured = model.with_structured_output(DraftBody, method="json_schema")
            drafts: list[Any] = await asyncio.gather(
                *(structured.ainvoke(PROMPT) for _ in range(32))
            )
            return drafts

    with running_stub(latency_s=0.2) as stub:
        started = time.perf_counter()
        drafts = asyncio.run(ask_all(stub))
        elapsed = time.perf_counter() - started

    assert len(drafts) == 32
    assert all(isinstance(d, DraftBody) for d in drafts)
    assert elapsed < 1.5  # one at a time would take 6.4 s
    assert stub.max_in_flight >= 8


def test_the_responses_api_is_refused_with_a_hint(stub: Stub) -> None:
    with pytest.raises(openai.NotFoundError, match="use_responses_api=False"):
        chat(stub, use_responses_api=True).invoke(PROMPT)


def test_models_are_listed(stub: Stub) -> None:
    client = openai.OpenAI(base_url=stub.base_url, api_key="x", max_retries=0)

    assert [m.id for m in client.models.list()] == ["stub"]


def test_evidence_ids_come_from_user_messages_before_instructions() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "like E99"},
            {"role": "user", "content": "E2 [E1] E2"},
        ]
    }
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "[E4]"}]}]}
    only_system = {"messages": [{"role": "system", "content": "[E5]"}]}

    assert evidence_ids(body) == ["E2", "E1"]
    assert evidence_ids(parts) == ["E4"]
    assert evidence_ids(only_system) == ["E5"]


@pytest.mark.parametrize("count", [0, 1, 2, 5, 20])
def test_the_default_draft_is_valid_and_cites_only_given_ids(count: int) -> None:
    ids = [f"E{n}" for n in range(1, count + 1)]

    draft = build_draft(ids)

    assert DraftBody.model_validate(draft.model_dump()) == draft
    assert cited(draft) <= set(ids)
    assert bool(cited(draft)) == bool(ids)
    assert all(len(s.evidence) <= 2 for s in draft.sentences())
    assert build_draft(ids) == draft


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_command_line_serves_until_stopped() -> None:
    port = _free_port()
    command = [sys.executable, "-m", "evals.llm_stub", "--port", str(port), "--latency-ms", "0"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        model = ChatOpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="x", model="stub", max_retries=0
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                draft = model.with_structured_output(DraftBody).invoke(PROMPT)
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert isinstance(draft, DraftBody)
    finally:
        process.terminate()
        # uvicorn stops cleanly, then re-raises the signal it caught, as a server should
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
