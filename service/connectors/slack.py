"""Slack, live: recognition from the channels named in FAIRDRAFT_SLACK_CHANNELS, read with
Slack's own SDK (slack-sdk's WebClient), never a direct message or any other channel.

conversations.list finds the named channels' ids (public and private channels only: the
`im` and `mpim` types are never asked for), conversations.history reads each from its
cursor, page by page through `response_metadata.next_cursor`, and users.info names the
people (their work email, with the users:read.email scope, is how they are matched).

Edits and deletions: history gives a message as it is now (an edit's text, with its
`edited` field) and leaves a deleted one out (or shows a `tombstone` where it had
replies). So each run reads the last FAIRDRAFT_SLACK_REREAD_DAYS before its cursor again:
a message edited in that window updates its records (a mention removed deletes that
person's record), one gone from it deletes them. Older edits and deletions are followed
by a full run (`fairdraft sync slack --full`), whose records not seen are swept.

A 429 is waited out for its Retry-After (the wait told to the run), or, past
FAIRDRAFT_CONNECTOR_MAX_WAIT_S, pauses the run with its cursor kept.
"""

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse

from domain.errors import Misconfigured
from service.connectors.http import RateLimited, SourceFailed, rate_limit_wait
from service.connectors.model import Batch, Connector, Cursor, Skipped, Sleeper, WaitObserver
from service.connectors.slack_export import slack_export
from service.connectors.slack_messages import (
    MALFORMED,
    ChannelMemory,
    SlackChannel,
    SlackUser,
    cursor_of,
    gone,
    memories,
    merged,
    newest,
    parse_messages,
    take,
)
from service.settings import Settings

__all__ = ["SlackConnector", "from_settings", "slack_export"]  # registry's names

PAGE_SIZE = 200
DAY_S = 86_400
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_ERROR_CODE = re.compile(r"^[a-z_]{1,60}$")
_M = TypeVar("_M", bound=BaseModel)


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Metadata(_Shape):
    next_cursor: str | None = None


class _ChannelPage(_Shape):
    channels: list[SlackChannel] = Field(default_factory=list)
    response_metadata: _Metadata | None = None


class _HistoryPage(_Shape):
    messages: list[object] = Field(default_factory=list)
    has_more: bool = False
    response_metadata: _Metadata | None = None


class _UserAnswer(_Shape):
    user: SlackUser


class _Waits(RetryHandler):
    """slack-sdk's retry hook: a 429 waited out for its Retry-After, told to the run, or
    raised as RateLimited past the longest wait; a 5xx tried again a few times. The
    sleeper is injected, so tests record the waits instead of sleeping them."""

    def __init__(self, waits: WaitObserver, sleeper: Sleeper, max_wait_s: float) -> None:
        super().__init__(max_retry_count=20)
        self.waits = waits
        self.sleeper = sleeper
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None:
            return False
        if response.status_code in _SERVER_ERRORS:
            return state.current_attempt < 3
        return response.status_code == 429

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        assert response is not None  # _can_retry said yes only with one
        if response.status_code == 429:
            headers = {key.lower(): _first(values) for key, values in response.headers.items()}
            seconds = rate_limit_wait(429, headers, None) or 60.0
            if seconds > self.max_wait_s:
                raise RateLimited("slack", seconds)
            self.waits(seconds, "slack rate limit (429)")
            self.sleeper(seconds)
        else:
            self.sleeper(2.0 ** (state.current_attempt + 1))
        state.next_attempt_requested = True
        state.increment_current_attempt()


def _first(values: object) -> str:
    """slack-sdk gives a header as a list of values on errors, as a string otherwise."""
    if isinstance(values, list | tuple):
        return str(values[0]) if values else ""
    return str(values)


