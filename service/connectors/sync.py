"""One run of a connector: fetch what changed since its cursor, resolve who each record is
about, keep out opted-out people, and write through the records' one ingest path.

Each batch is written in one transaction together with its deletions, the cursor after it
and the run's figures so far, so a run that pauses (a rate limit longer than allowed),
fails or is killed resumes from its last written batch, never re-fetching more than one
batch and never skipping one. What is unchanged (same content hash) is neither written
nor embedded: a second run over an unchanged source embeds nothing.

A full pass (asked with --full, or by a match by hand) may span runs: paused by a rate
limit, it goes on from its cursor in the next run, and what it has seen is kept
(connector_seen) for the sweep at its end.
"""

import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import ARRAY, Connection, Engine, String, bindparam, delete, func, select, text

from domain.errors import Conflict, FairdraftError
from retrieval.embedding import Embedder
from retrieval.schema import RECORD_KINDS, Record
from service.connectors.http import RateLimited
from service.connectors.identities import (
    IDENTITY_KEY,
    IdentityKey,
    PersonKey,
    count_waiting,
    identity_key,
    resolve,
)
from service.connectors.model import Batch, Connector, Cursor, Identity, SourceRecord
from service.connectors.registry import build, configured
from service.connectors.runs import (
    RunSummary,
    close_abandoned_runs,
    end_pass,
    hold_source_lock,
    load_state,
    note_seen,
    save_cursor,
    start_pass,
    start_run,
    stopped,
    store_run,
)
from service.db.models import SourceOptOut
from service.ingest.records import ChunkSettings, RecordRow, content_hash, write_records
from service.ingest.summary import IngestSummary
from service.ingest.validate import unstorable
from service.settings import Settings
from service.store import embedder_from

log = logging.getLogger("fairdraft.connectors")
_TITLE_CHARS = 1000
_EXTERNAL_ID_CHARS = 256
CONNECTOR_KEY = "connector"  # in a record's metadata: the connector that wrote it
UNMATCHED = "its person is not matched to an employee (see the HR connectors page)"
OPTED_OUT = "its person opted out of this source"


@dataclass(frozen=True)
class SyncContext:
    """What a run writes with: the engine, the chunking and the embedder factory (called
    only when something must be embedded)."""

    engine: Engine
    chunking: ChunkSettings
    embedder: Callable[[], Embedder]
    embed_batch_size: int
    max_body_chars: int


def run_sync(
    engine: Engine,
    settings: Settings,
    connector: Connector,
    *,
    actor: str,
    full: bool = False,
    embedder: Callable[[], Embedder] | None = None,
) -> RunSummary:
    """Run the connector once and return what it did (also stored in connector_runs). A
    second run of the same connector while one runs is refused (Conflict). A run that
    meets a rate limit longer than the connector waits ends `paused`; one that fails ends
    `failed` with a message fairdraft composed (never the source's text): both keep every
    batch written before."""
    context = SyncContext(
        engine=engine,
        chunking=ChunkSettings.of(settings),
        embedder=embedder or (lambda: embedder_from(settings)),
        embed_batch_size=settings.embedding_batch_size,
        max_body_chars=settings.ingest_max_body_chars,
    )
    with engine.connect() as lock:  # a session lock, held by this connection for the run
        held = lock.execute(select(func.pg_try_advisory_lock(_lock_key(connector.name))))
        taken = bool(held.scalar())
        lock.commit()  # the lock outlives the transaction; nothing stays idle in one
        if not taken:
            raise Conflict(f"a {connector.name} sync is already running", field="connector")
        try:
            return _run(context, connector, actor=actor, full=full)
        finally:
            lock.execute(select(func.pg_advisory_unlock(_lock_key(connector.name))))
            lock.commit()


def sync_configured(
    engine: Engine, settings: Settings, *, actor: str, embedder: Callable[[], Embedder]
) -> dict[str, RunSummary | str]:
    """One run of every configured connector, as the schedule makes them: each one's
    summary, or why it did not run (one already running, its settings refused)."""
    ran: dict[str, RunSummary | str] = {}
    for name in configured(settings):
        try:
            connector = build(name, settings)
            ran[name] = run_sync(engine, settings, connector, actor=actor, embedder=embedder)
        except FairdraftError as exc:
            ran[name] = exc.reason
    return ran


def _lock_key(name: str) -> int:
    return zlib.crc32(f"fairdraft.connector.{name}".encode())


@dataclass(frozen=True)
class Plan:
    """How a run starts: from which cursor, whether it is (part of) a full pass, and
    whether that pass begins with it."""

    cursor: Cursor
    in_pass: bool
    begins_pass: bool


