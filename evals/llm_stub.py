"""An OpenAI-compatible chat server, scripted reply by reply, for tests and benchmarks.

No LLM is reachable where fairdraft is built and tested, and a mocked client would hide the
parts most worth testing: the real openai client's retries, time-outs, connection pool and
structured-output parsing. So this is a real HTTP server (starlette under uvicorn) speaking
the Chat Completions wire format at `POST /v1/chat/completions` and `GET /v1/models`.

Replies are scripted: `Reply` objects are answered in the order queued (an answer, an HTTP
error, a delay). With nothing queued, a default responder waits a fixed latency and answers
a valid `DraftBody` citing the evidence ids (`E12`, `[E12]`) found in the prompt, in the form
the request asked for (JSON content for `response_format`, a tool call for `tools`). Every
request body is recorded so tests can assert what reached the model.

The stub speaks Chat Completions only. `ChatOpenAI` uses it by default for a model named
like "stub"; where options would route to the Responses API, pass `use_responses_api=False`
(a request to `/v1/responses` gets a 404 saying so).

In tests: `with running_stub(latency_s=0.0) as stub: ChatOpenAI(base_url=stub.base_url, ...)`.
For benchmarks: `python -m evals.llm_stub --port 8765 --latency-ms 200`.
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from service.drafting.structure import DraftBody, DraftSection, DraftSentence

logger = logging.getLogger(__name__)

Json = dict[str, Any]
Placement = Literal["auto", "content", "tool_call"]

_EVIDENCE_ID = re.compile(r"\bE\d+\b")
_ERROR_TYPES = {400: "invalid_request_error", 404: "not_found_error", 429: "rate_limit_error"}
_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "Impact",
        (
            "Delivered the work that the cited records describe.",
            "Followed through on the commitments noted in the cited records.",
            "Worked with others as the cited records show.",
        ),
    ),
    (
        "Growth",
        (
            "Grew in the areas discussed in the cited records.",
            "Acted on the feedback the cited records mention.",
            "Set goals that build on the cited records.",
        ),
    ),
)


@dataclass(frozen=True)
class Reply:
    """One scripted answer to one request; build it with the class methods.

    `content` None means the default draft for that request; a dict (or model) is sent as
    JSON, a string as is (so malformed JSON can be scripted).
    """

    content: Json | str | None = None
    status: int = 200
    delay_s: float = 0.0
    retry_after_s: float | None = None
    message: str = ""
    placement: Placement = "auto"
    finish_reason: str | None = None

    @classmethod
    def answer(
        cls,
        content: Json | str | BaseModel | None = None,
        *,
        delay_s: float = 0.0,
        placement: Placement = "auto",
        finish_reason: str | None = None,
    ) -> "Reply":
        """A successful answer, after `delay_s`.

        `placement` "auto" puts it where the request asked (tool call when tools were sent,
        else content); "content" or "tool_call" force one, to script a model that ignores
        the request. `finish_reason` overrides "stop"/"tool_calls" (e.g. "length").
        """
        if isinstance(content, BaseModel):
            content = content.model_dump(mode="json")
        return cls(content, delay_s=delay_s, placement=placement, finish_reason=finish_reason)

    @classmethod
    def error(
        cls,
        status: int,
        *,
        retry_after_s: float | None = None,
        message: str = "",
        delay_s: float = 0.0,
    ) -> "Reply":
        """An HTTP error in OpenAI's error shape; `retry_after_s` adds Retry-After headers."""
        text = message or f"scripted error {status}"
        return cls(status=status, delay_s=delay_s, retry_after_s=retry_after_s, message=text)

    @classmethod
    def delay(cls, seconds: float) -> "Reply":
        """The default draft, but only after `seconds` (longer than a client's time-out)."""
        return cls(delay_s=seconds)


