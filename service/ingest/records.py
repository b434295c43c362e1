"""records.jsonl: work records, 1:1 notes, feedback, recognition, goals, self notes.

The file is validated whole first. Records whose content hash is unchanged are left alone;
new and changed ones are chunked, embedded and checked for text that reads as instructions
to a model (stored as the record's `instruction_signals`) before the transaction opens, so
the transaction itself is short and either writes everything or nothing.
"""

import hashlib
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    ARRAY,
    Connection,
    Engine,
    String,
    bindparam,
    column,
    func,
    select,
    table,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from retrieval.bulk import copy_rows
from retrieval.chunking import ChunkText, chunk_text
from retrieval.embedding import Embedder, Vectors, embed_in_batches
from retrieval.store import NewChunk, copy_chunks, delete_chunks_of
from service.bias.evidence_features import record_cues, stored_cues
from service.db.models import RECORD_KINDS, Record
from service.drafting.injection import scan, signals
from service.ingest.audited import audit_ingest
from service.ingest.directory import Directory
from service.ingest.errors import IngestRefused, RowError
from service.ingest.locks import hold_ingest_lock
from service.ingest.progress import NoProgress, ProgressReporter
from service.ingest.summary import IngestSummary
from service.ingest.validate import FileLimits, too_deep, unstorable
from service.settings import Settings

REQUIRED_FIELDS = ("source", "external_id", "kind", "subject", "occurred_at", "body")
OPTIONAL_FIELDS = ("author", "title", "metadata")
RecordKey = tuple[str, str]  # (source, external_id)
_LIMITS = {"source": 128, "external_id": 256, "author": 320, "title": 1000}
_YEARS = (1900, 2100)  # occurred_at outside them is a typo (and 9999 overflows in UTC)


@dataclass(frozen=True)
class RecordRow:
    line: int
    source: str
    external_id: str
    kind: str
    subject_id: int
    author: str | None
    author_id: int | None
    occurred_at: datetime
    title: str | None
    body: str
    metadata: dict[str, Any]
    content_hash: str


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int
    overlap_tokens: int

    @classmethod
    def of(cls, settings: Settings) -> "ChunkSettings":
        return cls(settings.chunk_max_tokens, settings.chunk_overlap_tokens)


