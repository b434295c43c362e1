"""The schema, the embedded server, and the choice between it and a configured URL."""

from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, inspect, text

from service.db.engine import database_url, make_engine
from service.db.migrate import (
    SchemaOutOfDate,
    check_models_match,
    current_revision,
    downgrade,
    ensure_schema,
    head_revision,
    upgrade,
)
from service.settings import Settings

TABLES = {"people", "records", "chunks", "review_cycles", "ratings", "audit_events"}


@pytest.fixture
def empty_engine(admin_uri: str) -> Engine:
    name = "empty_for_migrations"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = admin_uri.replace("postgresql://", "postgresql+psycopg://", 1)
    return make_engine(url.replace("/postgres?", f"/{name}?", 1))


def test_an_empty_database_is_migrated_on_start(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None

    ensure_schema(empty_engine)

    assert current_revision(empty_engine) == head_revision()
    inspector = inspect(empty_engine)
    assert set(inspector.get_table_names()) >= TABLES
    assert inspector.get_table_names(schema="restricted") == ["demographics"]
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT extname FROM pg_extension WHERE extname='vector'")).one()
    empty_engine.dispose()


def test_migrations_go_down_and_up_again(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    downgrade(empty_engine, "base")
    assert not TABLES & set(inspect(empty_engine).get_table_names())

    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    empty_engine.dispose()


def test_an_older_schema_is_refused_with_the_command_to_run(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000'"))

    with pytest.raises(SchemaOutOfDate, match="fairdraft db upgrade"):
        ensure_schema(empty_engine)
    empty_engine.dispose()


def test_a_configured_url_is_used_and_no_server_is_started(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, database_url="postgresql+psycopg://x@db/y", home=tmp_path)

    with database_url(settings) as url:
        assert url == "postgresql+psycopg://x@db/y"
    assert not (tmp_path / "pgdata").exists()


def test_without_a_url_an_embedded_server_starts_in_the_home_folder_and_stops(
    tmp_path: Path,
) -> None:
    settings = Settings(_env_file=None, home=tmp_path / "home")

    with database_url(settings) as url:
        engine = make_engine(url)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
        pid_file = tmp_path / "home" / "pgdata" / "postmaster.pid"
        assert pid_file.exists()

    assert version.startswith("16")
    assert "/fairdraft?" in url
    assert not pid_file.exists(), "the server was stopped on exit"


def test_the_models_and_the_migrations_describe_the_same_schema(empty_engine: Engine) -> None:
    upgrade(empty_engine)

    check_models_match(empty_engine)  # raises if autogenerate would emit any operation
    empty_engine.dispose()