class Stub:
    """The scripted server's state and its ASGI app; serve it with `running_stub` or `serve`.

    `requests` holds every chat request body in arrival order; `max_in_flight` the most
    requests answered at once, so a benchmark can see how concurrent its client really was.
    `latency_s` (the default responder's wait) may be changed while serving.
    """

    def __init__(self, replies: Iterable[Reply] = (), latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.requests: list[Json] = []
        self.base_url = ""
        self.in_flight = 0
        self.max_in_flight = 0
        self._replies: deque[Reply] = deque(replies)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Event | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/{path:path}", self._not_found, methods=["GET", "POST"]),
            ]
        )

    def queue(self, *replies: Reply) -> None:
        """Script the next answers, in order, after any already queued."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending(self) -> int:
        """Queued replies not used yet, so a test can check its script ran out."""
        with self._lock:
            return len(self._replies)

    async def serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        """Run `server` on `sock` in this loop, keeping the loop so `close` can wake sleepers."""
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        await server.serve(sockets=[sock])

    def close(self, server: uvicorn.Server) -> None:
        """Ask the server to stop and end every pending delay now (callable from any thread)."""
        server.should_exit = True
        if self._loop is not None and self._closing is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._closing.set)

    def _next_reply(self) -> Reply | None:
        with self._lock:
            return self._replies.popleft() if self._replies else None

    async def _chat(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the request body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "the request body needs a 'messages' list")
        self.requests.append(body)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: Request, body: Json) -> Response:
        """The next scripted reply to `body`, or the default draft after the latency."""
        reply = self._next_reply()
        delay = self.latency_s if reply is None else reply.delay_s
        if not await self._pause(request, delay):
            return _error(503, "the stub is shutting down or the client hung up")
        if reply is not None and reply.status != 200:
            return _error(reply.status, reply.message, reply.retry_after_s)
        reply = reply or Reply()
        content = reply.content if reply.content is not None else default_draft(body)
        completion = _completion(body, content, reply, next(self._ids))
        if body.get("stream"):
            usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(_sse(completion, usage), media_type="text/event-stream")
        return JSONResponse(completion)

    async def _models(self, request: Request) -> Response:
        model = {"id": "stub", "object": "model", "created": 0, "owned_by": "fairdraft"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _not_found(self, request: Request) -> Response:
        """Say plainly why, since the likely cause is a client on the Responses API."""
        hint = (
            " Build ChatOpenAI with use_responses_api=False."
            if "responses" in request.url.path
            else ""
        )
        return _error(404, f"the stub serves /v1/chat/completions only.{hint}")

    async def _pause(self, request: Request, seconds: float) -> bool:
        """Sleep without blocking other requests; False if the client left or the stub closes.

        Ending early matters: a client that timed out should not hold the server's shutdown.
        """
        if seconds <= 0:
            return True
        sleeper = asyncio.ensure_future(asyncio.sleep(seconds))
        waiters: set[asyncio.Future[Any]] = {sleeper, asyncio.ensure_future(_disconnected(request))}
        if self._closing is not None:
            waiters.add(asyncio.ensure_future(self._closing.wait()))
        done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return sleeper in done


async def _disconnected(request: Request) -> None:
    """Return once the client hangs up (the body has been read, so only that can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _error(status: int, message: str, retry_after_s: float | None = None) -> Response:
    """An error in OpenAI's shape, which the openai client turns into its typed exceptions."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    error = {"message": message, "type": kind, "param": None, "code": None}
    headers = {}
    if retry_after_s is not None:
        headers = {
            "retry-after": f"{retry_after_s:g}",
            "retry-after-ms": f"{retry_after_s * 1000:.0f}",
        }
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def evidence_ids(body: Json) -> list[str]:
    """Evidence ids in the prompt, in order of first appearance.

    Ids in user messages come first, since evidence is quoted there as data; system
    messages are read only when the rest has none, so an example id in the instructions
    ("cite like [E3]") is not cited as if it were evidence.
    """
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    others = [m for m in messages if m.get("role") not in ("system", "developer")]
    for group in (others, messages):
        found = [i for m in group for i in _EVIDENCE_ID.findall(_text_of(m))]
        if found:
            return list(dict.fromkeys(found))
    return []


def _text_of(message: Json) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def default_draft(body: Json) -> Json:
    """A valid draft for this request: two sections whose sentences cite the prompt's ids."""
    return build_draft(evidence_ids(body)).model_dump(mode="json")


def build_draft(ids: Sequence[str]) -> DraftBody:
    """Two sections of up to three sentences; each cites up to two of its half of `ids`.

    Deterministic, so tests and benchmarks can compare runs.
    """
    middle = (len(ids) + 1) // 2
    halves = (list(ids[:middle]), list(ids[middle:]) or list(ids))
    sections = []
    for (heading, texts), half in zip(_SECTIONS, halves, strict=True):
        count = max(1, min(len(texts), len(half)))
        sentences = [
            DraftSentence(text=texts[k], evidence=half[k :: len(texts)][:2]) for k in range(count)
        ]
        sections.append(DraftSection(heading=heading, sentences=sentences))
    return DraftBody(sections=sections)


def requested_tool(body: Json) -> str | None:
    """The function the request wants called: the named tool_choice, else the first tool."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "function" in t]
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return str(choice["function"]["name"])
    if isinstance(choice, str) and choice not in ("auto", "required"):
        return choice
    return str(tools[0]["function"]["name"])


def _completion(body: Json, content: Json | str, reply: Reply, number: int) -> Json:
    """A `chat.completion` object carrying `content` where the request (or reply) puts it."""
    text = content if isinstance(content, str) else json.dumps(content)
    tool = None if reply.placement == "content" else requested_tool(body)
    if reply.placement == "tool_call" and tool is None:
        tool = "DraftBody"
    message: Json = {"role": "assistant", "content": text, "refusal": None}
    finish = "stop"
    if tool is not None:
        function = {"name": tool, "arguments": text}
        call: Json = {"id": f"call_{number}", "type": "function", "function": function}
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        finish = "tool_calls"
    prompt_tokens = sum(len(_text_of(m).split()) for m in body["messages"] if isinstance(m, dict))
    completion_tokens = len(text.split())
    return {
        "id": f"chatcmpl-stub-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "stub")),
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason or finish}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


async def _sse(completion: Json, include_usage: bool) -> AsyncIterator[str]:
    """The same answer as server-sent chunks: the whole delta, then the finish reason."""
    choice = completion["choices"][0]
    message = choice["message"]
    delta: Json = {"role": "assistant", "content": message["content"]}
    if "tool_calls" in message:
        delta["tool_calls"] = [{"index": 0, **call} for call in message["tool_calls"]]
    head = {key: completion[key] for key in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    finish = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
    chunks = [
        {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**head, "choices": [finish]},
    ]
    if include_usage:
        chunks.append({**head, "choices": [], "usage": completion["usage"]})
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


def _bind(host: str, port: int) -> socket.socket:
    """Bind before serving, so port 0 yields a free port known before the server starts."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def _server(stub: Stub) -> uvicorn.Server:
    """One uvicorn worker, quiet: no access log, no logging configuration of its own."""
    config = uvicorn.Config(
        stub.app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}/v1"


@contextlib.contextmanager
def running_stub(
    replies: Iterable[Reply] = (), latency_s: float = 0.0, host: str = "127.0.0.1", port: int = 0
) -> Iterator[Stub]:
    """Serve a stub from a background thread for the `with` block; a free port by default.

    Returns once the server accepts connections; stops it, and ends pending delays, on exit.
    """
    stub = Stub(replies, latency_s)
    sock = _bind(host, port)
    server = _server(stub)
    thread = threading.Thread(
        target=lambda: asyncio.run(stub.serve(server, sock)), name="llm-stub", daemon=True
    )
    thread.start()
    try:
        _wait_started(server, thread)
        stub.base_url = _url(sock)
        yield stub
    finally:
        stub.close(server)
        thread.join(timeout=10)
        sock.close()


def _wait_started(server: uvicorn.Server, thread: threading.Thread, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the LLM stub's server thread ended before it started")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the LLM stub did not start within {timeout_s} s")
        time.sleep(0.01)


def serve(host: str, port: int, latency_s: float) -> None:
    """Serve in the foreground until interrupted (uvicorn handles Ctrl-C and SIGTERM)."""
    stub = Stub(latency_s=latency_s)
    sock = _bind(host, port)
    stub.base_url = _url(sock)
    logger.info("LLM stub at %s, latency %.0f ms", stub.base_url, latency_s * 1000)
    asyncio.run(stub.serve(_server(stub), sock))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m evals.llm_stub",
        description="OpenAI-compatible chat stub answering valid drafts after a fixed latency.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    serve(args.host, args.port, args.latency_ms / 1000)


if __name__ == "__main__":
    main()
