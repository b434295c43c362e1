"""Org-wide similarity: "who else has evidence like this?", for calibration panels.

Unlike per-person retrieval, these queries scan every chunk in the company, so they use an
approximate HNSW index. The embedding column has no fixed dimension (several models can
coexist), so the index is a partial expression index per model:

    CREATE INDEX ... ON chunks USING hnsw ((embedding::vector(384)) vector_cosine_ops)
        WITH (m = 24, ef_construction = 128) WHERE embedding_model = 'all-MiniLM-L6-v2'

and queries repeat the same cast and predicate so the planner can use it.

Settings, measured at a million chunks on 2 cores (evals/bench_retrieval.py, recall@10
against exact search / p95 latency):

    m = 16, ef_construction = 64 (pgvector's defaults), build 695 s:
        ef_search 40: 0.84 / 7 ms   80: 0.88 / 10 ms   120: 0.90 / 13 ms   200: 0.93 / 20 ms
    m = 24, ef_construction = 128, build 1,266 s:
        ef_search 40: 0.94 / 9 ms   80: 0.98 / 14 ms   120: 0.98 / 18 ms   200: 0.99 / 23 ms

so the index is built with m = 24 and ef_construction = 128 (a denser graph, built once,
for recall that a cheaper search cannot buy back), and `hnsw.ef_search` is 80 per query
(pgvector's default is 40): recall 0.98 at a p95 under 15 ms.

Filtered queries (one cohort) search exactly instead: a cohort is small, and pgvector 0.6
filters HNSW results after the search, which can return fewer than k rows.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Connection, Engine, Select, bindparam, cast, select, text

from retrieval.embedding import Vectors
from retrieval.schema import Chunk

HNSW_M = 24
HNSW_EF_CONSTRUCTION = 128
DEFAULT_EF_SEARCH = 80


@dataclass(frozen=True)
class SimilarChunk:
    chunk_id: int
    subject_id: int
    record_id: int
    similarity: float


def index_name(model: str, dim: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:40]
    return f"ix_chunks_hnsw_{slug}_{dim}"


def stored_dimension(engine: Engine, model: str) -> int | None:
    """The dimension of one model's stored vectors, or None when it has none."""
    with engine.connect() as conn:
        query = select(Chunk.embedding_dim).where(Chunk.embedding_model == model).limit(1)
        dim = conn.execute(query).scalar_one_or_none()
    return None if dim is None else int(dim)


def create_hnsw_index(
    engine: Engine,
    model: str,
    dim: int,
    *,
    build_memory: str = "1GB",
    m: int = HNSW_M,
    ef_construction: int = HNSW_EF_CONSTRUCTION,
) -> str:
    """Build (or keep) the HNSW index for one model's vectors; returns its name.

    The build is several times faster when the whole graph fits in `build_memory`
    (maintenance_work_mem): about 2 GB for a million 384-dim vectors."""
    if not re.fullmatch(r"\d+[kMG]B", build_memory):
        raise ValueError(f"build memory {build_memory!r} must look like 512MB or 2GB")
    name = index_name(model, dim)
    quoted_model = model.replace("'", "''")
    with engine.begin() as conn:
        conn.execute(text(f"SET LOCAL maintenance_work_mem = '{build_memory}'"))
        conn.execute(
            text(
                f"CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw "
                f"((embedding::vector({int(dim)})) vector_cosine_ops) "
                f"WITH (m = {int(m)}, ef_construction = {int(ef_construction)}) "
                f"WHERE embedding_model = '{quoted_model}'"
            )
        )
    return name


def similar_chunks(
    connection: Connection,
    vector: Vectors,
    *,
    model: str,
    k: int = 10,
    subject_ids: Sequence[int] | None = None,
    ef_search: int = DEFAULT_EF_SEARCH,
    exact: bool = False,
) -> list[SimilarChunk]:
    """The k chunks most similar to `vector` among one model's chunks, org-wide through
    the HNSW index, or exactly within `subject_ids` (or everywhere with `exact=True`)."""
    approximate = subject_ids is None and not exact
    if approximate:
        connection.execute(text(f"SET LOCAL hnsw.ef_search = {int(ef_search)}"))
    rows = connection.execute(similarity_query(vector, model, k, subject_ids, approximate)).all()
    return [SimilarChunk(r.id, r.subject_id, r.record_id, float(r.similarity)) for r in rows]


def similarity_query(
    vector: Vectors, model: str, k: int, subject_ids: Sequence[int] | None, approximate: bool
) -> Select[Any]:
    dim = int(vector.shape[-1])
    query = bindparam("query", vector, type_=Vector(dim))
    # Only the cast expression matches the index; the plain column is always scanned exactly.
    column = cast(Chunk.embedding, Vector(dim)) if approximate else Chunk.embedding
    distance = column.cosine_distance(query)
    statement = (
        select(Chunk.id, Chunk.subject_id, Chunk.record_id, (1 - distance).label("similarity"))
        .where(Chunk.embedding_model == bindparam("model", model, literal_execute=True))
        # HNSW can only serve ORDER BY distance alone; exact search breaks ties by id.
        .order_by(*([distance] if approximate else [distance, Chunk.id]))
        .limit(k)
    )
    if subject_ids is not None:
        statement = statement.where(Chunk.subject_id.in_(subject_ids))
    return statement
