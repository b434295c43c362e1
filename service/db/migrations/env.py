"""Alembic environment: always run through `service.db.migrate`, which hands us a connection."""

from alembic import context
from sqlalchemy import Connection

from service.db.models import Base

target_metadata = Base.metadata


def _ours(name: str | None, type_: str, _parent_names: object) -> bool:
    """Autogenerate compares our models only: procrastinate's tables (applied by revision
    0007 from the package's own SQL) are not models of ours."""
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_schemas=True,
        compare_type=True,
        include_name=_ours,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations(context.config.attributes["connection"])
