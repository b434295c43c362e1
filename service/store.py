"""Opening the evidence store: the right server, a migrated schema, the embedding model."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from sqlalchemy import Engine

from retrieval.embedding import Embedder, load_embedder
from service.bias.nlp import SenseParser, load_sense_parser
from service.db.engine import open_engine
from service.db.migrate import ensure_schema
from service.settings import Settings

T = TypeVar("T")


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
        precision=settings.embedding_precision,
    )


class OnFirstUse(Generic[T]):
    """A model loaded on first use and then kept: loading one takes seconds and most
    commands never need it. One is owned by whoever runs the work (the app, a worker pool)
    and shared by its threads, hence the lock."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._loaded: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._load()
            return self._loaded


class EmbedderSource(OnFirstUse[Embedder]):
    """The configured embedder (every draft and ingest needs it); `wrap`, when given, is
    applied once as it loads, so every caller shares the one wrapped embedder."""

    def __init__(
        self, settings: Settings, wrap: Callable[[Embedder], Embedder] | None = None
    ) -> None:
        super().__init__(lambda: (wrap or _as_is)(embedder_from(settings)))


def _as_is(embedder: Embedder) -> Embedder:
    return embedder


def parser_from(settings: Settings) -> SenseParser:
    """The configured sense parser (spaCy), loaded now: the one way every part gets one."""
    return load_sense_parser(settings.nlp_model)


class ParserSource(OnFirstUse[SenseParser]):
    """The configured sense parser (every bias check and report needs it)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(lambda: parser_from(settings))
