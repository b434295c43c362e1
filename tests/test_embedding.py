"""Embeddings: a chunk's vector finds its own record; the real model loads offline."""

import numpy as np
import pytest
from sqlalchemy import Engine, select

from retrieval.embedding import HashingEmbedder, load_embedder
from retrieval.reembed import reembed, stale_chunk_count
from retrieval.schema import Chunk
from service.ingest.run import Ingestor, ingest_path
from service.settings import DEFAULT_EMBEDDING_MODEL
from tests.conftest import FIXTURES


def nearest_records(engine: Engine) -> list[tuple[int, int]]:
    """For every chunk, (its record, the record of the nearest chunk by cosine distance)."""
    with engine.connect() as conn:
        chunks = conn.execute(select(Chunk.record_id, Chunk.embedding)).all()
        result = []
        for record_id, embedding in chunks:
            nearest = conn.execute(
                select(Chunk.record_id)
                .order_by(Chunk.embedding.cosine_distance(embedding))
                .limit(1)
            ).scalar_one()
            result.append((record_id, nearest))
    return result


def test_hashing_vectors_are_deterministic_unit_length_and_lexical() -> None:
    embedder = HashingEmbedder(64)
    a, b, c = embedder.embed(["ledger migration", "ledger migration", "quarterly hiring plan"])

    assert np.array_equal(a, b)
    assert np.isclose(np.linalg.norm(a), 1.0)
    assert float(a @ b) > float(a @ c)


def test_each_chunk_finds_its_own_record_by_cosine_distance(
    ingestor: Ingestor, engine: Engine
) -> None:
    ingest_path(ingestor, FIXTURES / "org")

    pairs = nearest_records(engine)

    assert len(pairs) >= 6
    assert all(record == nearest for record, nearest in pairs)


@pytest.mark.slow
def test_the_packaged_minilm_loads_offline_and_ranks_by_meaning() -> None:
    embedder = load_embedder(DEFAULT_EMBEDDING_MODEL)
    query, close, far = embedder.embed(
        [
            "cut payment failures after the ledger migration",
            "card payment retries dropped once we moved to the new ledger",
            "the team offsite is booked for the first week of June",
        ]
    )

    assert embedder.dim == 384
    assert np.isclose(np.linalg.norm(query), 1.0, atol=1e-4)
    assert float(query @ close) > float(query @ far) + 0.2


@pytest.mark.slow
def test_with_the_real_model_each_chunk_finds_its_own_record(
    engine: Engine, settings_minilm: Ingestor
) -> None:
    ingest_path(settings_minilm, FIXTURES / "org")

    pairs = nearest_records(engine)

    assert all(record == nearest for record, nearest in pairs)


def test_reembedding_moves_every_chunk_to_the_new_model_and_keeps_search_working(
    ingestor: Ingestor, engine: Engine
) -> None:
    ingest_path(ingestor, FIXTURES / "org")
    total = stale_chunk_count(engine, "hashing-128")

    first = reembed(engine, HashingEmbedder(128), batch_size=4)
    again = reembed(engine, HashingEmbedder(128), batch_size=4)

    assert first.chunks == total > 4, "several committed batches"
    assert again.chunks == 0
    with engine.connect() as conn:
        models = conn.execute(select(Chunk.embedding_model, Chunk.embedding_dim).distinct()).all()
    assert models == [("hashing-128", 128)]
    assert all(record == nearest for record, nearest in nearest_records(engine))
