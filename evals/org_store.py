"""The store most benchmarks start from: the synthetic org, generated and ingested with the
deterministic hashing embedder (these benchmarks time the database and the Python around
it, not the embedding model)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from evals.synthetic_org import generate_org
from retrieval.embedding import Embedder, HashingEmbedder
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from service.store import open_store

HASHING_MODEL = "hashing-384"


@contextmanager
def org_store(
    home: Path, *, people: int, seed: int, **settings: Any
) -> Iterator[tuple[Engine, Settings, Embedder]]:
    """Generate the org into `home`/org, ingest it into the store in `home` (a kept store
    re-ingests nothing unchanged) and yield the engine, the settings and the embedder."""
    generate_org(home / "org", people=people, seed=seed)
    configured = Settings(
        _env_file=None, home=home, embedding_model=HASHING_MODEL, progress=False, **settings
    )
    embedder = HashingEmbedder(384)
    with open_store(configured) as engine:
        ingestor = Ingestor(
            engine,
            configured,
            actor="bench",
            progress=NoProgress(),
            embedder_factory=lambda: embedder,
        )
        ingest_path(ingestor, home / "org")
        yield engine, configured, embedder
