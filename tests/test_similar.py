"""Org-wide similarity through the per-model HNSW index, and exact search within a cohort."""

import pytest
from sqlalchemy import Engine, select, text

from retrieval.schema import Chunk
from retrieval.similar import create_hnsw_index, similar_chunks, similarity_query
from service.ingest.run import Ingestor, ingest_path
from tests.conftest import FIXTURES, CountingEmbedder


@pytest.fixture
def stored(ingestor: Ingestor) -> None:
    ingest_path(ingestor, FIXTURES / "org")


def test_the_index_serves_org_wide_queries_for_its_model(
    stored: None, engine: Engine, embedder: CountingEmbedder
) -> None:
    name = create_hnsw_index(engine, embedder.name, embedder.dim)
    query = embedder.embed(["settlement alerts caught stuck batches"])[0]

    with engine.begin() as conn:
        conn.execute(text("SET LOCAL enable_seqscan = off"))
        approximate = similar_chunks(conn, query, model=embedder.name, k=3)
        sql = similarity_query(query, embedder.name, 3, None, approximate=True).compile(
            engine, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
        exact = similar_chunks(conn, query, model=embedder.name, k=3, exact=True)

    assert name in plan
    assert [c.chunk_id for c in approximate] == [c.chunk_id for c in exact]
    assert approximate[0].similarity > approximate[-1].similarity


def test_a_cohort_query_only_returns_the_cohorts_chunks(
    stored: None, engine: Engine, embedder: CountingEmbedder
) -> None:
    with engine.connect() as conn:
        cohort = [conn.execute(select(Chunk.subject_id).limit(1)).scalar_one()]
        query = embedder.embed(["ledger migration"])[0]
        found = similar_chunks(conn, query, model=embedder.name, k=10, subject_ids=cohort)

    assert found and {c.subject_id for c in found} == set(cohort)
