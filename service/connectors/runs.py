"""A connector's stored state (its cursor, whether the next run is full) and its runs:
what each fetched, wrote, skipped and why, its rate-limit waits and how it ended."""

import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    Connection,
    String,
    bindparam,
    delete,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from service.connectors.model import Cursor
from service.db.models import ConnectorRun, ConnectorSeen, ConnectorState


@dataclass
class RunSummary:
    """One run's figures, kept as it goes and stored when it ends."""

    run_id: int
    connector: str
    full: bool
    status: str = "running"
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    skipped: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    chunks_embedded: int = 0
    rate_limit_waits: int = 0
    waited_s: float = 0.0
    error: str | None = None
    seconds: float = 0.0

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.skip_reasons[reason] += count

    def figures(self) -> dict[str, Any]:
        """The stored columns (and the JSON the CLI prints)."""
        return {
            "status": self.status,
            "fetched": self.fetched,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deleted": self.deleted,
            "skipped": self.skipped,
            "skip_reasons": dict(self.skip_reasons),
            "chunks_embedded": self.chunks_embedded,
            "rate_limit_waits": self.rate_limit_waits,
            "waited_s": round(self.waited_s, 3),
            "error": self.error,
        }

    def report(self) -> "RunFigures":
        return RunFigures(
            run_id=self.run_id,
            connector=self.connector,
            full=self.full,
            seconds=round(self.seconds, 3),
            **self.figures(),
        )


class RunCounts(BaseModel):
    """What a run did and how it ended: the columns of connector_runs every view shows."""

    connector: str
    full: bool
    status: str
    fetched: int
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    skipped: int
    skip_reasons: dict[str, int]
    chunks_embedded: int
    rate_limit_waits: int
    waited_s: float
    error: str | None


class RunFigures(RunCounts):
    """A run's figures as the CLI prints them (--json) and the sync job's result."""

    run_id: int
    seconds: float


@dataclass(frozen=True)
class State:
    cursor: Cursor
    full_next: bool
    pass_started_at: datetime | None = None  # a full pass in progress since then
    pass_since: datetime | None = None


def load_state(connection: Connection, connector: str) -> State:
    row = connection.execute(
        select(
            ConnectorState.cursor,
            ConnectorState.full_next,
            ConnectorState.pass_started_at,
            ConnectorState.pass_since,
        ).where(ConnectorState.connector == connector)
    ).one_or_none()
    if row is None:
        return State({}, False)
    return State(dict(row.cursor), row.full_next, row.pass_started_at, row.pass_since)


def start_pass(connection: Connection, connector: str) -> None:
    """A full pass begins: from no cursor, nothing seen yet; a full pass asked for (by a
    match by hand) is now under way."""
    connection.execute(delete(ConnectorSeen).where(ConnectorSeen.connector == connector))
    values = {
        "cursor": {},
        "full_next": False,
        "pass_started_at": func.now(),
        "pass_since": None,
        "updated_at": func.now(),
    }
    statement = pg_insert(ConnectorState).values(connector=connector, **values)
    connection.execute(statement.on_conflict_do_update(index_elements=["connector"], set_=values))


def note_seen(
    connection: Connection, connector: str, external_ids: Sequence[str], since: datetime | None
) -> None:
    """What a batch of a full pass saw, and the moment from which a source that hides
    older history has shown all (the latest such moment of the pass is kept)."""
    if external_ids:
        seen = select(
            literal(connector, String(64)),
            func.unnest(bindparam("seen_ids", list(external_ids), type_=ARRAY(String))),
        )
        connection.execute(
            pg_insert(ConnectorSeen)
            .from_select(["connector", "external_id"], seen)
            .on_conflict_do_nothing(index_elements=["connector", "external_id"])
        )
    if since is not None:
        latest = func.greatest(func.coalesce(ConnectorState.pass_since, since), since)
        connection.execute(
            update(ConnectorState)
            .where(ConnectorState.connector == connector)
            .values(pass_since=latest)
        )


def end_pass(connection: Connection, connector: str) -> None:
    """The pass is over (done, or its cursor forgotten): what it saw is let go."""
    connection.execute(delete(ConnectorSeen).where(ConnectorSeen.connector == connector))
    connection.execute(
        update(ConnectorState)
        .where(ConnectorState.connector == connector)
        .values(pass_started_at=None, pass_since=None)
    )


