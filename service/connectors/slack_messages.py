"""What Slack's live sync and its export reader share: the shapes of a user and a message
as Slack sends them, a kudos message turned into one recognition record per person it
mentions, and the memory (in the cursor) of which records each message gave, from which
edits and deletions are told.

A message naming two people is two records, `CHANNEL:TS:USER`, about each, written by the
poster. Its text is stored with mentions as names (`<@U123>` becomes `@Ana Lima`), links
as their label, Slack's escapes undone and code blocks dropped; it is data, never read as
an instruction. Shapes from api.slack.com/types/user and api.slack.com/events/message
(and the same objects in a workspace export, slack.com/help/articles/220556107).
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.connectors.adf import strip_code
from service.connectors.model import Batch, Cursor, Identity, Json, Skipped, SourceRecord

SYSTEM = "slack"
TS = r"^\d{1,12}\.\d{1,9}$"
_MENTION = re.compile(r"<@([UW][A-Z0-9]{1,30})(?:\|[^>]{0,200})?>")
_CHANNEL = re.compile(r"<#[CG][A-Z0-9]{1,30}(?:\|([^>]{0,200}))?>")
_SPECIAL = re.compile(r"<!(here|channel|everyone)(?:\|[^>]{0,200})?>")
_SUBTEAM = re.compile(r"<!subteam\^[A-Z0-9]{1,30}(?:\|([^>]{0,200}))?>")
_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]{1,2000})(?:\|([^>]{0,500}))?>")
_CODE = re.compile(r"```.*?(?:```|$)", re.DOTALL)  # Slack's code blocks, on a line or not
_JOINS = frozenset({"channel_join", "channel_leave", "group_join", "group_leave"})
_GONE = frozenset({"tombstone", "message_deleted"})
_KEPT = frozenset({None, "thread_broadcast", "me_message", "file_share"})
_BOT = frozenset({"bot_message", "bot_add", "bot_remove"})

NO_AUTHOR = "a message with no author"
BOT = "a bot's message"
JOIN = "a channel join or leave"
EVENT = "a channel event, not a message"
NO_MENTION = "no one mentioned"
MALFORMED = "a message not shaped as Slack's"


class _Shape(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SlackProfile(_Shape):
    display_name: str | None = None
    real_name: str | None = None
    email: str | None = None


class SlackUser(_Shape):
    id: str = Field(min_length=1, max_length=40)
    name: str | None = None
    real_name: str | None = None
    deleted: bool = False
    is_bot: bool = False
    profile: SlackProfile | None = None

    @property
    def display(self) -> str:
        """The name Slack shows: display name, else real name, else handle."""
        profile = self.profile or SlackProfile()
        for name in (profile.display_name, profile.real_name, self.real_name, self.name):
            if name and name.strip():
                return name.strip()[:200]
        return self.id

    def identity(self) -> Identity:
        email = self.profile.email if self.profile else None
        return Identity(SYSTEM, self.id, self.display, email or None)


class SlackEdited(_Shape):
    user: str | None = None
    ts: str | None = None


class SlackMessage(_Shape):
    type: str | None = "message"
    subtype: str | None = None
    user: str | None = None
    bot_id: str | None = None
    text: str = ""
    ts: str = Field(pattern=TS)
    edited: SlackEdited | None = None
    message: "SlackMessage | None" = None  # message_changed: the message as it is now
    deleted_ts: str | None = Field(default=None, pattern=TS)  # message_deleted: which one

    def current(self) -> "SlackMessage":
        """A message_changed event stands for the message it carries (same ts as the
        original); anything else for itself."""
        if self.subtype == "message_changed" and self.message is not None:
            return self.message
        return self


class SlackChannel(_Shape):
    id: str = Field(min_length=1, max_length=40)
    name: str = ""
    is_im: bool = False
    is_mpim: bool = False


UserLookup = Callable[[str], SlackUser | None]


def parse_messages(items: Iterable[object]) -> tuple[list[SlackMessage], int]:
    """Messages, and how many items were not shaped as one (counted, not fatal: one bad
    message in a year of kudos should not stop the rest)."""
    messages: list[SlackMessage] = []
    bad = 0
    for item in items:
        try:
            messages.append(SlackMessage.model_validate(item))
        except ValidationError:
            bad += 1
    return messages, bad


@dataclass
class Outcome:
    """What one message gave: its records (subjects' user ids in `subjects`), or a skip."""

    records: list[SourceRecord] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    skipped: Skipped | None = None


def read_message(channel: SlackChannel, message: SlackMessage, users: UserLookup) -> Outcome:
    """One message of a kudos channel as recognition records, one per person it names."""
    key = f"{channel.id}:{message.ts}"
    if message.subtype in _JOINS:
        return Outcome(skipped=Skipped(key, JOIN))
    if message.bot_id or message.subtype in _BOT:
        return Outcome(skipped=Skipped(key, BOT))
    if message.subtype not in _KEPT:
        return Outcome(skipped=Skipped(key, EVENT))
    poster = users(message.user) if message.user else None
    if poster is None:
        return Outcome(skipped=Skipped(key, NO_AUTHOR))
    if poster.is_bot:
        return Outcome(skipped=Skipped(key, BOT))
    named = [users(uid) for uid in dict.fromkeys(_MENTION.findall(message.text))]
    subjects = [u for u in named if u is not None and not u.is_bot and u.id != poster.id]
    if not subjects:
        return Outcome(skipped=Skipped(key, NO_MENTION))
    body = render(message.text, users)
    moment = ts_time(message.ts)
    metadata: dict[str, Json] = {
        "channel": channel.name,
        "channel_id": channel.id,
        "ts": message.ts,
        "mentions": [u.id for u in subjects],
        "edited": message.edited is not None,
    }
    records = [
        SourceRecord(
            external_id=f"{key}:{subject.id}",
            kind="recognition",
            subject=subject.identity(),
            author=poster.identity(),
            occurred_at=moment,
            title=f"Recognition in #{channel.name} from {poster.display}",
            body=body,
            metadata=metadata,
        )
        for subject in subjects
    ]
    return Outcome(records=records, subjects=[u.id for u in subjects])


def take(
    channel: SlackChannel,
    messages: Iterable[SlackMessage],
    users: UserLookup,
    batch: Batch,
    now: dict[str, list[str]],
    before: Mapping[str, list[str]],
) -> str | None:
    """Read messages into `batch`: their records and skips, and the deletions they tell
    at once (a message_deleted event; a person an edit read in this same run dropped).
    `now` collects whom each message's records are about; the newest ts is returned."""
    latest: str | None = None
    for event in messages:
        latest = newest(latest, event.ts)
        message = event.current()
        if message.subtype in _GONE:
            ts = message.deleted_ts or message.ts
            dropped = dict.fromkeys([*before.get(ts, []), *now.pop(ts, [])])
            batch.deleted += [f"{channel.id}:{ts}:{uid}" for uid in dropped]
            continue
        outcome = read_message(channel, message, users)
        if outcome.skipped is not None:
            batch.skipped.append(outcome.skipped)
        earlier = now.pop(message.ts, [])
        batch.deleted += [
            f"{channel.id}:{message.ts}:{uid}" for uid in earlier if uid not in outcome.subjects
        ]
        if outcome.records:
            now[message.ts] = outcome.subjects
            batch.records += outcome.records
    return latest


def render(text: str, users: UserLookup) -> str:
    """Slack's markup as plain text: mentions as names, links as their label, code
    blocks dropped, &lt; &gt; &amp; undone (last, so no markup is made of escapes)."""

    def person(match: re.Match[str]) -> str:
        user = users(match.group(1))
        return f"@{user.display}" if user is not None else "@someone"

    text = strip_code(_CODE.sub("\n", text))
    text = _MENTION.sub(person, text)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1) or 'a-channel'}", text)
    text = _SPECIAL.sub(lambda m: f"@{m.group(1)}", text)
    text = _SUBTEAM.sub(lambda m: m.group(1) or "@a-group", text)
    text = _LINK.sub(lambda m: m.group(2) or m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


@dataclass
class ChannelMemory:
    """What the cursor keeps of one channel: the newest message read (`latest`, a Slack
    ts) and, for messages still to be watched, the people each one's records are about."""

    latest: str | None = None
    seen: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Json]:
        seen: dict[str, Json] = {ts: list(ids) for ts, ids in sorted(self.seen.items())}
        return {"latest": self.latest, "seen": seen}

    @classmethod
    def from_json(cls, data: object) -> "ChannelMemory":
        """A cursor we cannot read is an empty memory: the run re-reads, idempotently."""
        if not isinstance(data, dict):
            return cls()
        latest = data.get("latest")
        seen_data = data.get("seen")
        seen: dict[str, list[str]] = {}
        if isinstance(seen_data, dict):
            for ts, ids in seen_data.items():
                if re.match(TS, ts) and isinstance(ids, list):
                    seen[ts] = [i for i in ids if isinstance(i, str)]
        return cls(latest if isinstance(latest, str) and re.match(TS, latest) else None, seen)