def parse_records(
    path: Path, directory: Directory, limits: FileLimits | None = None
) -> tuple[list[RecordRow], list[RowError]]:
    limits = limits or FileLimits()
    rows: list[RecordRow] = []
    errors: list[RowError] = []
    seen: dict[tuple[str, str], int] = {}
    with path.open(encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row, row_errors = _parse_line(line_number, line, directory, limits)
            if row is not None:
                key = (row.source, row.external_id)
                if key in seen:
                    reason = f"{row.source}/{row.external_id} already appears on line {seen[key]}"
                    row_errors.append(RowError(line_number, "external_id", reason))
                    row = None
                else:
                    seen[key] = line_number
            errors.extend(row_errors)
            if row is not None:
                rows.append(row)
    return rows, errors


def _parse_line(
    line: int, text: str, directory: Directory, limits: FileLimits
) -> tuple[RecordRow | None, list[RowError]]:
    deep = too_deep(text, limits.max_metadata_depth + 1)
    if deep is not None:
        reason = f"nested deeper than {limits.max_metadata_depth} levels"
        return None, [RowError(line, deep, reason)]
    try:
        data = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        return None, [RowError(line, "(json)", f"malformed JSON: {exc.msg} at column {exc.colno}")]
    except ValueError as exc:  # NaN, 1e400, or an integer of over 4,300 digits
        return None, [RowError(line, "(json)", f"malformed JSON: {exc}")]
    if not isinstance(data, dict):
        return None, [RowError(line, "(json)", "each line must be a JSON object")]
    errors = _field_errors(line, data, limits)
    if "\\u" in text:  # NUL or a lone surrogate can only come in through an escape
        errors.extend(_unstorable_errors(line, data))
    subject = directory.find(data["subject"]) if isinstance(data.get("subject"), str) else None
    if isinstance(data.get("subject"), str) and data["subject"] and subject is None:
        errors.append(RowError(line, "subject", f"unknown employee {data['subject']!r}"))
    occurred_at = _parse_time(line, data.get("occurred_at"), errors)
    if errors or subject is None or occurred_at is None:
        return None, errors
    author = data.get("author") or None
    author_ref = directory.find(author) if author else None
    row = RecordRow(
        line=line,
        source=data["source"],
        external_id=str(data["external_id"]),
        kind=data["kind"],
        subject_id=subject.id,
        author=author,
        author_id=author_ref.id if author_ref else None,
        occurred_at=occurred_at,
        title=data.get("title") or None,
        body=data["body"],
        metadata=data.get("metadata") or {},
        content_hash=content_hash(data, subject.employee_id, occurred_at),
    )
    return row, []


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range for a number")
    return value


# NaN and Infinity are not JSON, and PostgreSQL's jsonb refuses them (1e400 included).
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _unstorable_errors(line: int, data: dict[str, Any]) -> list[RowError]:
    return [
        RowError(line, name, problem)
        for name in sorted(set(data) & {*REQUIRED_FIELDS, *OPTIONAL_FIELDS})
        if (problem := unstorable(data[name])) is not None
    ]


def _field_errors(line: int, data: dict[str, Any], limits: FileLimits) -> list[RowError]:
    errors = [
        RowError(line, name, "is required")
        for name in REQUIRED_FIELDS
        if data.get(name) is None or (isinstance(data[name], str) and not data[name].strip())
    ]
    errors.extend(
        RowError(line, name, "unknown field (put extra data under metadata)")
        for name in sorted(data)
        if name not in REQUIRED_FIELDS + OPTIONAL_FIELDS
    )
    for name in ("source", "kind", "subject", "body", "author", "title"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            errors.append(RowError(line, name, "must be a string"))
    external_id = data.get("external_id")
    if external_id is not None and not isinstance(external_id, str | int):
        errors.append(RowError(line, "external_id", "must be a string or an integer"))
    errors.extend(
        RowError(line, name, f"longer than {limit} characters")
        for name, limit in _LIMITS.items()
        if len(str(data.get(name) or "")) > limit
    )
    kind = data.get("kind")
    if isinstance(kind, str) and kind and kind not in RECORD_KINDS:
        errors.append(RowError(line, "kind", f"{kind!r} is not one of {', '.join(RECORD_KINDS)}"))
    if data.get("metadata") is not None and not isinstance(data["metadata"], dict):
        errors.append(RowError(line, "metadata", "must be a JSON object"))
    body = data.get("body")
    if isinstance(body, str) and len(body) > limits.max_body_chars:
        too_long = f"longer than {limits.max_body_chars} characters"
        errors.append(RowError(line, "body", too_long))
    return errors


def _parse_time(line: int, value: object, errors: list[RowError]) -> datetime | None:
    """ISO 8601; a time without a zone is taken as UTC."""
    if not isinstance(value, str) or not value:
        if value not in (None, ""):
            errors.append(RowError(line, "occurred_at", "must be an ISO 8601 string"))
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        errors.append(RowError(line, "occurred_at", f"{value!r} is not an ISO 8601 date or time"))
        return None
    if not _YEARS[0] <= moment.year <= _YEARS[1]:
        reason = f"{value!r} is outside the years {_YEARS[0]} to {_YEARS[1]}"
        errors.append(RowError(line, "occurred_at", reason))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def content_hash(data: dict[str, Any], subject_employee_id: str, occurred_at: datetime) -> str:
    """Identity of the content, independent of how the subject was referred to and of the
    time zone the time was written in."""
    canonical = {
        "kind": data["kind"],
        "subject": subject_employee_id,
        "author": data.get("author") or None,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(),
        "title": data.get("title") or None,
        "body": data["body"],
        "metadata": data.get("metadata") or {},
    }
    encoded = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode()).hexdigest()


def stored_hashes(connection: Connection, rows: Sequence[RecordRow]) -> dict[tuple[str, str], str]:
    """Content hashes of the records in this file that are already stored (one query)."""
    if not rows:
        return {}
    keys = (
        func.unnest(
            bindparam("sources", [r.source for r in rows], type_=ARRAY(String)),
            bindparam("external_ids", [r.external_id for r in rows], type_=ARRAY(String)),
        )
        .table_valued("source", "external_id")
        .render_derived()
    )
    query = select(Record.source, Record.external_id, Record.content_hash).join(
        keys, (Record.source == keys.c.source) & (Record.external_id == keys.c.external_id)
    )
    return {(r.source, r.external_id): r.content_hash for r in connection.execute(query)}


def plan_chunks(rows: Sequence[RecordRow], settings: ChunkSettings) -> list[list[ChunkText]]:
    """For each row to write, its chunks (record ids are not known yet)."""
    return [
        chunk_text(
            row.body,
            title=row.title,
            max_tokens=settings.max_tokens,
            overlap_tokens=settings.overlap_tokens,
        )
        for row in rows
    ]


_COPY_COLUMNS = (
    ("source", "varchar"),
    ("external_id", "varchar"),
    ("kind", "varchar"),
    ("subject_id", "int4"),
    ("author_id", "int4"),
    ("author", "text"),
    ("occurred_at", "timestamptz"),
    ("title", "text"),
    ("body", "text"),
    ("metadata", "jsonb"),
    ("content_hash", "varchar"),
    ("instruction_signals", "text[]"),
    ("cues", "jsonb"),
)
_INCOMING = "incoming_records"


def instruction_signals(row: RecordRow) -> list[str]:
    """The injection detector's rules that the record's title and body match: evidence is
    data, never instructions, and what reads as instructions is marked where it enters."""
    return signals(scan(f"{row.title}\n{row.body}" if row.title else row.body))


def upsert_records(
    connection: Connection, rows: Sequence[RecordRow], marks: Mapping[RecordKey, list[str]]
) -> list[int]:
    """Insert or update the rows with their `instruction_signals` (by source and external
    id); their ids, in the rows' order.

    The rows are COPYed into a temporary table and merged with one INSERT ... SELECT ...
    ON CONFLICT: at 150,000 records this is several times faster than multi-row INSERTs.
    """
    names = [name for name, _ in _COPY_COLUMNS]
    # Column types only: no defaults, so no sequence values are spent on the staging rows.
    connection.execute(
        text(
            f"CREATE TEMPORARY TABLE {_INCOMING} ON COMMIT DROP AS "
            f"SELECT {', '.join(names)} FROM {Record.__tablename__} WITH NO DATA"
        )
    )
    copy_rows(
        connection,
        _INCOMING,
        names,
        [kind for _, kind in _COPY_COLUMNS],
        (
            (
                r.source,
                r.external_id,
                r.kind,
                r.subject_id,
                r.author_id,
                r.author,
                r.occurred_at,
                r.title,
                r.body,
                r.metadata,
                r.content_hash,
                marks[(r.source, r.external_id)],
                stored_cues(record_cues(r.kind, r.title, r.body, r.metadata)),
            )
            for r in rows
        ),
    )
    incoming = table(_INCOMING, *(column(name) for name in names))
    statement = pg_insert(Record).from_select(names, select(*incoming.c))
    updates: dict[str, Any] = {
        name: statement.excluded[name] for name in names if name not in ("source", "external_id")
    }
    updates["updated_at"] = func.now()
    upsert = statement.on_conflict_do_update(
        index_elements=["source", "external_id"], set_=updates
    ).returning(Record.id, Record.source, Record.external_id)
    ids = {(r.source, r.external_id): r.id for r in connection.execute(upsert)}
    connection.execute(text(f"DROP TABLE {_INCOMING}"))
    return [ids[(r.source, r.external_id)] for r in rows]


def ingest_records(
    engine: Engine,
    path: Path,
    *,
    actor: str,
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
    skip_invalid: bool,
    embed_batch_size: int,
    progress: ProgressReporter | None = None,
    limits: FileLimits | None = None,
    label: str | None = None,
) -> IngestSummary:
    """`embedder` is called only when something needs embedding, so re-ingesting an
    unchanged file never loads the model. `label` names the file in the summary and errors
    (an upload's own name rather than where the service keeps it)."""
    started = time.perf_counter()
    summary = IngestSummary(path=label or str(path), format="records")
    with engine.connect() as connection:
        rows, errors = parse_records(path, Directory.load(connection), limits)
        if errors and not skip_invalid:
            raise IngestRefused(summary.path, errors)
    summary.refused = sorted(errors)
    write_records(
        engine,
        rows,
        summary,
        embedder=embedder,
        chunking=chunking,
        embed_batch_size=embed_batch_size,
        progress=progress,
        started=started,
        finish=lambda connection: audit_ingest(connection, summary, actor),
    )
    return summary


def write_records(
    engine: Engine,
    rows: Sequence[RecordRow],
    summary: IngestSummary,
    *,
    embedder: Callable[[], Embedder],
    chunking: ChunkSettings,
    embed_batch_size: int,
    progress: ProgressReporter | None = None,
    started: float | None = None,
    finish: Callable[[Connection], None] | None = None,
) -> None:
    """The one write path of records, from a file or a connector: rows whose content hash
    is stored already are counted unchanged and cost nothing; the rest are chunked and
    embedded before the transaction, then written in it under the ingest lock, with
    `finish` run in the same transaction (an audit event, a connector's cursor), so all of
    it commits or none. Counts go to `summary`."""
    progress = progress or NoProgress()
    started = time.perf_counter() if started is None else started
    with engine.connect() as connection:
        stored = stored_hashes(connection, rows)
    todo = [r for r in rows if stored.get((r.source, r.external_id)) != r.content_hash]
    summary.unchanged = len(rows) - len(todo)
    summary.inserted = sum((r.source, r.external_id) not in stored for r in todo)
    summary.updated = len(todo) - summary.inserted
    planned = plan_chunks(todo, chunking)
    texts = [chunk.text for chunks in planned for chunk in chunks]
    embed_started = time.perf_counter()
    model = embedder() if todo else None
    with progress.task("embedding chunks", len(texts)) as advance:
        vectors = (
            embed_in_batches(model, texts, batch_size=embed_batch_size, on_batch=advance)
            if model
            else np.zeros((0, 1), dtype=np.float32)
        )
    summary.embed_seconds = time.perf_counter() - embed_started
    marks = {(row.source, row.external_id): instruction_signals(row) for row in todo}
    write_started = time.perf_counter()
    with engine.begin() as connection:
        hold_ingest_lock(connection)
        if model:
            todo, planned, vectors, stored = _still_to_write(
                connection, summary, todo, planned, vectors
            )
            summary.chunks_written = _write(
                connection, todo, marks, planned, vectors, model.name, stored
            )
        summary.db_seconds = time.perf_counter() - write_started + (embed_started - started)
        if finish is not None:
            finish(connection)


def _still_to_write(
    connection: Connection,
    summary: IngestSummary,
    rows: list[RecordRow],
    planned: list[list[ChunkText]],
    vectors: Vectors,
) -> tuple[list[RecordRow], list[list[ChunkText]], Vectors, dict[tuple[str, str], str]]:
    """Under the ingest lock, what is still to write. An ingest of the same records that
    committed while this one was embedding (the same file ingested twice at once) has
    written some of them: those count as unchanged, and the rest are counted as new or
    updated against what is stored now, so no chunk is written twice."""
    stored = stored_hashes(connection, rows)
    keep = [
        i for i, r in enumerate(rows) if stored.get((r.source, r.external_id)) != r.content_hash
    ]
    kept = [rows[i] for i in keep]
    summary.unchanged += len(rows) - len(kept)
    summary.inserted = sum((r.source, r.external_id) not in stored for r in kept)
    summary.updated = len(kept) - summary.inserted
    if len(kept) == len(rows):
        return rows, planned, vectors, stored
    starts = np.cumsum([0, *(len(chunks) for chunks in planned)])
    index = [position for i in keep for position in range(starts[i], starts[i + 1])]
    return kept, [planned[i] for i in keep], vectors[np.asarray(index, dtype=np.intp)], stored


def _write(
    connection: Connection,
    rows: list[RecordRow],
    marks: Mapping[RecordKey, list[str]],
    planned: list[list[ChunkText]],
    vectors: Vectors,
    model: str,
    stored: dict[tuple[str, str], str],
) -> int:
    if not rows:
        return 0
    ids = upsert_records(connection, rows, marks)
    updated = [ids[i] for i, r in enumerate(rows) if (r.source, r.external_id) in stored]
    delete_chunks_of(connection, updated)
    chunks = [
        NewChunk(
            record_id=record_id,
            subject_id=row.subject_id,
            kind=row.kind,
            source=row.source,
            occurred_at=row.occurred_at,
            position=chunk.position,
            text=chunk.text,
            token_count=chunk.token_count,
        )
        for record_id, row, record_chunks in zip(ids, rows, planned, strict=True)
        for chunk in record_chunks
    ]
    return copy_chunks(connection, chunks, vectors, model)