def _plan(connection: Connection, connector: Connector, *, full: bool) -> Plan:
    """A full pass begins when one is asked for (--full restarts one in progress) or was
    asked for by a match by hand and none is in progress; a pass in progress (paused by a
    rate limit, or failed) goes on from its saved cursor; else the run fetches what
    changed since the cursor."""
    halt = stopped(connection, connector.name)
    if halt is not None:
        raise ConnectorStopped(connector.name, *halt)
    close_abandoned_runs(connection, connector.name)
    state = load_state(connection, connector.name)
    if full or (state.full_next and state.pass_started_at is None):
        start_pass(connection, connector.name)
        return Plan({}, in_pass=True, begins_pass=True)
    return Plan(state.cursor, in_pass=state.pass_started_at is not None, begins_pass=False)


def _run(context: SyncContext, connector: Connector, *, actor: str, full: bool) -> RunSummary:
    with context.engine.begin() as connection:
        plan = _plan(connection, connector, full=full)
        run_id = start_run(connection, connector.name, full=plan.in_pass, actor=actor)
        opted_out = _opted_out(connection, connector.name)
    summary = RunSummary(run_id=run_id, connector=connector.name, full=plan.in_pass)
    waiting: Counter[IdentityKey] = Counter()
    track = plan.in_pass and connector.complete_on_full  # what the pass saw, for its sweep
    started = time.perf_counter()

    def waited(seconds: float, reason: str) -> None:
        summary.rate_limit_waits += 1
        summary.waited_s += seconds
        log.info("%s: waiting %.1f s (%s)", connector.name, seconds, reason)

    try:
        batches = connector.sync(plan.cursor, full=plan.begins_pass, waits=waited)
        for batch in batches:
            _write_batch(context, connector, batch, summary, opted_out, waiting, track=track)
        if plan.in_pass:
            _end_pass(context.engine, connector.name, summary, sweep=track)
        summary.status = "succeeded"
    except RateLimited as exc:
        summary.status, summary.error = "paused", exc.reason
    except FairdraftError as exc:
        summary.status, summary.error = "failed", exc.reason
    except Exception as exc:  # a connector's bug must end the run, told, not hang it
        log.exception("%s sync failed", connector.name)
        summary.status = "failed"
        summary.error = f"the {connector.name} connector stopped on an unexpected error "
        summary.error += f"({type(exc).__name__}); the log has its details"
    summary.seconds = time.perf_counter() - started
    whole = plan.begins_pass and summary.status == "succeeded"  # saw every record, this run
    with context.engine.begin() as connection:
        store_run(connection, summary, finished=True)
        count_waiting(connection, waiting, replace=whole)
    return summary


class ConnectorStopped(Conflict):
    """HR purged the source and stopped its connector; it runs again once resumed."""

    def __init__(self, name: str, when: datetime, by: str) -> None:
        super().__init__(
            f"the {name} connector was stopped on {when:%Y-%m-%d %H:%M} UTC by {by} (its "
            "records were purged); resume it to sync again",
            field="connector",
        )


def _drop_opted_out(connection: Connection, source: str) -> None:
    """Under the source's lock: what this batch wrote about people who opted out while the
    run was going (the run read the opt-outs when it started) goes at once."""
    connection.execute(
        delete(Record).where(
            Record.source == source,
            Record.subject_id.in_(
                select(SourceOptOut.person_id).where(SourceOptOut.source == source)
            ),
        )
    )


def _opted_out(connection: Connection, source: str) -> frozenset[int]:
    query = select(SourceOptOut.person_id).where(SourceOptOut.source == source)
    return frozenset(connection.execute(query).scalars())


def _write_batch(
    context: SyncContext,
    connector: Connector,
    batch: Batch,
    summary: RunSummary,
    opted_out: frozenset[int],
    waiting: Counter[IdentityKey],
    *,
    track: bool,
) -> None:
    summary.fetched += batch.fetched or len(batch.records) + len(batch.deleted) + len(batch.skipped)
    for skipped in batch.skipped:
        summary.skip(skipped.reason)
    identities: list[Identity] = [r.subject for r in batch.records]
    identities += [r.author for r in batch.records if r.author is not None]
    with context.engine.begin() as connection:
        people = resolve(connection, identities)
    rows = _rows(context, connector.name, batch.records, people, opted_out, summary, waiting)
    written = IngestSummary(path=connector.name, format="records")

    def finish(connection: Connection) -> None:
        hold_source_lock(connection, connector.name)
        halt = stopped(connection, connector.name)
        if halt is not None:  # purged while this run fetched: write nothing more
            raise ConnectorStopped(connector.name, *halt)
        _drop_opted_out(connection, connector.name)
        summary.deleted += delete_source_records(connection, connector.name, batch.deleted)
        summary.inserted += written.inserted
        summary.updated += written.updated
        summary.unchanged += written.unchanged
        summary.chunks_embedded += written.chunks_written
        save_cursor(connection, connector.name, batch.cursor)
        if track:
            ids = [row.external_id for row in rows]
            note_seen(connection, connector.name, ids, batch.complete_since)
        store_run(connection, summary, finished=False)

    write_records(
        context.engine,
        rows,
        written,
        embedder=context.embedder,
        chunking=context.chunking,
        embed_batch_size=context.embed_batch_size,
        finish=finish,
    )


