"""Ingest benchmark: the synthetic org at company scale, database side and model side apart.

    python -m evals.bench_ingest --people 2400

The database side (parsing, hashing, chunking, upserts, COPY of chunks and vectors, the
full-text index) runs on the whole org with 384-dim vectors from the hashing embedder, so
that model time does not hide database time. The model side embeds a deterministic sample
of the org's real chunk texts with the configured model (all-MiniLM-L6-v2 by default) at
the precision the settings choose (FAIRDRAFT_EMBEDDING_PRECISION, auto: bf16 where the CPU
has it) and at fp32, taking turns on the same texts, then prints both rates, their ratio,
and the cosine of the two paths' vectors over 1,000 chunks; and projects the time for the
whole org. `--full-embed` embeds everything with the real model in the ingest instead
(about 10x longer on 2 cores); `--model-only` skips the database side.

Prints a table and ends with one JSON line of the figures.
"""

import argparse
import json
import math
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.console import Console

from evals.report import print_figures
from evals.synthetic_org import generate_org
from retrieval.chunking import chunk_text
from retrieval.embedding import Embedder, ThreadPlan, Vectors, embed_in_batches
from service.ingest.progress import RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings
from service.store import embedder_from, open_store

COSINE_CHUNKS = 1000


def chunk_texts(records_path: Path, settings: Settings) -> list[str]:
    texts: list[str] = []
    with records_path.open() as handle:
        for line in handle:
            record = json.loads(line)
            chunks = chunk_text(
                record["body"],
                title=record.get("title"),
                max_tokens=settings.chunk_max_tokens,
                overlap_tokens=settings.chunk_overlap_tokens,
            )
            texts.extend(chunk.text for chunk in chunks)
    return texts


def measure_model(
    settings: Settings, texts: list[str], sample: int, seed: int, rounds: int = 4
) -> dict[str, float | str]:
    """Embedding throughput of the configured path and of fp32 on the same sample of the
    org's own chunk texts, in one process, taking turns slice by slice (who goes first
    alternates) so that a machine busy with other work slows both alike; and how close the
    configured path's vectors are to fp32's."""
    chosen = random.Random(seed).sample(texts, min(sample, len(texts)))
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    fast = embedder_from(settings)
    load_s = time.perf_counter() - started
    fp32 = embedder_from(settings.model_copy(update={"embedding_precision": "fp32"}))
    batch = settings.embedding_batch_size
    for embedder in (fast, fp32):
        embed_in_batches(embedder, chosen[:64], batch_size=batch)  # warm-up
    seconds = {"fast": 0.0, "fp32": 0.0}
    vectors: dict[str, list[Vectors]] = {"fast": [], "fp32": []}
    step = max(1, math.ceil(len(chosen) / rounds))
    for turn, begin in enumerate(range(0, len(chosen), step)):
        part = chosen[begin : begin + step]
        pairs = [("fast", fast), ("fp32", fp32)]
        for key, embedder in pairs if turn % 2 == 0 else pairs[::-1]:
            started = time.perf_counter()
            vectors[key].append(embed_in_batches(embedder, part, batch_size=batch))
            seconds[key] += time.perf_counter() - started
    cosine = cosines(np.concatenate(vectors["fast"]), np.concatenate(vectors["fp32"]))
    words = sum(len(t.split()) for t in chosen) / max(1, len(chosen))
    rate, rate_fp32 = (len(chosen) / seconds[key] for key in ("fast", "fp32"))
    return {
        "embed_model": fast.name,
        "embed_precision": str(getattr(fast, "precision", "fp32")),
        "embed_threads": thread_plan(fast),
        "model_load_s": round(load_s, 2),
        "embed_sample": len(chosen),
        "embed_sample_s": round(seconds["fast"], 2),
        "embed_chunks_per_s": round(rate, 1),
        "embed_fp32_chunks_per_s": round(rate_fp32, 1),
        "embed_speedup_vs_fp32": round(rate / rate_fp32, 2),
        "embed_cosine_chunks": min(COSINE_CHUNKS, len(cosine)),
        "embed_cosine_min": round(float(cosine[:COSINE_CHUNKS].min(initial=1.0)), 6),
        "embed_cosine_mean": round(float(cosine[:COSINE_CHUNKS].mean()), 6) if len(cosine) else 1.0,
        "mean_words_per_chunk": round(words, 1),
        "load_avg_1m_before": round(load_before, 2),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
    }


def cosines(a: Vectors, b: Vectors) -> npt.NDArray[np.float32]:
    """Row-wise cosine of two sets of unit vectors."""
    result: npt.NDArray[np.float32] = np.einsum("ij,ij->i", a, b).astype(np.float32)
    return result


def thread_plan(embedder: Embedder) -> str:
    """The embedder's thread plan as workers x threads each ("-" for one without)."""
    plan = getattr(embedder, "threads", None)
    if not isinstance(plan, ThreadPlan):
        return "-"
    return f"{plan.workers}x{plan.threads_per_worker}"


def ingest_org(
    settings: Settings, org_dir: Path
) -> tuple[list[IngestSummary], list[IngestSummary]]:
    """Ingest once into an empty database, then again (nothing should change)."""
    with open_store(settings) as engine:
        ingestor = Ingestor(engine, settings, actor="bench", progress=RichProgress())
        first = ingest_path(ingestor, org_dir)
        again = ingest_path(ingestor, org_dir)
    return first, again


def figures(
    people: int,
    first: list[IngestSummary],
    again: list[IngestSummary],
    model: dict[str, float | str],
) -> dict[str, float | str]:
    records = next(s for s in first if s.format == "records")
    chunks = records.chunks_written
    result: dict[str, float | str] = {
        "people": people,
        "records": records.rows,
        "chunks": chunks,
        "records_ingest_s": round(records.seconds, 2),
        "db_s": round(records.db_seconds, 2),
        "db_records_per_s": round(records.rows / records.db_seconds, 1),
        "db_chunks_per_s": round(chunks / records.db_seconds, 1),
        "ingest_embed_s": round(records.embed_seconds, 2),
        "reingest_unchanged_s": round(sum(s.seconds for s in again), 2),
        "reingest_changed_rows": sum(s.inserted + s.updated for s in again),
        **model,
    }
    rate = float(model.get("embed_chunks_per_s", 0.0))
    if rate:
        result["projected_full_embed_s"] = round(chunks / rate, 1)
        result["projected_records_per_s"] = round(
            records.rows / (records.db_seconds + chunks / rate), 1
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=2400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--embed-sample", type=int, default=2000)
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument("--full-embed", action="store_true", help="embed everything for real")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    parser.add_argument("--model-only", action="store_true", help="measure the embedding side only")
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = Path(tempfile.mkdtemp(prefix="fairdraft-bench-"))
    try:
        org_dir = home / "org"
        started = time.perf_counter()
        generate_org(org_dir, people=args.people, seed=args.seed)
        console.print(f"generated {args.people} people in {time.perf_counter() - started:.1f} s")
        ingest_model = args.model if args.full_embed else "hashing-384"
        model_settings = Settings(_env_file=None, home=home, embedding_model=args.model)
        texts = chunk_texts(org_dir / "records.jsonl", model_settings)
        model = measure_model(model_settings, texts, args.embed_sample, args.seed)
        if args.model_only:
            result: dict[str, float | str] = {"people": args.people, "chunks": len(texts), **model}
        else:
            settings = Settings(_env_file=None, home=home, embedding_model=ingest_model)
            first, again = ingest_org(settings, org_dir)
            result = figures(args.people, first, again, model)
            result["ingest_vectors"] = ingest_model
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print_figures(console, "ingest benchmark", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
