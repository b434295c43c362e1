"""What HR sees of the connectors: each one, whether it is configured, its last run and
how many of its people are unmatched; and asking for a run as a background job."""

from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import Connection

from domain.errors import Conflict, NotFound
from service.audit import audit
from service.connectors.identities import count_unmatched
from service.connectors.registry import CONNECTORS, configured
from service.connectors.runs import RunLine, recent_runs, resume, stopped
from service.settings import Settings

SYNC_JOB = "sync_connector"


class ConnectorLine(BaseModel):
    name: str
    configured: bool
    last_run: RunLine | None
    unmatched_identities: int
    stopped_at: datetime | None = None  # purged by HR and not resumed since
    stopped_by: str | None = None


def overview(connection: Connection, settings: Settings) -> list[ConnectorLine]:
    ready = set(configured(settings))
    unmatched = count_unmatched(connection)
    lines = []
    for name in sorted(CONNECTORS):
        halt = stopped(connection, name)
        lines.append(
            ConnectorLine(
                name=name,
                configured=name in ready,
                last_run=next(iter(recent_runs(connection, connector=name, limit=1)), None),
                unmatched_identities=unmatched.get(name, 0),
                stopped_at=halt[0] if halt else None,
                stopped_by=halt[1] if halt else None,
            )
        )
    return lines


def sync_payload(name: str, settings: Settings, *, full: bool) -> dict[str, object]:
    """The sync job's payload, once the connector is known and configured (a job that
    could only fail is not queued)."""
    if name not in CONNECTORS:
        raise NotFound(f"no connector {name!r}", field="connector")
    if name not in configured(settings):
        raise Conflict(
            f"the {name} connector is not configured (docs/connectors.md)", field="connector"
        )
    return {"connector": name, "full": full}


def known_source(name: str) -> str:
    """A source a person may opt out of or HR may purge: a connector's name."""
    if name not in CONNECTORS:
        raise NotFound(f"no source {name!r}", field="source")
    return name


def resume_connector(connection: Connection, name: str, *, actor: str) -> bool:
    """HR lets a stopped (purged) connector run again; whether it was stopped. Audited."""
    known_source(name)
    resumed = resume(connection, name)
    if resumed:
        audit(
            connection, actor=actor, action="connector.resume", entity="connector", entity_id=name
        )
    return resumed
