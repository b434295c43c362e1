"""Ingest benchmark: the synthetic org at company scale, database side and model side apart.

    python -m evals.bench_ingest --people 2400

The database side (parsing, hashing, chunking, upserts, COPY of chunks and vectors, the
full-text index) runs on the whole org with 384-dim vectors from the hashing embedder, so
that model time does not hide database time. The model side embeds a deterministic sample
of the org's real chunk texts with the configured model (all-MiniLM-L6-v2 by default) and
projects the time for the whole org. `--full-embed` embeds everything with the real model
in the ingest instead (about 10x longer on 2 cores).

Prints a table and ends with one JSON line of the figures.
"""

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from evals.report import print_figures
from evals.synthetic_org import generate_org
from retrieval.chunking import chunk_text
from retrieval.embedding import embed_in_batches
from service.ingest.progress import RichProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.summary import IngestSummary
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings
from service.store import embedder_from, open_store


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
    settings: Settings, texts: list[str], sample: int, seed: int
) -> dict[str, float | str]:
    """Embedding throughput of the real model on a sample of the org's own chunk texts."""
    chosen = random.Random(seed).sample(texts, min(sample, len(texts)))
    started = time.perf_counter()
    embedder = embedder_from(settings)
    load_s = time.perf_counter() - started
    embed_in_batches(embedder, chosen[:64], batch_size=settings.embedding_batch_size)  # warm-up
    started = time.perf_counter()
    embed_in_batches(embedder, chosen, batch_size=settings.embedding_batch_size)
    seconds = time.perf_counter() - started
    words = sum(len(t.split()) for t in chosen) / max(1, len(chosen))
    return {
        "embed_model": embedder.name,
        "model_load_s": round(load_s, 2),
        "embed_sample": len(chosen),
        "embed_sample_s": round(seconds, 2),
        "embed_chunks_per_s": round(len(chosen) / seconds, 1),
        "mean_words_per_chunk": round(words, 1),
    }


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
    args = parser.parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 120)
    home = Path(tempfile.mkdtemp(prefix="fairdraft-bench-"))
    try:
        org_dir = home / "org"
        started = time.perf_counter()
        generate_org(org_dir, people=args.people, seed=args.seed)
        console.print(f"generated {args.people} people in {time.perf_counter() - started:.1f} s")
        ingest_model = args.model if args.full_embed else "hashing-384"
        settings = Settings(_env_file=None, home=home, embedding_model=ingest_model)
        first, again = ingest_org(settings, org_dir)
        model_settings = Settings(_env_file=None, home=home, embedding_model=args.model)
        texts = chunk_texts(org_dir / "records.jsonl", model_settings)
        model = measure_model(model_settings, texts, args.embed_sample, args.seed)
        result = figures(args.people, first, again, model)
        result["ingest_vectors"] = ingest_model
    finally:
        if not args.keep:
            shutil.rmtree(home, ignore_errors=True)
    print_figures(console, "ingest benchmark", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
