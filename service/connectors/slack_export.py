"""Slack, from a workspace export zip: the same recognition records as the live sync, for
a workspace that gives an export rather than an app token (or to load history once).

The standard export layout (slack.com/help/articles/220556107): `users.json`,
`channels.json` (public channels; `groups.json` private ones where the export has them),
and a folder per channel of `YYYY-MM-DD.json` files, each a list of messages. Only the
folders of the channels named in FAIRDRAFT_SLACK_CHANNELS are read; direct messages
(`dms.json`, `mpims.json` and their folders) never are.

The zip is hostile input: its member count and total uncompressed size are bounded before
anything is read, each member is read into memory with a bound (a size the zip lies about
is caught), and no name in it is ever used as a path on disk: members are looked up by
names fairdraft builds from the channel named in settings and a date it parsed.

Edits: a message is exported as it was last edited; re-reading an export updates its
records. Deletions: the cursor remembers which records each message gave (the same memory
as the live sync, under the same channel ids); a remembered message from a day the export
covers (between its first and last day) that the export no longer has is deleted, as is
the record of a person an edit no longer names. What an export cannot tell (a day outside
its range) is left as it is.
"""

import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from domain.errors import Invalid, Misconfigured
from service.connectors.model import Batch, Connector, Cursor, Skipped, WaitObserver
from service.connectors.slack_messages import (
    MALFORMED,
    ChannelMemory,
    SlackChannel,
    SlackUser,
    cursor_of,
    day_of,
    gone,
    memories,
    merged,
    newest,
    parse_messages,
    take,
)
from service.settings import Settings

MAX_MEMBER_BYTES = 256 * 1024 * 1024  # one JSON file of the export
_DAY_FILE = re.compile(r"^(?:[^/]+/)?[^/]+/(\d{4}-\d{2}-\d{2})\.json$")
_USERS = TypeAdapter(list[SlackUser])
_CHANNELS = TypeAdapter(list[SlackChannel])
_FIELD = "export"


@dataclass(frozen=True)
class ExportLimits:
    max_members: int
    max_bytes: int


class SlackExport:
    """An open export zip, read only through bounded lookups by name."""

    def __init__(self, path: Path, limits: ExportLimits) -> None:
        self.label = path.name
        try:
            self.zip = zipfile.ZipFile(path)
        except FileNotFoundError:
            raise Invalid(f"{self.label}: no such file", field=_FIELD) from None
        except (zipfile.BadZipFile, OSError):
            raise Invalid(f"{self.label} is not a zip file", field=_FIELD) from None
        infos = self.zip.infolist()
        if len(infos) > limits.max_members:
            self.zip.close()
            raise Invalid(
                f"{self.label} holds {len(infos)} files, over the {limits.max_members} allowed",
                field=_FIELD,
            )
        total = sum(info.file_size for info in infos)
        if total > limits.max_bytes:
            self.zip.close()
            raise Invalid(
                f"{self.label} unpacks to {total} bytes, over the {limits.max_bytes} allowed",
                field=_FIELD,
            )
        self.names = {info.filename for info in infos if not info.is_dir()}
        self.root = self._root()

    def close(self) -> None:
        self.zip.close()

    def __enter__(self) -> "SlackExport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _root(self) -> str:
        """'' when users.json is at the top (Slack's layout), or the one folder holding
        it (an export unpacked and zipped again)."""
        if "users.json" in self.names:
            return ""
        folders = {
            name[: -len("users.json")] for name in self.names if name.endswith("/users.json")
        }
        folders = {f for f in folders if f.count("/") == 1}
        if len(folders) != 1:
            raise Invalid(
                f"{self.label} has no users.json at its top: is it a Slack workspace export?",
                field=_FIELD,
            )
        return folders.pop()

    def read_json(self, name: str) -> object:
        """One member's JSON, read with a bound; `name` is built by fairdraft."""
        member = self.root + name
        if member not in self.names:
            raise Invalid(f"{self.label} has no {name}", field=_FIELD)
        try:
            with self.zip.open(member) as handle:
                raw = handle.read(MAX_MEMBER_BYTES + 1)
        except (zipfile.BadZipFile, RuntimeError, OSError, ValueError, EOFError):
            raise Invalid(
                f"{self.label}: {name} cannot be read (damaged or encrypted)", field=_FIELD
            ) from None
        if len(raw) > MAX_MEMBER_BYTES:
            raise Invalid(f"{self.label}: {name} is over {MAX_MEMBER_BYTES} bytes", field=_FIELD)
        try:
            return json.loads(raw)
        except ValueError:
            raise Invalid(f"{self.label}: {name} is not JSON", field=_FIELD) from None

    def users(self) -> dict[str, SlackUser]:
        try:
            users = _USERS.validate_python(self.read_json("users.json"))
        except ValidationError as exc:
            raise Invalid(
                f"{self.label}: users.json is not shaped as Slack's ({_where(exc)})", field=_FIELD
            ) from None
        return {user.id: user for user in users}

    def channels(self) -> dict[str, SlackChannel]:
        """Channels by name, public (channels.json) and private (groups.json, where the
        export has it); never dms.json or mpims.json."""
        found: dict[str, SlackChannel] = {}
        for name in ("channels.json", "groups.json"):
            if self.root + name not in self.names:
                continue
            try:
                listed = _CHANNELS.validate_python(self.read_json(name))
            except ValidationError as exc:
                raise Invalid(
                    f"{self.label}: {name} is not shaped as Slack's ({_where(exc)})", field=_FIELD
                ) from None
            found.update({c.name: c for c in listed if not (c.is_im or c.is_mpim)})
        return found

    def days(self, channel: str) -> list[date]:
        """The days a channel's folder has, from member names matched exactly."""
        prefix = f"{self.root}{channel}/"
        found: list[date] = []
        for name in self.names:
            if name.startswith(prefix) and re.fullmatch(
                r"\d{4}-\d{2}-\d{2}\.json", name[len(prefix) :]
            ):
                parsed = _date(name[len(prefix) : -len(".json")])
                if parsed is not None:
                    found.append(parsed)
        return sorted(found)

    def span(self) -> tuple[date, date] | None:
        """The first and last day any channel folder of the export has."""
        days = [
            parsed
            for name in self.names
            if name.startswith(self.root)
            and (match := _DAY_FILE.match(name)) is not None
            and (parsed := _date(match.group(1))) is not None
        ]
        return (min(days), max(days)) if days else None


