"""Drafting with a chat model through LangChain: OpenAI or any OpenAI-compatible server.

The model is asked for JSON matching `DraftBody` (response_format json_schema, which OpenAI,
vLLM, Ollama and llama.cpp's server all accept) and we parse the answer ourselves, so the
same code runs against LangChain's fake chat models in tests. Failures are handled in two
layers:

- transport: time-outs, rate limits (429) and server errors (5xx) are retried by the openai
  client underneath ChatOpenAI, with exponential back-off and jitter, honouring Retry-After
  (`FAIRDRAFT_LLM_MAX_RETRIES`);
- content: an answer that is not a valid draft is sent back with the validation error and the
  model asked again (`FAIRDRAFT_LLM_FORMAT_RETRIES`).

After the last try the caller gets `DraftingFailed` with the reason, and nothing is stored.

The schema travels in the request body as it is (`extra_body`), not as LangChain's
`response_format`: that routes each call through the openai client's `parse`, which walks
the whole schema on every call (a third of the client's CPU time per draft) and raises its
own error on an answer cut off at the length limit, where the format retry should ask again.
"""

import json
import re
import time
from typing import Any

import openai
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.runnables import Runnable
from langchain_openai import ChatOpenAI
from pydantic import SecretStr, ValidationError

from domain.errors import Unavailable
from service.drafting.prompting import RenderedPrompt
from service.drafting.structure import DraftBody
from service.metrics import process_metrics
from service.settings import Settings

ChatRunnable = Runnable[LanguageModelInput, BaseMessage]
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class DraftingFailed(Unavailable):
    """The model gave no usable draft after every retry; the message says why."""


class MalformedDraft(ValueError):
    pass


def chat_model(settings: Settings, *, own_pool: bool = False) -> ChatRunnable:
    """The configured chat model, bound to answer with a draft as JSON.

    `own_pool`: the model gets connections of its own (the openai client's defaults keep a
    hundred alive between calls) instead of LangChain's pool, which every model of the
    process shares. Connections belong to the event loop that opened them: a model with its
    own pool serves one loop (one `asyncio.run`: a job, a command, a drafting process), and
    the shared pool the app's one long-lived loop. A second loop that meets the first one's
    connections fails with "Event loop is closed".
    """
    if settings.llm_model is None:
        raise ValueError("no LLM configured: set FAIRDRAFT_LLM_MODEL")
    pool = openai.DefaultAsyncHttpxClient(timeout=settings.llm_timeout_s) if own_pool else None
    model = ChatOpenAI(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key or SecretStr("not-needed"),
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        use_responses_api=False,
        http_async_client=pool,
    )
    return model.bind(extra_body={"response_format": response_format()})


def response_format() -> dict[str, Any]:
    """The json_schema response format asking for a `DraftBody`."""
    schema = {"name": "draft", "schema": DraftBody.model_json_schema()}
    return {"type": "json_schema", "json_schema": schema}


def parse_draft(content: Any) -> DraftBody:
    """The draft in a model's answer: JSON, perhaps inside a ```json fence."""
    if not isinstance(content, str):
        raise MalformedDraft("the answer was not text")
    fenced = _FENCE.match(content)
    raw = fenced.group(1) if fenced else content
    try:
        body = DraftBody.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise MalformedDraft(f"the answer is not valid JSON ({exc.msg} at {exc.pos})") from exc
    except ValidationError as exc:
        raise MalformedDraft(f"the JSON does not match the schema: {_errors(exc)}") from exc
    if not body.sentences():
        raise MalformedDraft("the draft has no sentences")
    return body


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or 'root'}: {error['msg']}"
        for error in exc.errors()[:5]
    )


async def draft_with_model(
    model: ChatRunnable, prompt: RenderedPrompt, *, format_retries: int
) -> DraftBody:
    """Ask, parse, and on a malformed answer ask again quoting what was wrong."""
    messages: list[BaseMessage] = [SystemMessage(prompt.system), HumanMessage(prompt.user)]
    problem = ""
    for _ in range(format_retries + 1):
        reply = await _ask(model, messages)
        try:
            return parse_draft(reply.content)
        except MalformedDraft as exc:
            problem = str(exc)
            messages += [
                AIMessage(content=reply.content),
                HumanMessage(
                    f"That answer could not be used: {problem}. Answer again with the whole "
                    "draft as JSON only, matching the schema, every sentence citing evidence ids."
                ),
            ]
    raise DraftingFailed(
        f"the model's answer was still not a valid draft after {format_retries + 1} tries: "
        f"{problem}"
    )


async def _ask(model: ChatRunnable, messages: list[BaseMessage]) -> BaseMessage:
    """One call, timed into the metrics with its outcome and the tokens its usage reports."""
    started = time.perf_counter()
    try:
        reply = await _invoke(model, messages)
    except Exception as exc:
        process_metrics().llm_call(_outcome(exc), time.perf_counter() - started)
        raise
    prompt_tokens, completion_tokens = token_usage(reply)
    process_metrics().llm_call(
        "ok",
        time.perf_counter() - started,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
    )
    return reply


def token_usage(reply: BaseMessage) -> tuple[int, int]:
    """(prompt, completion) tokens of an answer, from the `usage` of the OpenAI-compatible
    response as LangChain keeps it; (0, 0) from a server that reports none."""
    usage = getattr(reply, "usage_metadata", None) or {}
    return int(usage.get("input_tokens", 0) or 0), int(usage.get("output_tokens", 0) or 0)


def _outcome(exc: Exception) -> str:
    """The label of a failed call: what the openai client ended with."""
    cause = exc.__cause__ if isinstance(exc, DraftingFailed) else exc
    if isinstance(cause, openai.APITimeoutError):
        return "timeout"
    if isinstance(cause, openai.APIStatusError):
        return "http_error"
    if isinstance(cause, openai.APIConnectionError):
        return "connection_error"
    return "error"


async def _invoke(model: ChatRunnable, messages: list[BaseMessage]) -> BaseMessage:
    try:
        return await model.ainvoke(messages)
    except openai.APITimeoutError as exc:
        raise DraftingFailed(f"the model timed out on every try: {exc}") from exc
    except openai.APIStatusError as exc:
        raise DraftingFailed(
            f"the model server answered {exc.status_code} on the last try: {exc.message}"
        ) from exc
    except openai.APIConnectionError as exc:
        raise DraftingFailed(f"could not reach the model server: {exc}") from exc
