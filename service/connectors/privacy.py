"""A person's say over what connectors keep about them, and HR's purge of a source.

Opting out of a source deletes what it stored about the person at once (records and their
chunks) and keeps it out of every later run; opting back in lets the next full run bring
it again. Purging a source deletes all of its records and forgets its cursor. Drafts that
cited a purged record keep their text; the citation then finds no evidence and says so.
"""

from pydantic import BaseModel
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from retrieval.schema import Record
from service.audit import audit
from service.connectors.runs import reset_cursor
from service.db.models import SourceOptOut


class SourceChoice(BaseModel):
    """A source and whether the person keeps it out."""

    source: str
    opted_out: bool


def opted_out_sources(connection: Connection, person_id: int) -> set[str]:
    query = select(SourceOptOut.source).where(SourceOptOut.person_id == person_id)
    return set(connection.execute(query).scalars())


def opt_out(connection: Connection, person_id: int, source: str, *, actor: str) -> int:
    """Keep `source` out for the person and delete what it stored about them; how many
    records went. Idempotent."""
    connection.execute(
        pg_insert(SourceOptOut)
        .values(person_id=person_id, source=source)
        .on_conflict_do_nothing(index_elements=["person_id", "source"])
    )
    purged = connection.execute(
        delete(Record).where(Record.subject_id == person_id, Record.source == source)
    ).rowcount
    audit(
        connection,
        actor=actor,
        action="source.opt_out",
        entity="person",
        entity_id=str(person_id),
        after={"source": source, "records_deleted": purged},
    )
    return int(purged)


def opt_in(connection: Connection, person_id: int, source: str, *, actor: str) -> None:
    """Let `source` in again for the person (from its next full run on)."""
    removed = connection.execute(
        delete(SourceOptOut).where(
            SourceOptOut.person_id == person_id, SourceOptOut.source == source
        )
    ).rowcount
    if removed:
        audit(
            connection,
            actor=actor,
            action="source.opt_in",
            entity="person",
            entity_id=str(person_id),
            after={"source": source},
        )


def purge_source(connection: Connection, source: str, *, actor: str) -> int:
    """Delete every record of `source` and forget the connector's cursor (a later run
    starts again from nothing); how many records went."""
    purged = int(connection.execute(delete(Record).where(Record.source == source)).rowcount)
    reset_cursor(connection, source)
    audit(
        connection,
        actor=actor,
        action="source.purge",
        entity="source",
        entity_id=source,
        after={"records_deleted": purged},
    )
    return purged