class SlackExportConnector:
    """The named channels of one export zip, as a connector the sync runs once."""

    name = "slack"  # the same source as the live sync: the same records, not copies
    system = "slack"
    complete_on_full = False  # an export may cover a date range only: no sweep

    def __init__(self, path: Path, settings: Settings) -> None:
        if not settings.slack_channels:
            raise Misconfigured(
                "FAIRDRAFT_SLACK_CHANNELS names no channel: which of the export's channels "
                "are recognition?",
                field="slack_channels",
            )
        self.path = path
        self.channels = tuple(settings.slack_channels)
        self.limits = ExportLimits(
            settings.slack_export_max_members, settings.slack_export_max_bytes
        )

    def sync(self, cursor: Cursor, *, full: bool, waits: WaitObserver) -> Iterator[Batch]:
        del waits  # a file has no rate limit
        state = {} if full else memories(cursor)
        with SlackExport(self.path, self.limits) as export:
            users = export.users()
            listed = export.channels()
            span = export.span()
            for name in self.channels:
                channel = listed.get(name)
                if channel is None:
                    yield Batch(
                        cursor=cursor_of(state),
                        skipped=[
                            Skipped(f"channel:{name}", "a named channel the export does not have")
                        ],
                    )
                    continue
                yield from self._channel(export, channel, users, state, span)

    def _channel(
        self,
        export: SlackExport,
        channel: SlackChannel,
        users: dict[str, SlackUser],
        state: dict[str, ChannelMemory],
        span: tuple[date, date] | None,
    ) -> Iterator[Batch]:
        before = state.get(channel.id, ChannelMemory())
        now: dict[str, list[str]] = {}
        latest = before.latest
        for day in export.days(channel.name):
            data = export.read_json(f"{channel.name}/{day.isoformat()}.json")
            items = data if isinstance(data, list) else [data]
            messages, bad = parse_messages(items)
            batch = Batch(cursor={}, fetched=len(items))
            batch.skipped += [Skipped(f"{channel.id}:{day}", MALFORMED) for _ in range(bad)]
            latest = newest(latest, take(channel, messages, users.get, batch, now, before.seen))
            partial = ChannelMemory(before.latest, merged(before.seen, now))
            batch.cursor = cursor_of({**state, channel.id: partial})
            yield batch

        def covered(ts: str) -> bool:
            return span is not None and span[0] <= day_of(ts) <= span[1]

        deleted = gone(channel.id, before.seen, now, covered)
        seen = {ts: ids for ts, ids in before.seen.items() if not covered(ts)}
        seen.update(now)
        state[channel.id] = ChannelMemory(latest, seen)
        yield Batch(cursor=cursor_of(state), deleted=deleted, fetched=len(deleted))


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _where(exc: ValidationError) -> str:
    first = exc.errors()[0]
    return ".".join(str(part) for part in first["loc"]) or "the file"


def slack_export(path: Path, settings: Settings) -> Connector:
    """The connector `fairdraft sync slack --export FILE.zip` runs (the CLI is the lead's):
    the zip is checked here (a file that is no zip, over the limits, or without users.json
    is refused with Invalid naming it and the reason) and read again when the run starts."""
    connector = SlackExportConnector(path, settings)
    with SlackExport(path, connector.limits):
        pass
    return connector
