"""What a connector hands the sync: typed records about people as the source names them,
deletions, and skips with their reason, in batches that each end at a cursor.

A connector knows its source's API and nothing of fairdraft's people: it names subjects
and authors by `Identity` (a GitHub login, a Jira account id, a Slack user id, with the
work email where the source gives one); the sync resolves them to employees
(service/connectors/identities.py), keeps out opted-out people, and writes the rest.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeAlias

# The JSON a cursor or a record's metadata holds.
Json: TypeAlias = str | int | float | bool | list["Json"] | dict[str, "Json"] | None
Cursor = dict[str, Json]


@dataclass(frozen=True)
class Identity:
    """A person as one source names them. `system` is the identity namespace (github, jira,
    slack), `external_id` its stable id (a login, an accountId, a user id)."""

    system: str
    external_id: str
    display_name: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class SourceRecord:
    """One piece of evidence as the source has it. `external_id` is unique within the
    connector's source (e.g. "pr:org/repo#12"); `kind` is one of retrieval.schema's
    RECORD_KINDS. Bodies hold only what drafting needs: no code, no attachments."""

    external_id: str
    kind: str
    subject: Identity
    occurred_at: datetime
    body: str
    title: str | None = None
    author: Identity | None = None
    metadata: Mapping[str, Json] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """Something fetched and not kept, and why ("a bot's pull request", "not merged")."""

    external_id: str
    reason: str


@dataclass
class Batch:
    """What one page (or a few) of the source gave. Once its records, deletions and skips
    are written, `cursor` is saved: a run stopped after it resumes from there."""

    cursor: Cursor
    records: list[SourceRecord] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    fetched: int = 0  # items read from the source for this batch (records, deletions, skips)
    # On a full run, for a source that hides older history (Slack's free plans show 90
    # days): everything since this moment was yielded, so the sweep spares what is older.
    # Several batches saying it: the latest moment wins (the sweep removes the least).
    complete_since: datetime | None = None


class WaitObserver(Protocol):
    """Told of every rate-limit wait, as it starts: the run counts them and /metrics
    shows them."""

    def __call__(self, seconds: float, reason: str) -> None: ...


Sleeper = Callable[[float], None]


class Connector(Protocol):
    """A source of evidence. `name` is the connector's name and its records' `source`;
    `system` the identity namespace its people come from. `complete_on_full`: a full run
    yields everything the source still has, so what it did not yield was deleted there."""

    @property
    def name(self) -> str: ...

    @property
    def system(self) -> str: ...

    @property
    def complete_on_full(self) -> bool: ...

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        """Batches of what changed since `cursor` ({} on a first or full run), each ending
        at the cursor to save once it is written. Rate limits are waited out (through the
        connector's HTTP client, telling `waits`) or, past the longest wait allowed,
        raised as RateLimited: the run pauses and the next one resumes from the last
        saved cursor."""
        ...
