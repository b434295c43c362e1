"""Retrieval benchmark at company scale: per-person packs, org-wide HNSW, langchain-postgres.

    python -m evals.bench_retrieval --people 2400 --chunks 1000000

Generates the synthetic org and ingests it with 384-dim vectors from the hashing embedder
(embedding a million texts with the real model takes hours on 2 cores), then copies its
chunks into earlier years, with noisy vectors, until the store holds `--chunks` chunks, so
each person has the history of several years. Measures, on one warm connection:

- per-person evidence pack (hybrid ranking, one half-year): p50 / p95;
- org-wide top-10 through the HNSW index, for each `--ef-search`: p50 / p95 and recall@10
  against exact search (queries: this year's chunks, nudged);
- the same per-person query through langchain-postgres `PGVector.similarity_search` with a
  metadata filter (subject and period) on the same rows, and the ratio to ours.

Prints a table and ends with one JSON line of the figures.
"""

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import quantiles

import numpy as np
from langchain_core.embeddings import Embeddings
from rich.console import Console
from sqlalchemy import Engine, func, select, text

from domain.kinds import REVIEW_KINDS
from domain.periods import parse_period
from evals.org_store import org_store
from evals.report import print_figures
from retrieval.embedding import Embedder
from retrieval.schema import Chunk
from retrieval.search import retrieve_evidence
from retrieval.similar import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    create_hnsw_index,
    index_name,
    similar_chunks,
)
from retrieval.store import NewChunk, copy_chunks

MODEL = "hashing-384"
PERIODS = tuple(parse_period(name) for name in ("2026-H1", "2026-H2"))


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    cuts = quantiles([s * 1000 for s in samples], n=100)
    return round(cuts[49], 2), round(cuts[94], 2)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


_COPIED = ("record_id", "subject_id", "kind", "source", "text", "token_count")


def inflate(engine: Engine, target: int, seed: int, batch: int = 20000) -> int:
    """Copy the org's chunks into earlier years until the store holds `target` chunks.

    Copy n is dated n years back, so each person gets several years of history and a
    half-year pack still sees one half-year of chunks. Its vector is the original plus
    Gaussian noise (sigma 0.03 per dimension, cosine about 0.85 to the original): another
    note on a similar subject, not a tie that no index could order."""
    rng = np.random.default_rng(seed)
    with engine.connect() as conn:
        base = int(conn.execute(select(func.count()).select_from(Chunk)).scalar_one())
        max_id = int(conn.execute(select(func.max(Chunk.id))).scalar_one())
    copies, written = 0, base
    while written < target:
        copies += 1
        for start in range(0, max_id + 1, batch):
            with engine.begin() as conn:
                rows = conn.execute(
                    select(
                        *(getattr(Chunk, name) for name in _COPIED),
                        Chunk.occurred_at,
                        Chunk.position,
                        func.vector_send(Chunk.embedding).label("vector"),
                    ).where(Chunk.id >= start, Chunk.id < start + batch, Chunk.id <= max_id)
                ).all()
                if not rows:
                    continue
                vectors = np.array(
                    [np.frombuffer(r.vector, dtype=">f4", offset=4) for r in rows],
                    dtype=np.float32,
                )
                vectors += rng.normal(0, 0.03, vectors.shape).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                copies_of = [
                    NewChunk(
                        **{n: getattr(r, n) for n in _COPIED},
                        occurred_at=r.occurred_at - timedelta(days=365 * copies),
                        position=r.position + 1000 * copies,  # (record, position) is unique
                    )
                    for r in rows
                ]
                written += copy_chunks(conn, copies_of, vectors, MODEL)
            if written >= target:
                break
    with engine.begin() as conn:
        conn.execute(text("ANALYZE chunks"))
    return written


def bench_packs(
    engine: Engine, embedder: Embedder, subjects: list[int], samples: int, rng: random.Random
) -> list[float]:
    kinds = list(REVIEW_KINDS)
    latencies = []
    with engine.connect() as conn:
        for n in range(samples + 10):
            subject, period, kind = rng.choice(subjects), rng.choice(PERIODS), rng.choice(kinds)
            elapsed = timed(
                partial(
                    retrieve_evidence,
                    conn,
                    embedder,
                    subject_id=subject,
                    period=period,
                    draft_kind=kind,
                )
            )
            if n >= 10:  # the first calls warm caches and embed the kinds' queries
                latencies.append(elapsed)
    return latencies


def _drop_index_unless(engine: Engine, m: int, ef_construction: int) -> None:
    """A kept store's index is rebuilt when it was built with other settings."""
    name = index_name(MODEL, 384)
    with engine.begin() as conn:
        definition = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": name}
        ).scalar_one_or_none()
        wanted = f"m='{m}', ef_construction='{ef_construction}'"
        if definition is not None and wanted not in definition:
            conn.execute(text(f"DROP INDEX {name}"))


def hnsw_queries(engine: Engine, samples: int, seed: int) -> np.ndarray:
    """Calibration asks "who else has evidence like this one?": query vectors are this
    year's chunks, nudged by the same noise as the copies so none is an exact hit."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(func.vector_send(Chunk.embedding))
            .where(Chunk.occurred_at >= datetime(2026, 1, 1, tzinfo=UTC))
            .order_by(func.md5(func.concat(Chunk.id, str(seed))))
            .limit(samples)
        ).scalars()
        vectors = np.array([np.frombuffer(r, dtype=">f4", offset=4) for r in rows])
    vectors += np.random.default_rng(seed).normal(0, 0.03, vectors.shape)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised.astype(np.float32)


def exact_tenth(engine: Engine, queries: np.ndarray) -> list[float]:
    """The similarity of each query's 10th nearest chunk, by exact search."""
    with engine.begin() as conn:
        return [
            similar_chunks(conn, v, model=MODEL, k=10, exact=True)[-1].similarity for v in queries
        ]


