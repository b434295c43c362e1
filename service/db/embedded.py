"""The embedded PostgreSQL 16 + pgvector server from the `pgserver` package.

Used only when no database URL is configured, so that a fresh machine runs fairdraft with
nothing installed by hand. It lives in the data folder and is stopped when we are done.
"""

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    """The embedded server could not be started; the message says where its log is."""


@contextmanager
def embedded_server(pgdata: Path, database: str) -> Iterator[str]:
    """Start (or join) the server in `pgdata`, make sure `database` exists, yield its URL,
    and stop the server when the last user in any process leaves."""
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir at import; its fallback is fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver

    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
            f"Its log is {pgdata / 'log'}."
        ) from exc
    try:
        admin_uri = server.get_uri()
        create_database_if_missing(admin_uri, database)
        yield sqlalchemy_url(server.get_uri(database))
    finally:
        server.cleanup()


def create_database_if_missing(admin_uri: str, database: str) -> None:
    """CREATE DATABASE cannot run in a transaction, and has no IF NOT EXISTS; two processes
    starting together (serve's workers) may both try, and the loser finds it made."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            logger.info("creating database %s", database)
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                logger.info("database %s was created by another process", database)


def sqlalchemy_url(libpq_uri: str) -> str:
    """pgserver hands out libpq URIs; SQLAlchemy needs the psycopg 3 driver named."""
    return libpq_uri.replace("postgresql://", "postgresql+psycopg://", 1)
