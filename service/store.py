"""Opening the evidence store: the right server, a migrated schema, the embedding model."""

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from retrieval.embedding import Embedder, load_embedder
from service.db.engine import open_engine
from service.db.migrate import ensure_schema
from service.settings import Settings


@contextmanager
def open_store(settings: Settings) -> Iterator[Engine]:
    """An engine on a database whose schema is current (an empty one is migrated)."""
    with open_engine(settings) as engine:
        ensure_schema(engine)
        yield engine


def embedder_from(settings: Settings) -> Embedder:
    return load_embedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )
