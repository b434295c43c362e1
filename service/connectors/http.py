"""The HTTP client GitHub's and Jira's connectors share: rate limits waited out, pages
followed, answers bounded in size before they are read.

Plain httpx rather than each provider's SDK, because what matters here is the same for
both and must be visible: every wait is told to the run (and so to /metrics and the HR
page), a wait longer than the connector allows pauses the run instead of holding a worker
for an hour, conditional requests (ETag / If-None-Match) make an unchanged page cost
nothing against GitHub's quota, and an answer larger than the limit is refused before it
is parsed. Slack's Web API goes through Slack's own SDK (service/connectors/slack.py).
"""

import json
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from domain.errors import Unavailable
from service.connectors.model import Json, Sleeper, WaitObserver

MAX_ANSWER_BYTES = 20 * 1024 * 1024  # one page of JSON; GitHub's largest is far smaller
_LINK = re.compile(r'<([^>]+)>;\s*rel="([^"]+)"')
_SERVER_ERRORS_TRIED = 4


class RateLimited(Unavailable):
    """The source asked for a wait longer than the connector allows: the run pauses with
    its cursor saved, and the next scheduled run resumes."""

    def __init__(self, source: str, wait_s: float) -> None:
        super().__init__(
            f"{source} asked to wait {wait_s:.0f} s before the next request; the run is "
            "paused and the next one resumes where it stopped",
            field="rate_limit",
        )
        self.wait_s = wait_s


class SourceFailed(Unavailable):
    """The source answered with an error that waiting does not mend (401, 404, a 5xx that
    persisted): the run fails with this message, its last cursor kept."""


@dataclass(frozen=True)
class Answer:
    """A JSON answer with what the connector needs of its headers."""

    status: int
    data: Json
    etag: str | None
    links: Mapping[str, str]
    headers: Mapping[str, str]


class SourceClient:
    """GET JSON from one API, honouring its rate limits.

    A 429, or a 403 that says it is a rate limit (GitHub's primary limit:
    x-ratelimit-remaining 0; its secondary limit: retry-after, or a message saying so), is
    waited out for Retry-After seconds or until x-ratelimit-reset, when that is within
    `max_wait_s`; a longer wait raises RateLimited. A 5xx is tried again with back-off.
    """

    def __init__(
        self,
        source: str,
        base_url: str,
        *,
        headers: Mapping[str, str],
        sleeper: Sleeper = time.sleep,
        waits: WaitObserver | None = None,
        max_wait_s: float = 900.0,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.source = source
        self.sleeper = sleeper
        self.waits = waits
        self.max_wait_s = max_wait_s
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers),
            timeout=timeout_s,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "SourceClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(
        self, url: str, *, params: Mapping[str, str | int] | None = None, etag: str | None = None
    ) -> Answer:
        """One GET; status 304 (not modified, when `etag` is given) comes back with data
        None. Other 4xx raise SourceFailed naming the status."""
        return self.request("GET", url, params=params, etag=etag)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Json = None,
        etag: str | None = None,
    ) -> Answer:
        server_errors = 0
        waited = 0.0  # for this request: a source that keeps saying "wait" is not waited for ever
        while True:
            headers = {"If-None-Match": etag} if etag else {}
            try:
                answer = self._send(method, url, params, body, headers)
            except httpx.TransportError as exc:
                server_errors += 1
                if server_errors >= _SERVER_ERRORS_TRIED:
                    raise SourceFailed(
                        f"{self.source} could not be reached ({type(exc).__name__})",
                        field="connection",
                    ) from None
                self.sleeper(2.0**server_errors)
                continue
            wait = rate_limit_wait(answer.status, answer.headers, answer.data)
            if wait is not None:
                waited += wait
                self._wait(wait, waited, f"{self.source} rate limit ({answer.status})")
                continue
            if answer.status >= 500 and server_errors + 1 < _SERVER_ERRORS_TRIED:
                server_errors += 1
                self.sleeper(2.0**server_errors)
                continue
            if answer.status >= 400:
                raise SourceFailed(
                    f"{self.source} answered {answer.status} to {method} {_path(url)}",
                    field="connection",
                )
            return answer

    def pages(self, url: str, *, params: Mapping[str, str | int] | None = None) -> Iterator[Answer]:
        """The first page and every `rel="next"` one after it (RFC 8288 Link headers, as
        GitHub pages)."""
        answer = self.get(url, params=params)
        yield answer
        while (next_url := answer.links.get("next")) is not None:
            self._same_origin(next_url)
            answer = self.get(next_url)
            yield answer

    def _same_origin(self, url: str) -> None:
        """A next page is followed on the source's own scheme, host and port only: the
        client sends its token with every request, and a Link header naming another host
        (a hostile or misconfigured upstream) must not receive it."""
        target = httpx.URL(url)
        if not target.is_relative_url:
            base = self._client.base_url
            if (target.scheme, target.host, target.port) != (base.scheme, base.host, base.port):
                raise SourceFailed(
                    f"{self.source} named a next page on another host ({target.host}); "
                    "it is not followed",
                    field="connection",
                )

    def _wait(self, seconds: float, waited: float, reason: str) -> None:
        """Wait `seconds`, or pause the run when this request's waits (`waited`, these
        seconds included) would pass the longest allowed."""
        if waited > self.max_wait_s:
            raise RateLimited(self.source, waited)
        if self.waits is not None:
            self.waits(seconds, reason)
        self.sleeper(seconds)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        body: Json,
        headers: dict[str, str],
    ) -> Answer:
        content = json.dumps(body).encode() if body is not None else None
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._client.build_request(
            method, url, params=params, content=content, headers=headers
        )
        response = self._client.send(request, stream=True)
        try:
            raw = _bounded_body(response, self.source)
        finally:
            response.close()
        data: Json = None
        if raw and response.status_code != 304:
            try:
                data = json.loads(raw)
            except ValueError:
                if response.status_code < 400:
                    raise SourceFailed(
                        f"{self.source} answered with something that is not JSON",
                        field="connection",
                    ) from None
        lowered = {key.lower(): value for key, value in response.headers.items()}
        return Answer(
            status=response.status_code,
            data=data,
            etag=lowered.get("etag"),
            links=parse_links(lowered.get("link", "")),
            headers=lowered,
        )


