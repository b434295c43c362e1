"""Opening the evidence store: the right server, a migrated schema, the embedding model."""

import threading
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
    """The configured embedding model, loaded now: the one way every part (CLI, worker,
    API) gets one. Long-running owners keep theirs in an EmbedderSource."""
    return load_embedder(
        settings.embedding_model,
        device=settings.embedding_device,
        batch_size=settings.embedding_batch_size,
    )


class EmbedderSource:
    """The configured embedder, loaded on first use and then kept: loading MiniLM takes
    seconds, and every draft and ingest needs it. One is owned by whoever runs the work
    (the app, a worker pool) and shared by its threads, hence the lock."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = embedder_from(self._settings)
            return self._embedder