def _rows(
    context: SyncContext,
    source: str,
    records: Sequence[SourceRecord],
    people: dict[IdentityKey, PersonKey],
    opted_out: frozenset[int],
    summary: RunSummary,
    waiting: Counter[IdentityKey],
) -> list[RecordRow]:
    """The records to write, as the ingest path's rows; the rest counted as skipped with
    their reason. A record given twice in a batch is written once (its last version)."""
    rows: dict[str, RecordRow] = {}
    for line, record in enumerate(records, start=1):
        key = (record.subject.system, record.subject.external_id)
        subject = people.get(key)
        if subject is None:
            summary.skip(UNMATCHED)
            waiting[key] += 1
            continue
        if subject.id in opted_out:
            summary.skip(OPTED_OUT)
            continue
        problem = _problem(record)
        if problem is not None:
            summary.skip(problem)
            continue
        author = (
            people.get((record.author.system, record.author.external_id)) if record.author else None
        )
        rows[record.external_id] = _row(
            line, source, _bounded(record, context.max_body_chars), subject, author
        )
    return list(rows.values())


def _problem(record: SourceRecord) -> str | None:
    """Why a connector's record cannot be stored (a connector's bug, said, not raised)."""
    if record.kind not in RECORD_KINDS:
        return f"kind {record.kind!r} is not a record kind"
    if not record.external_id or len(record.external_id) > _EXTERNAL_ID_CHARS:
        return f"an external id empty or over {_EXTERNAL_ID_CHARS} characters"
    if not record.body.strip():
        return "no text to keep"
    if unstorable(dict(record.metadata)) is not None:
        return "metadata with text PostgreSQL cannot store"
    return None


def _bounded(record: SourceRecord, max_body_chars: int) -> SourceRecord:
    """Text as the store keeps it: NUL characters removed, the body and title cut to the
    ingest limits (a long description keeps its start: the summary drafting needs)."""
    body = record.body.replace("\x00", "")
    title = record.title.replace("\x00", "") if record.title else None
    moment = record.occurred_at
    return replace(
        record,
        body=body[:max_body_chars],
        title=title[:_TITLE_CHARS] if title else None,
        occurred_at=moment if moment.tzinfo else moment.replace(tzinfo=UTC),
    )


def _row(
    line: int,
    source: str,
    record: SourceRecord,
    subject: PersonKey,
    author: PersonKey | None,
) -> RecordRow:
    author_name = author.employee_id if author else _identity_name(record.author)
    metadata = {
        **record.metadata,
        CONNECTOR_KEY: source,
        IDENTITY_KEY: identity_key(record.subject.system, record.subject.external_id),
    }
    data = {
        "kind": record.kind,
        "author": author_name,
        "title": record.title,
        "body": record.body,
        "metadata": metadata,
    }
    return RecordRow(
        line=line,
        source=source,
        external_id=record.external_id,
        kind=record.kind,
        subject_id=subject.id,
        author=author_name,
        author_id=author.id if author else None,
        occurred_at=record.occurred_at,
        title=record.title,
        body=record.body,
        metadata=metadata,
        content_hash=content_hash(data, subject.employee_id, record.occurred_at),
    )


def _identity_name(identity: Identity | None) -> str | None:
    if identity is None:
        return None
    return f"{identity.display_name or identity.external_id} ({identity.system})"[:320]


def delete_source_records(connection: Connection, source: str, external_ids: Sequence[str]) -> int:
    """Delete a source's records (their chunks go with them); how many there were."""
    if not external_ids:
        return 0
    result = connection.execute(
        delete(Record).where(
            Record.source == source,
            Record.external_id
            == func.any(bindparam("ids", list(external_ids), type_=ARRAY(String))),
        )
    )
    return int(result.rowcount)


def _end_pass(engine: Engine, source: str, summary: RunSummary, *, sweep: bool) -> None:
    """A full pass is done. With `sweep`, the records this connector wrote that the pass
    did not see are gone at the source, so they go here too (one anti-join on what the
    pass saw, over all its runs). Records of the same source from a records.jsonl are not
    the connector's to remove, nor those older than what the pass covered (its
    `pass_since`, for a source that hides older history)."""
    with engine.begin() as connection:
        if sweep:
            since = load_state(connection, source).pass_since
            result = connection.execute(
                text(
                    "DELETE FROM records r WHERE r.source = :source "
                    "AND r.metadata->>'connector' = :source "
                    "AND (CAST(:since AS timestamptz) IS NULL OR r.occurred_at >= :since) "
                    "AND NOT EXISTS (SELECT 1 FROM connector_seen s "
                    "WHERE s.connector = :source AND s.external_id = r.external_id)"
                ),
                {"source": source, "since": since},
            )
            summary.deleted += int(result.rowcount)
        end_pass(connection, source)
        store_run(connection, summary, finished=False)