@dataclass
class _Users:
    """users.info, asked once a run per person (a kudos channel names few people)."""

    client: WebClient
    known: dict[str, SlackUser | None] = field(default_factory=dict)

    def __call__(self, user_id: str) -> SlackUser | None:
        if user_id not in self.known:
            self.known[user_id] = self._ask(user_id)
        return self.known[user_id]

    def _ask(self, user_id: str) -> SlackUser | None:
        try:
            answer = _call(self.client, "users.info", user=user_id)
        except SourceFailed as exc:
            if "user_not_found" in str(exc):
                return None
            raise
        return _shaped(_UserAnswer, answer, "users.info").user


class SlackConnector:
    """Recognition from the named channels, over the Web API."""

    name = "slack"
    system = "slack"
    complete_on_full = True  # a full run reads every named channel whole

    def __init__(
        self,
        settings: Settings,
        *,
        sleeper: Sleeper = time.sleep,
    ) -> None:
        if settings.slack_token is None or not settings.slack_channels:
            raise ValueError("the Slack connector needs FAIRDRAFT_SLACK_TOKEN and channels")
        self.token = settings.slack_token
        self.base_url = settings.slack_api_url
        self.channels = tuple(settings.slack_channels)
        self.reread_s = settings.slack_reread_days * DAY_S
        self.max_wait_s = settings.connector_max_wait_s
        self.sleeper = sleeper

    def client(self, waits: WaitObserver) -> WebClient:
        return WebClient(
            token=self.token.get_secret_value(),
            base_url=self.base_url,
            timeout=30,
            retry_handlers=[_Waits(waits, self.sleeper, self.max_wait_s)],
        )

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        client = self.client(waits)
        state = {} if full else memories(cursor)
        users = _Users(client)
        for channel in self.find_channels(client):
            yield from self._channel(client, channel, state, users)

    def find_channels(self, client: WebClient) -> list[SlackChannel]:
        """The named channels' ids, from conversations.list (public and private channels
        the app is in; direct messages are never listed)."""
        found: dict[str, SlackChannel] = {}
        page_cursor: str | None = None
        asked: set[str] = set()
        while True:
            answer = _call(
                client,
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=PAGE_SIZE,
                cursor=page_cursor,
            )
            page = _shaped(_ChannelPage, answer, "conversations.list")
            for channel in page.channels:
                if channel.name in self.channels and not (channel.is_im or channel.is_mpim):
                    found[channel.name] = channel
            page_cursor = _next(page.response_metadata, asked, "conversations.list")
            if not page_cursor or len(found) == len(self.channels):
                break
        missing = [name for name in self.channels if name not in found]
        if missing:
            raise Misconfigured(
                f"Slack has no channel named {missing[0]!r} that the app can read: invite "
                "the app to it, or correct FAIRDRAFT_SLACK_CHANNELS",
                field="slack_channels",
            )
        return [found[name] for name in self.channels]

    def _channel(
        self,
        client: WebClient,
        channel: SlackChannel,
        state: dict[str, ChannelMemory],
        users: _Users,
    ) -> Iterator[Batch]:
        """The channel's history from its cursor less the re-read window, one batch a
        page; then a batch with what is gone and the cursor moved on."""
        before = state.get(channel.id, ChannelMemory())
        oldest = 0.0 if before.latest is None else max(0.0, float(before.latest) - self.reread_s)
        now: dict[str, list[str]] = {}
        latest = before.latest
        first: float | None = None  # the oldest message the history gave
        page_cursor: str | None = None
        asked: set[str] = set()
        while True:
            answer = _call(
                client,
                "conversations.history",
                channel=channel.id,
                oldest=f"{oldest:.6f}",
                limit=PAGE_SIZE,
                cursor=page_cursor,
            )
            page = _shaped(_HistoryPage, answer, "conversations.history")
            batch, latest = self._page(channel, page, users, now, before.seen, latest)
            first = _oldest(page, first)
            partial = ChannelMemory(before.latest, merged(before.seen, now))
            batch.cursor = cursor_of({**state, channel.id: partial})
            yield batch
            page_cursor = _next(page.response_metadata, asked, "conversations.history")
            if not page_cursor or not page.has_more:
                break
        deleted = gone(channel.id, before.seen, now, lambda ts: float(ts) >= oldest)
        kept = {ts: ids for ts, ids in before.seen.items() if float(ts) < oldest}
        kept.update(now)
        horizon = float(latest) - self.reread_s if latest is not None else 0.0
        state[channel.id] = ChannelMemory(
            latest, {ts: ids for ts, ids in kept.items() if float(ts) >= horizon}
        )
        yield Batch(
            cursor=cursor_of(state),
            deleted=deleted,
            fetched=len(deleted),
            complete_since=_covered_since(first) if oldest == 0.0 else None,
        )

    def _page(
        self,
        channel: SlackChannel,
        page: _HistoryPage,
        users: _Users,
        now: dict[str, list[str]],
        before: dict[str, list[str]],
        latest: str | None,
    ) -> tuple[Batch, str | None]:
        messages, bad = parse_messages(page.messages)
        batch = Batch(cursor={}, fetched=len(page.messages))
        batch.skipped += [Skipped(f"{channel.id}:?", MALFORMED) for _ in range(bad)]
        newest_here = take(channel, messages, users, batch, now, before)
        return batch, newest(latest, newest_here)