def _bounded_body(response: httpx.Response, source: str) -> bytes:
    declared = response.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise SourceFailed(f"{source} sent an answer over {MAX_ANSWER_BYTES} bytes")
    parts: list[bytes] = []
    size = 0
    for part in response.iter_bytes():
        size += len(part)
        if size > MAX_ANSWER_BYTES:
            raise SourceFailed(f"{source} sent an answer over {MAX_ANSWER_BYTES} bytes")
        parts.append(part)
    return b"".join(parts)


def _path(url: str) -> str:
    """A URL without its query: messages never carry tokens or search terms."""
    return url.split("?", 1)[0]


def parse_links(header: str) -> dict[str, str]:
    """rel -> URL of a Link header."""
    return {rel: url for url, rel in _LINK.findall(header)}


def rate_limit_wait(status: int, headers: Mapping[str, str], data: Any) -> float | None:
    """Seconds to wait before asking again, when the answer is a rate limit; else None.

    Retry-After (seconds or an HTTP date) wins; then x-ratelimit-reset (epoch seconds, as
    GitHub sends) when x-ratelimit-remaining is 0. A 403 is a rate limit only when its
    headers or message say so (GitHub's secondary limit), never a plain permission error.
    """
    if status not in (403, 429):
        return None
    retry_after = headers.get("retry-after")
    if retry_after:
        return _retry_after_s(retry_after)
    if headers.get("x-ratelimit-remaining") == "0" and headers.get("x-ratelimit-reset"):
        reset = headers["x-ratelimit-reset"]
        if reset.isdigit():
            return max(1.0, float(reset) - time.time() + 1.0)
    if status == 429:
        return 60.0
    message = data.get("message", "") if isinstance(data, dict) else ""
    if isinstance(message, str) and "rate limit" in message.lower():
        return 60.0  # GitHub: "wait at least one minute" when no header says how long
    return None


def _retry_after_s(value: str) -> float:
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 60.0
    return max(1.0, moment.timestamp() - time.time())
