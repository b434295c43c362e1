"""Test fixtures: one embedded Postgres per run, a fresh database per test.

The schema is migrated once into a template database; each test gets its own copy
(`CREATE DATABASE ... TEMPLATE`, a file copy in Postgres), so tests can commit freely and
none sees another's leftovers.
"""

import itertools
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine

from retrieval.embedding import Embedder, HashingEmbedder, Vectors, load_embedder
from service.bias.nlp import SenseParser, load_sense_parser
from service.db.embedded import embedded_server, sqlalchemy_url
from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.api_org import ApiOrg

FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = "fairdraft_template"
_counter = itertools.count()


class CountingEmbedder:
    """The hashing embedder, counting what it was asked to embed."""

    def __init__(self, dim: int = 384) -> None:
        self.inner = HashingEmbedder(dim)
        self.texts: list[str] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.texts.extend(texts)
        return self.inner.embed(texts)


class Sleeps:
    """A connector's sleeper that records the waits instead of sleeping them."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's FAIRDRAFT_* settings or touches the hub."""
    for name in list(os.environ):
        if name.startswith("FAIRDRAFT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def admin_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """libpq URI of the embedded server, with the migrated template database ready."""
    home = tmp_path_factory.mktemp("pg")
    with embedded_server(home / "pgdata", TEMPLATE) as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url.replace("postgresql+psycopg://", "postgresql://", 1).replace(
            f"/{TEMPLATE}?", "/postgres?", 1
        )
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def database_url(admin_uri: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    name = f"test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    yield sqlalchemy_url(admin_uri.replace("/postgres?", f"/{name}?", 1))
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        home=tmp_path / "home",
        embedding_model="hashing-384",
        progress=False,
    )


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
def ingestor(engine: Engine, settings: Settings, embedder: CountingEmbedder) -> Ingestor:
    return Ingestor(
        engine, settings, actor="test", progress=NoProgress(), embedder_factory=lambda: embedder
    )


@pytest.fixture
def org_dir(tmp_path: Path) -> Path:
    """A writable copy of the hand-written three-file org."""
    target = tmp_path / "org"
    shutil.copytree(FIXTURES / "org", target)
    return target


@pytest.fixture(scope="session")
def sense_parser() -> SenseParser:
    """The bias check's spaCy pipeline, loaded once per run (2 s): every check and report
    takes it, as the app and the worker pass theirs."""
    return load_sense_parser()


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    """The real default model, loaded once per run (slow tests only)."""
    return load_embedder(DEFAULT_EMBEDDING_MODEL)


@pytest.fixture
def settings_minilm(engine: Engine, settings: Settings, minilm: Embedder) -> Ingestor:
    """An ingestor that embeds with the real default model."""
    return Ingestor(
        engine, settings, actor="test", progress=NoProgress(), embedder_factory=lambda: minilm
    )


@pytest.fixture
def api_org(engine: Engine, settings: Settings, ingestor: Ingestor, tmp_path: Path) -> "ApiOrg":
    from tests.api_org import build_api_org

    return build_api_org(engine, settings, ingestor, tmp_path / "api-org")


@pytest.fixture
def client(engine: Engine, settings: Settings, api_org: "ApiOrg") -> Iterator["TestClient"]:
    """The app on this test's database, without an in-process worker (tests run jobs)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(settings, engine=engine, worker=False)) as test_client:
        yield test_client
