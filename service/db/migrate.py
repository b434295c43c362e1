"""Schema migrations through Alembic, driven from code so no alembic.ini is needed."""

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from domain.errors import Misconfigured

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaOutOfDate(Misconfigured):
    """The database has an older schema than this code; upgrading is an explicit step."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(engine, command.downgrade, revision)


def check_models_match(engine: Engine) -> None:
    """Raise if the models describe a schema the migrations do not create."""
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.check(config)


_MIGRATION_LOCK = 0x66616972  # any constant: one migration at a time per database


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """Under a transaction-scoped advisory lock, so that processes starting together (the
    workers of `fairdraft serve --workers 2` on an empty database) migrate one after the
    other; the second then finds the schema at head and does nothing."""
    config = alembic_config()
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = conn
        step(config, revision)
    engine.dispose()  # pooled connections may predate the types the migration created


def ensure_schema(engine: Engine) -> None:
    """Migrate an empty database; refuse to run on an old schema rather than migrate it
    behind the operator's back."""
    current = current_revision(engine)
    if current is None:
        upgrade(engine)
    elif current != head_revision():
        raise SchemaOutOfDate(
            f"the database schema is at revision {current}, this fairdraft needs "
            f"{head_revision()}: run `fairdraft db upgrade`"
        )