def _oldest(page: "_HistoryPage", first: float | None) -> float | None:
    """The oldest message time seen so far, this page's included."""
    times = [float(m["ts"]) for m in page.messages if isinstance(m, dict) and _is_ts(m.get("ts"))]
    return min([*times, *([first] if first is not None else [])], default=None)


def _is_ts(value: object) -> bool:
    try:
        return isinstance(value, str) and float(value) >= 0
    except ValueError:
        return False


def _covered_since(first: float | None) -> datetime:
    """What a whole-history read of a channel covers: from its oldest message on (a free
    workspace's API hides what is older, which a full run's sweep must then spare), or
    nothing at all for a channel that showed none."""
    if first is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(first, UTC)


def _next(metadata: _Metadata | None, asked: set[str], method: str) -> str | None:
    """The next page's cursor, or None; the same cursor twice stops the run (a source
    that would otherwise be read forever)."""
    cursor = metadata.next_cursor if metadata is not None else None
    if not cursor:
        return None
    if cursor in asked:
        raise SourceFailed(
            f"slack gave the same next_cursor twice for {method}: the run stops rather than loop",
            field="connection",
        )
    asked.add(cursor)
    return cursor


def _call(client: WebClient, method: str, **params: Any) -> SlackResponse:
    """One Web API call, its failures as SourceFailed naming the method and Slack's error
    code (a code, never the answer's text)."""
    arguments = {key: value for key, value in params.items() if value is not None}
    try:
        return client.api_call(method, http_verb="GET", params=arguments)
    except SlackApiError as exc:
        code = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        if isinstance(code, str) and code.startswith("Received a response in a non-JSON"):
            raise SourceFailed(
                f"slack answered {method} with something that is not JSON", field="connection"
            ) from None
        reason = code if isinstance(code, str) and _ERROR_CODE.match(code) else "an error"
        raise SourceFailed(f"slack answered {reason} to {method}", field="connection") from None
    except (SlackClientError, OSError) as exc:
        raise SourceFailed(
            f"slack could not be reached for {method} ({type(exc).__name__})", field="connection"
        ) from None


def _shaped(model: type[_M], answer: SlackResponse, method: str) -> _M:
    """The answer as the model, or SourceFailed naming where it was malformed."""
    try:
        return model.model_validate(answer.data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the answer"
        raise SourceFailed(
            f"slack answered {method} with a page not shaped as Slack's: {where}",
            field="connection",
        ) from None


def from_settings(
    settings: Settings,
    *,
    sleeper: Sleeper = time.sleep,
    transport: httpx.BaseTransport | None = None,
) -> Connector | None:
    """The live Slack connector, or None without a token and channels. (`transport` is
    for the httpx-based connectors; slack-sdk speaks HTTP itself, and tests point
    FAIRDRAFT_SLACK_API_URL at a local server.)"""
    del transport
    if settings.slack_token is None or not settings.slack_channels:
        return None
    return SlackConnector(settings, sleeper=sleeper)
