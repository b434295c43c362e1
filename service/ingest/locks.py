"""One lock for ingest writes, so that two ingests of the same file at once (two CLI runs,
two uploads, a connector and a person) both finish: the second waits for the first to
commit, then sees its rows as already stored instead of inserting them again."""

import zlib

from sqlalchemy import Connection, func, select

# pg_advisory_xact_lock takes a bigint; a fixed number derived from a readable name keeps
# it recognisable in pg_locks (objid) and apart from any other advisory lock.
INGEST_LOCK_KEY = zlib.crc32(b"fairdraft.ingest")


def hold_ingest_lock(connection: Connection) -> None:
    """Wait for, then hold until this transaction ends, the ingest write lock. Taken before
    a transaction reads what is stored to decide what to write."""
    connection.execute(select(func.pg_advisory_xact_lock(INGEST_LOCK_KEY)))
