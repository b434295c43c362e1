"""Retrieval benchmark at company scale: per-person packs, org-wide HNSW, langchain-postgres.

    python -m evals.bench_retrieval --people 2400 --chunks 1000000

Generates the synthetic org and ingests it with 384-dim vectors from the hashing embedder
(embedding a million texts with the real model takes hours on 2 cores), then copies its
chunks with jittered vectors until the store holds `--chunks` chunks, so each person has
the history of several years. Measures, on one warm connection:

- per-person evidence pack (hybrid ranking, one half-year): p50 / p95;
- org-wide top-10 through the HNSW index: p50 / p95 and recall@10 against exact search;
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
from functools import partial
from pathlib import Path
from statistics import quantiles

import numpy as np
from langchain_core.embeddings import Embeddings
from rich.console import Console
from sqlalchemy import Engine, func, select, text

from evals.report import print_figures
from evals.synthetic_org import generate_org
from retrieval.embedding import Embedder, HashingEmbedder
from retrieval.periods import parse_period
from retrieval.schema import Chunk
from retrieval.search import retrieve_evidence
from retrieval.similar import create_hnsw_index, similar_chunks
from retrieval.store import NewChunk, copy_chunks
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.settings import Settings
from service.store import open_store

MODEL = "hashing-384"
PERIODS = ("2026-H1", "2026-H2")


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds."""
    cuts = quantiles([s * 1000 for s in samples], n=100)
    return round(cuts[49], 2), round(cuts[94], 2)


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def inflate(engine: Engine, target: int, seed: int, batch: int = 20000) -> int:
    """Copy chunks with jittered vectors until the store holds `target` chunks."""
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
                    select(Chunk).where(
                        Chunk.id >= start, Chunk.id < start + batch, Chunk.id <= max_id
                    )
                ).all()
                if not rows:
                    continue
                vectors = np.array([r.embedding for r in rows], dtype=np.float32)
                vectors += rng.normal(0, 0.02, vectors.shape).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                copies_of = [
                    NewChunk(
                        record_id=r.record_id,
                        subject_id=r.subject_id,
                        kind=r.kind,
                        source=r.source,
                        occurred_at=r.occurred_at,
                        position=r.position + 1000 * copies,
                        text=r.text,
                        token_count=r.token_count,
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
    kinds = ["self_reflection", "manager_feedback", "promotion_packet"]
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
                    period=parse_period(period),
                    draft_kind=kind,
                )
            )
            if n >= 10:  # the first calls warm caches and embed the kinds' queries
                latencies.append(elapsed)
    return latencies


def bench_hnsw(engine: Engine, queries: np.ndarray, ef_search: int) -> tuple[list[float], float]:
    latencies, recalls = [], []
    for vector in queries:
        with engine.begin() as conn:
            started = time.perf_counter()
            found = similar_chunks(conn, vector, model=MODEL, k=10, ef_search=ef_search)
            latencies.append(time.perf_counter() - started)
            exact = similar_chunks(conn, vector, model=MODEL, k=10, exact=True)
        recalls.append(len({c.chunk_id for c in found} & {c.chunk_id for c in exact}) / 10)
    return latencies[5:], float(np.mean(recalls))


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
        subject, period = rng.choice(subjects), parse_period(rng.choice(PERIODS))
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
    parser.add_argument("--ef-search", type=int, default=80)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    rng = random.Random(args.seed)
    home = Path(tempfile.mkdtemp(prefix="fairdraft-bench-retrieval-"))
    figures: dict[str, float | int | str] = {"people": args.people, "vectors": MODEL}
    try:
        generate_org(home / "org", people=args.people, seed=args.seed)
        settings = Settings(_env_file=None, home=home, embedding_model=MODEL, progress=False)
        embedder = HashingEmbedder(384)
        with open_store(settings) as engine:
            ingestor = Ingestor(
                engine,
                settings,
                actor="bench",
                progress=NoProgress(),
                embedder_factory=lambda: embedder,
            )
            ingest_path(ingestor, home / "org")
            started = time.perf_counter()
            figures["chunks"] = inflate(engine, args.chunks, args.seed)
            figures["inflate_s"] = round(time.perf_counter() - started, 1)
            with engine.connect() as conn:
                subjects = list(conn.execute(select(Chunk.subject_id).distinct()).scalars())
            packs = bench_packs(engine, embedder, subjects, args.samples, rng)
            figures["pack_p50_ms"], figures["pack_p95_ms"] = percentiles(packs)
            started = time.perf_counter()
            create_hnsw_index(engine, MODEL, 384)
            figures["hnsw_build_s"] = round(time.perf_counter() - started, 1)
            queries = embedder.embed(
                [
                    f"{w} project outcome"
                    for w in ("ledger", "hiring", "latency", "renewal", "onboarding")
                ]
                * (args.samples // 5 + 1)
            )
            queries += (
                np.random.default_rng(args.seed).normal(0, 0.05, queries.shape).astype(np.float32)
            )
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
            ann, recall = bench_hnsw(engine, queries[: args.samples // 2], args.ef_search)
            figures["hnsw_p50_ms"], figures["hnsw_p95_ms"] = percentiles(ann)
            figures["hnsw_recall@10"] = round(recall, 3)
            figures["hnsw_ef_search"] = args.ef_search
            lc = bench_langchain(engine, embedder, subjects, args.samples, rng)
            figures["pgvector_lc_p50_ms"], figures["pgvector_lc_p95_ms"] = percentiles(lc)
            figures["lc_over_pack_p95"] = round(
                float(figures["pgvector_lc_p95_ms"]) / float(figures["pack_p95_ms"]), 2
            )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print_figures(console, "retrieval benchmark", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