def memories(cursor: Cursor) -> dict[str, ChannelMemory]:
    channels = cursor.get("channels")
    if not isinstance(channels, dict):
        return {}
    return {cid: ChannelMemory.from_json(data) for cid, data in channels.items()}


def cursor_of(state: Mapping[str, ChannelMemory]) -> Cursor:
    channels: dict[str, Json] = {cid: memory.to_json() for cid, memory in sorted(state.items())}
    return {"channels": channels}


def gone(
    channel_id: str,
    before: Mapping[str, list[str]],
    now: Mapping[str, list[str]],
    covered: Callable[[str], bool],
) -> list[str]:
    """Records to delete: of the messages read before within what this read covers, those
    no longer there (deleted) and the people an edit no longer names."""
    deleted: list[str] = []
    for ts, subjects in before.items():
        if not covered(ts):
            continue
        still = set(now.get(ts, ()))
        deleted += [f"{channel_id}:{ts}:{uid}" for uid in subjects if uid not in still]
    return deleted


def merged(before: Mapping[str, list[str]], now: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The memory a run saves before it has read its whole window: every person a message
    gave a record about, before or now, so that a run stopped half-way still deletes, on
    its next try, the record of someone an edit dropped."""
    out = {ts: list(ids) for ts, ids in before.items()}
    for ts, ids in now.items():
        out[ts] = list(dict.fromkeys([*out.get(ts, []), *ids]))
    return out


def newest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a or b
    return a if ts_key(a) >= ts_key(b) else b


def ts_key(ts: str) -> tuple[int, int]:
    """A ts as exact integers (a float loses its last digits: 16 of them are significant)."""
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(9, "0")[:9] or "0")


def ts_time(ts: str) -> datetime:
    """A Slack ts (epoch seconds, a dot, a sequence) as an exact UTC time."""
    seconds, _, fraction = ts.partition(".")
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    return datetime.fromtimestamp(int(seconds), tz=UTC) + timedelta(microseconds=micro)


def day_of(ts: str) -> date:
    return ts_time(ts).date()
