"""Ingest a file or a folder: decide each file's format and hand it to its importer."""

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from retrieval.embedding import Embedder
from service.ingest.errors import IngestError
from service.ingest.people import ingest_people
from service.ingest.progress import ProgressReporter
from service.ingest.ratings import ingest_ratings
from service.ingest.records import ChunkSettings, ingest_records
from service.ingest.summary import IngestSummary
from service.settings import Settings
from service.store import embedder_from

FORMATS = ("people", "records", "ratings")
_HEADER_HINTS = {"people": "employee_id,name,email", "ratings": "cycle,employee_id,rater_id"}


def detect_format(path: Path) -> str:
    """By file name first (people*.csv, ratings*.csv, *.jsonl), then by CSV header."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "records"
    if name.endswith(".csv"):
        for fmt in ("people", "ratings"):
            if name.startswith(fmt):
                return fmt
        with path.open(encoding="utf-8-sig") as handle:
            header = handle.readline().strip().replace(" ", "")
        for fmt, hint in _HEADER_HINTS.items():
            if header.startswith(hint):
                return fmt
    raise IngestError(
        f"{path}: cannot tell which format this is; name it people.csv, records.jsonl or "
        "ratings.csv, or pass --format"
    )


def files_to_ingest(path: Path) -> list[tuple[Path, str]]:
    """A file alone, or a folder's files in dependency order: people, records, ratings."""
    if not path.exists():
        raise IngestError(f"{path}: no such file or folder")
    if path.is_file():
        return [(path, detect_format(path))]
    found = [
        (child, detect_format(child))
        for child in sorted(path.iterdir())
        if child.is_file() and child.suffix.lower() in (".csv", ".jsonl", ".ndjson")
    ]
    if not found:
        raise IngestError(f"{path}: no people.csv, records.jsonl or ratings.csv in this folder")
    return sorted(found, key=lambda item: FORMATS.index(item[1]))


class Ingestor:
    """Everything an ingest needs; the embedding model is loaded on first need only."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        *,
        actor: str,
        progress: ProgressReporter,
        embedder_factory: Callable[[], Embedder] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.embedder = cache(embedder_factory or (lambda: embedder_from(settings)))
        self.actor = actor
        self.progress = progress

    def ingest(self, path: Path, fmt: str, *, skip_invalid: bool) -> IngestSummary:
        started = time.perf_counter()
        summary = self._dispatch(path, fmt, skip_invalid)
        summary.seconds = time.perf_counter() - started
        if fmt != "records":
            summary.db_seconds = summary.seconds
        return summary

    def _dispatch(self, path: Path, fmt: str, skip_invalid: bool) -> IngestSummary:
        if fmt == "people":
            return ingest_people(
                self.engine,
                path,
                actor=self.actor,
                skip_invalid=skip_invalid,
                batch_rows=self.settings.ingest_batch_rows,
            )
        if fmt == "ratings":
            return ingest_ratings(self.engine, path, actor=self.actor, skip_invalid=skip_invalid)
        if fmt == "records":
            return ingest_records(
                self.engine,
                path,
                actor=self.actor,
                embedder=self.embedder,
                chunking=ChunkSettings(
                    self.settings.chunk_max_tokens, self.settings.chunk_overlap_tokens
                ),
                skip_invalid=skip_invalid,
                embed_batch_size=self.settings.embedding_batch_size,
                progress=self.progress,
            )
        raise IngestError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def ingest_path(
    ingestor: Ingestor, path: Path, *, fmt: str | None = None, skip_invalid: bool = False
) -> list[IngestSummary]:
    """Ingest a file or a folder (people, records, ratings in that order); `fmt` forces
    the format of every file."""
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt is not None and path.is_file():
        files = [(path, fmt)]  # the given format wins: the name need not tell it
    else:
        files = files_to_ingest(path)
        if fmt is not None:
            files = [(file, fmt) for file, _ in files]
    return [
        ingestor.ingest(file, file_format, skip_invalid=skip_invalid) for file, file_format in files
    ]
