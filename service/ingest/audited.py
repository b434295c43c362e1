"""The audit event of an ingested file. Its own module, so that the audit trail knows
nothing of ingest (one-way import) and the light summary module, which the CLI's output
imports at start-up, loads no database models."""

from sqlalchemy import Connection

from service.audit import audit
from service.ingest.summary import IngestSummary


def audit_ingest(connection: Connection, summary: IngestSummary, actor: str) -> None:
    """One event per ingested file, with its counts (never row contents)."""
    audit(
        connection,
        actor=actor,
        action=f"ingest.{summary.format}",
        entity="file",
        entity_id=summary.path,
        after=summary.counts(),
    )