def save_cursor(connection: Connection, connector: str, cursor: Cursor) -> None:
    """The cursor after a written batch (in the batch's own transaction)."""
    statement = pg_insert(ConnectorState).values(connector=connector, cursor=cursor)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["connector"], set_={"cursor": cursor, "updated_at": func.now()}
        )
    )


def reset_cursor(connection: Connection, connector: str) -> None:
    """Forget where the connector was, a full pass in progress too: its next run fetches
    everything."""
    save_cursor(connection, connector, {})
    end_pass(connection, connector)


def ask_full_pass(connection: Connection, connectors: set[str]) -> None:
    """These connectors make a full pass from their next run on (or once the pass under
    way ends): an identity matched, a person letting a source in again."""
    if not connectors:
        return
    statement = pg_insert(ConnectorState).values(
        [{"connector": name, "full_next": True} for name in sorted(connectors)]
    )
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["connector"], set_={"full_next": True, "updated_at": func.now()}
        )
    )


def hold_source_lock(connection: Connection, source: str) -> None:
    """Until this transaction ends, no other writes the source's records by the rules of
    who may have them: a sync's batch, an opt-out, a purge. Taken by each, so an opt-out
    made while a batch is written either waits for it and deletes what it wrote, or
    commits first and the batch sees it."""
    key = zlib.crc32(f"fairdraft.source.{source}".encode())
    connection.execute(select(func.pg_advisory_xact_lock(key)))


def stop(connection: Connection, connector: str, *, actor: str) -> None:
    """No run of the connector until HR resumes it (a purge stops it)."""
    values = {"stopped_at": func.now(), "stopped_by": actor, "updated_at": func.now()}
    statement = pg_insert(ConnectorState).values(connector=connector, **values)
    connection.execute(statement.on_conflict_do_update(index_elements=["connector"], set_=values))


def resume(connection: Connection, connector: str) -> bool:
    """Let the connector run again (from its cursor: after a purge, from nothing); whether
    it was stopped."""
    result = connection.execute(
        update(ConnectorState)
        .where(ConnectorState.connector == connector, ConnectorState.stopped_at.is_not(None))
        .values(stopped_at=None, stopped_by=None)
    )
    return bool(result.rowcount)


def stopped(connection: Connection, connector: str) -> tuple[datetime, str] | None:
    """When and by whom the connector was stopped, or None."""
    row = connection.execute(
        select(ConnectorState.stopped_at, ConnectorState.stopped_by).where(
            ConnectorState.connector == connector, ConnectorState.stopped_at.is_not(None)
        )
    ).one_or_none()
    return (row.stopped_at, row.stopped_by or "") if row else None


def close_abandoned_runs(connection: Connection, connector: str) -> None:
    """Runs still 'running' when a new one holds the connector's lock: their process
    stopped before the end (killed, its machine gone). Told as failed, not left running."""
    connection.execute(
        update(ConnectorRun)
        .where(ConnectorRun.connector == connector, ConnectorRun.status == "running")
        .values(
            status="failed",
            error="its process stopped before the end; the next run went on from its cursor",
            finished_at=func.now(),
        )
    )


def start_run(connection: Connection, connector: str, *, full: bool, actor: str) -> int:
    return int(
        connection.execute(
            insert(ConnectorRun)
            .values(connector=connector, full=full, actor=actor)
            .returning(ConnectorRun.id)
        ).scalar_one()
    )


def store_run(connection: Connection, summary: RunSummary, *, finished: bool) -> None:
    values = summary.figures()
    if finished:
        values["finished_at"] = func.now()
    connection.execute(
        update(ConnectorRun).where(ConnectorRun.id == summary.run_id).values(**values)
    )


class RunLine(RunCounts):
    """A run as the HR page and the API list it."""

    id: int
    actor: str
    started_at: datetime
    finished_at: datetime | None


def recent_runs(connection: Connection, *, connector: str | None, limit: int) -> list[RunLine]:
    runs = ConnectorRun.__table__
    query = select(runs).order_by(runs.c.id.desc()).limit(limit)
    if connector is not None:
        query = query.where(runs.c.connector == connector)
    return [RunLine.model_validate(dict(row)) for row in connection.execute(query).mappings()]
