"""Re-embedding the store with another model.

Ingest never re-embeds unchanged text, so switching `FAIRDRAFT_EMBEDDING_MODEL` leaves the
old vectors in place until this runs. It works in batches, each committed, ordered by
chunk id: stopping half-way loses nothing, and running it again continues where it left.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Engine, bindparam, func, or_, select, update

from retrieval.embedding import Embedder
from retrieval.schema import Chunk


@dataclass(frozen=True)
class ReembedResult:
    chunks: int
    seconds_embedding: float


def stale_chunk_count(engine: Engine, model: str) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(Chunk).where(_stale(model))
        return int(conn.execute(query).scalar_one())


def _stale(model: str) -> ColumnElement[bool]:
    return or_(Chunk.embedding_model.is_distinct_from(model), Chunk.embedding.is_(None))


def reembed(
    engine: Engine,
    embedder: Embedder,
    *,
    batch_size: int = 1000,
    on_batch: Callable[[int], None] | None = None,
) -> ReembedResult:
    """Give every chunk not embedded with `embedder` a new vector from it."""
    done = 0
    embedding_seconds = 0.0
    statement = (
        update(Chunk)
        .where(Chunk.id == bindparam("chunk_id"))
        .values(
            embedding=bindparam("vector"),
            embedding_model=embedder.name,
            embedding_dim=embedder.dim,
        )
        .execution_options(synchronize_session=False)
    )
    while True:
        with engine.begin() as conn:
            batch = conn.execute(
                select(Chunk.id, Chunk.text)
                .where(_stale(embedder.name))
                .order_by(Chunk.id)
                .limit(batch_size)
            ).all()
            if not batch:
                return ReembedResult(done, embedding_seconds)
            started = time.perf_counter()
            vectors = embedder.embed([row.text for row in batch])
            embedding_seconds += time.perf_counter() - started
            conn.execute(
                statement,
                [
                    {"chunk_id": row.id, "vector": vector}
                    for row, vector in zip(batch, vectors, strict=True)
                ],
            )
        done += len(batch)
        if on_batch:
            on_batch(len(batch))
