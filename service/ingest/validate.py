"""Checks of a file's bytes before any row is read, shared by the CLI and the upload.

A file that is not UTF-8 text (compressed, binary, another encoding, NUL bytes) or that has
a line over the limit is refused whole, each problem named by line: read as text it would
fail halfway with no line to show, and one huge line would become thousands of chunks.
`--skip-invalid` does not skip these, because they say the file is not the export it claims
to be. The row-level checks here (nesting depth, text PostgreSQL cannot store) are used by
the records parser, where a bad row is refused or skipped like any other invalid row.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import islice
from pathlib import Path
from typing import BinaryIO

from service.ingest.errors import IngestError, IngestRefused, RowError
from service.settings import Settings

MAX_PROBLEMS = 20  # byte-level problems listed before the check stops reading the file
_SNIFF_BYTES = 64
_UTF8_BOM = b"\xef\xbb\xbf"
_SKIP_CHUNK = 1 << 16
_KEY_SHOWN = 64  # characters of a field name quoted in an error
# Outside a string, the characters that matter for nesting: a bracket, or the quote that
# opens a string. Inside one, the rest of it up to its closing quote, escapes skipped; the
# possessive quantifiers never give back, so a string that does not end costs one pass.
# Enough to measure nesting without parsing: brackets inside strings are skipped with them.
_JSON_TOKEN = re.compile(r'["\[\]{}]')
_STRING_REST = re.compile(r'(?:[^"\\]++|\\.)*+"')
_KEY_COLON = re.compile(r"\s*+:")  # after a string, what makes it a key
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class FileLimits:
    """The sizes past which ingest refuses input; defaults match Settings'."""

    max_line_bytes: int = 1024 * 1024
    max_body_chars: int = 100_000
    max_metadata_depth: int = 16

    @classmethod
    def from_settings(cls, settings: Settings) -> "FileLimits":
        return cls(
            max_line_bytes=settings.ingest_max_line_bytes,
            max_body_chars=settings.ingest_max_body_chars,
            max_metadata_depth=settings.ingest_max_metadata_depth,
        )


@cache
def signatures() -> tuple[tuple[bytes, str], ...]:
    """(leading bytes, what the file is) of formats that are not a text export."""
    data = files("service.ingest").joinpath("file_signatures.txt").read_text(encoding="utf-8")
    found: list[tuple[bytes, str]] = []
    for line in data.splitlines():
        if line.strip() and not line.startswith("#"):
            magic, name = line.split("\t", 1)
            found.append((bytes.fromhex(magic), name.strip()))
    return tuple(found)


def binary_kind(head: bytes) -> str | None:
    """What a file starting with `head` is, when its signature says it is not UTF-8 text."""
    return next((name for magic, name in signatures() if head.startswith(magic)), None)


def sniff(path: Path) -> str | None:
    """binary_kind of a file on disk; None also when it cannot be read (reported later)."""
    try:
        with path.open("rb") as handle:
            return binary_kind(handle.read(_SNIFF_BYTES))
    except OSError:
        return None


def check_file(path: Path, limits: FileLimits, *, label: str | None = None) -> None:
    """IngestRefused naming every byte-level problem of the file (up to MAX_PROBLEMS), or
    nothing. `label` is how messages name the file (an upload's own name, not our path)."""
    name = label or str(path)
    try:
        problems = file_problems(path, limits)
    except OSError as exc:
        raise IngestError(
            f"{name}: cannot read the file ({exc.strerror or exc})", field="file"
        ) from None
    if problems:
        raise IngestRefused(name, problems)


def file_problems(path: Path, limits: FileLimits) -> list[RowError]:
    with path.open("rb") as handle:
        kind = binary_kind(handle.read(_SNIFF_BYTES))
        if kind is not None:
            reason = f"this is {kind}, not a UTF-8 text export; upload the .csv or .jsonl itself"
            return [RowError(1, "(file)", reason)]
        handle.seek(0)
        problems = list(islice(_line_problems(handle, limits.max_line_bytes), MAX_PROBLEMS + 1))
    if len(problems) > MAX_PROBLEMS:
        last = problems[MAX_PROBLEMS - 1].line
        reason = (
            f"stopped after {MAX_PROBLEMS} problems: this does not look like a UTF-8 text export"
        )
        problems = [*problems[:MAX_PROBLEMS], RowError(last, "(file)", reason)]
    return problems


def _line_problems(handle: BinaryIO, max_bytes: int) -> Iterator[RowError]:
    for number, line in _lines(handle, max_bytes):
        if line is None:
            reason = f"longer than {max_bytes} bytes (FAIRDRAFT_INGEST_MAX_LINE_BYTES)"
            yield RowError(number, "(line)", reason)
            continue
        if number == 1 and line.startswith(_UTF8_BOM):
            line = line[len(_UTF8_BOM) :]
        problem = line_problem(line)
        if problem is not None:
            yield RowError(number, "(encoding)", problem)


def _lines(handle: BinaryIO, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Numbered lines, never holding more than max_bytes + 1 of one in memory; a line
    over the limit comes as None."""
    number = 0
    while line := handle.readline(max_bytes + 1):
        number += 1
        if len(line) <= max_bytes:
            yield number, line
            continue
        while not line.endswith(b"\n"):
            line = handle.readline(_SKIP_CHUNK)
            if not line:
                break
        yield number, None


def line_problem(line: bytes) -> str | None:
    """The first thing in one line that is not UTF-8 text: a NUL byte or an invalid
    sequence, by its byte column (1-based, as editors count)."""
    nul = line.find(b"\x00")
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as exc:
        if nul < 0 or exc.start < nul:
            return (
                f"invalid UTF-8 at byte column {exc.start + 1} (byte 0x{line[exc.start]:02x}); "
                "save the file as UTF-8"
            )
    if nul >= 0:
        return f"a NUL byte at byte column {nul + 1}; a text export never holds one"
    return None


def too_deep(text: str, max_depth: int) -> str | None:
    """The top-level field under which one JSON text nests deeper than max_depth levels
    (its own object is level 1), or None. Measured before parsing: json.loads recurses per
    level, and 5,000 levels end in a RecursionError rather than a message. One pass over
    the text, linear even on hostile lines; it stops at a string that never ends (the text
    is not JSON then, and json.loads says so), since nothing after it is nesting."""
    if text.count("{") + text.count("[") <= max_depth:
        return None  # cannot be that deep: the common case costs two counts
    depth, key = 0, "(json)"
    at = 0
    while (token := _JSON_TOKEN.search(text, at)) is not None:
        at = token.end()
        char = token.group()
        if char == '"':
            rest = _STRING_REST.match(text, at)
            if rest is None:
                return None
            if depth == 1 and _KEY_COLON.match(text, rest.end()):
                key = _key(text[token.start() : rest.end()])
            at = rest.end()
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return key
        else:
            depth -= 1
    return None


def _key(quoted: str) -> str:
    try:
        key = str(json.loads(quoted))
    except ValueError:
        key = quoted[1:-1]
    return key if len(key) <= _KEY_SHOWN else key[:_KEY_SHOWN] + "..."


def unstorable(value: object) -> str | None:
    """Why PostgreSQL cannot store this parsed JSON value's text, or None: a NUL character
    (text and jsonb refuse it) or an unpaired surrogate (not encodable as UTF-8), both
    possible through \\u escapes in a file that is valid UTF-8 itself."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and (found := _UNSTORABLE.search(item)):
            if found.group() == "\x00":
                return "contains a NUL character (\\u0000), which cannot be stored"
            return "contains an unpaired surrogate (\\ud800-\\udfff), which is not text"
    return None