def bench_hnsw(
    engine: Engine, queries: np.ndarray, tenth: list[float], ef_search: int
) -> tuple[list[float], float]:
    """Latency and recall@10 at one ef_search, after one untimed pass to warm the index.

    Recall counts the results at least as similar as the exact 10th (less 1e-6), as
    ANN-Benchmarks does: the org's templated text gives many chunks identical vectors, and
    which of several tied chunks an index returns is not a miss."""
    latencies, recalls = [], []
    for timed_pass in (False, True):
        for vector, threshold in zip(queries, tenth, strict=True):
            with engine.begin() as conn:
                started = time.perf_counter()
                found = similar_chunks(conn, vector, model=MODEL, k=10, ef_search=ef_search)
                elapsed = time.perf_counter() - started
            if timed_pass:
                latencies.append(elapsed)
                recalls.append(sum(c.similarity >= threshold - 1e-6 for c in found) / 10)
    return latencies, float(np.mean(recalls))


class _LangChainEmbeddings(Embeddings):
    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [list(map(float, v)) for v in self.embedder.embed(texts)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def bench_langchain(
    engine: Engine, embedder: Embedder, subjects: list[int], samples: int, rng: random.Random
) -> list[float]:
    """The same rows in langchain-postgres' tables, queried with a metadata filter."""
    from langchain_postgres import PGVector

    store = PGVector(
        _LangChainEmbeddings(embedder),
        connection=engine,
        embedding_length=384,
        collection_name="bench",
        pre_delete_collection=True,
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, "
                "cmetadata) SELECT c.id::text, col.uuid, c.embedding::vector(384), c.text, "
                "jsonb_build_object('subject_id', c.subject_id, 'occurred_at', "
                "to_char(c.occurred_at, 'YYYY-MM-DD'), 'kind', c.kind) "
                "FROM chunks c, langchain_pg_collection col WHERE col.name = 'bench'"
            )
        )
        conn.execute(text("ANALYZE langchain_pg_embedding"))
    latencies = []
    for n in range(samples + 10):
        subject, period = rng.choice(subjects), rng.choice(PERIODS)
        where = {
            "$and": [
                {"subject_id": {"$eq": subject}},
                {"occurred_at": {"$gte": period.start.isoformat()}},
                {"occurred_at": {"$lte": period.end.isoformat()}},
            ]
        }
        elapsed = timed(
            partial(store.similarity_search, "accomplishments and impact", k=40, filter=where)
        )
        if n >= 10:
            latencies.append(elapsed)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[40, 80, 120, 200])
    parser.add_argument("--build-memory", default="3GB", help="maintenance_work_mem for HNSW")
    parser.add_argument("--m", type=int, default=HNSW_M, help="HNSW graph degree")
    parser.add_argument("--ef-construction", type=int, default=HNSW_EF_CONSTRUCTION)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--home", type=Path, help="keep the store here; a rerun reuses the inflated store"
    )
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    rng = random.Random(args.seed)
    home = args.home or Path(tempfile.mkdtemp(prefix="fairdraft-bench-retrieval-"))
    figures: dict[str, float | int | str] = {
        "people": args.people,
        "vectors": MODEL,
        "hnsw_m": args.m,
        "hnsw_ef_construction": args.ef_construction,
    }
    try:
        with org_store(home, people=args.people, seed=args.seed) as (engine, _, embedder):
            console.log(f"ingested the org; inflating to {args.chunks} chunks")
            started = time.perf_counter()
            figures["chunks"] = inflate(engine, args.chunks, args.seed)
            figures["inflate_s"] = round(time.perf_counter() - started, 1)
            with engine.connect() as conn:
                subjects = list(conn.execute(select(Chunk.subject_id).distinct()).scalars())
            console.log("per-person packs")
            packs = bench_packs(engine, embedder, subjects, args.samples, rng)
            figures["pack_p50_ms"], figures["pack_p95_ms"] = percentiles(packs)
            started = time.perf_counter()
            console.log("building the HNSW index")
            _drop_index_unless(engine, args.m, args.ef_construction)
            create_hnsw_index(
                engine,
                MODEL,
                384,
                build_memory=args.build_memory,
                m=args.m,
                ef_construction=args.ef_construction,
            )
            figures["hnsw_build_s"] = round(time.perf_counter() - started, 1)
            queries = hnsw_queries(engine, args.samples // 2, args.seed)
            started = time.perf_counter()
            console.log("exact top-10 for the HNSW queries")
            tenth = exact_tenth(engine, queries)
            figures["exact_mean_ms"] = round((time.perf_counter() - started) / len(queries) * 1000)
            for ef in args.ef_search:
                ann, recall = bench_hnsw(engine, queries, tenth, ef)
                figures[f"hnsw_ef{ef}_p50_ms"], figures[f"hnsw_ef{ef}_p95_ms"] = percentiles(ann)
                figures[f"hnsw_ef{ef}_recall@10"] = round(recall, 3)
            console.log("langchain-postgres PGVector")
            lc = bench_langchain(engine, embedder, subjects, args.samples, rng)
            figures["pgvector_lc_p50_ms"], figures["pgvector_lc_p95_ms"] = percentiles(lc)
            figures["lc_over_pack_p95"] = round(
                float(figures["pgvector_lc_p95_ms"]) / float(figures["pack_p95_ms"]), 2
            )
    finally:
        if args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    print_figures(console, "retrieval benchmark", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
