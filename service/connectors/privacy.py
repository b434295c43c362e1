"""A person's say over what connectors keep about them, and HR's purge of a source.

Opting out of a source deletes what it stored about the person at once (records and their
chunks) and keeps it out of every later run, a run going on at that moment included;
opting back in asks the connector for a full pass, which brings it again. Purging a source
deletes all of its records, forgets its cursor and stops its connector until HR resumes
it. Drafts that cited a purged record keep their text; the citation then finds no
evidence and says so.
"""

from pydantic import BaseModel
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from retrieval.schema import Record
from service.audit import audit
from service.connectors.runs import ask_full_pass, hold_source_lock, reset_cursor, stop
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
    hold_source_lock(connection, source)  # a batch being written finishes first
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
        ask_full_pass(connection, {source})  # what it kept out comes back with the pass
        audit(
            connection,
            actor=actor,
            action="source.opt_in",
            entity="person",
            entity_id=str(person_id),
            after={"source": source},
        )


def purge_source(connection: Connection, source: str, *, actor: str) -> int:
    """Delete every record of `source` (however it came: a connector or a records.jsonl
    naming it), forget the connector's cursor and stop it, so the next hourly run does
    not bring it all back; HR resumes it when the source may come in again (from
    nothing). How many records went."""
    hold_source_lock(connection, source)  # a batch being written finishes first
    purged = int(connection.execute(delete(Record).where(Record.source == source)).rowcount)
    reset_cursor(connection, source)
    stop(connection, source, actor=actor)
    audit(
        connection,
        actor=actor,
        action="source.purge",
        entity="source",
        entity_id=source,
        after={"records_deleted": purged},
    )
    return purged
