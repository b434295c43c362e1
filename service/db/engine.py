"""Engines and sessions, and the one context that decides which server we talk to."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from service.db.embedded import embedded_server
from service.settings import Settings


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The configured URL, or an embedded server's when none is configured (never both)."""
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_server(settings.data_dir / "pgdata", settings.embedded_database) as url:
        yield url


CONNECT_TIMEOUT_S = 5  # unless the URL names its own connect_timeout


def make_engine(url: str, *, pool_size: int = 5) -> Engine:
    """An engine that rides out a database restart: `pool_pre_ping` tests each pooled
    connection as it is handed out, so one broken by the restart is replaced (and the pool's
    older ones dropped) instead of failing a request; a connect timeout makes a server that
    cannot be reached fail a request in seconds (the API answers 503) instead of hanging on
    the network's retries for minutes."""
    connect_args = (
        {} if "connect_timeout" in make_url(url).query else {"connect_timeout": CONNECT_TIMEOUT_S}
    )
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """Engine for the configured (or embedded) database, disposed on exit."""
    with database_url(settings) as url:
        engine = make_engine(url, pool_size=settings.db_pool_size)
        try:
            yield engine
        finally:
            engine.dispose()
