"""Ingest a file or a folder: decide each file's format and hand it to its importer."""

import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from retrieval.embedding import Embedder
from service.ingest.errors import IngestError, IngestRefused, RowError
from service.ingest.formats import FORMATS
from service.ingest.people import ingest_people
from service.ingest.progress import ProgressReporter
from service.ingest.ratings import ingest_ratings
from service.ingest.records import ChunkSettings, ingest_records
from service.ingest.summary import IngestSummary
from service.ingest.validate import FileLimits, check_file, sniff
from service.settings import Settings
from service.store import embedder_from

_HEADER_HINTS = {"people": "employee_id,name,email", "ratings": "cycle,employee_id,rater_id"}
_HEADER_BYTES = 4096  # enough of a first line to tell the format


def detect_format(path: Path, label: str | None = None) -> str:
    """By file name first (people*.csv, ratings*.csv, *.jsonl), then by CSV header; a file
    that is not text at all (gzip, zip, UTF-16) is refused saying what it is."""
    name = path.name.lower()
    if name.endswith((".jsonl", ".ndjson")):
        return "records"
    if name.endswith(".csv"):
        for fmt in ("people", "ratings"):
            if name.startswith(fmt):
                return fmt
        header = _first_line(path).strip().replace(" ", "")
        for fmt, hint in _HEADER_HINTS.items():
            if header.startswith(hint):
                return fmt
    kind = sniff(path)
    if kind is not None:
        reason = f"this is {kind}, not a UTF-8 text export"
        raise IngestRefused(label or str(path), [RowError(1, "(file)", reason)])
    raise IngestError(
        f"{label or path}: cannot tell which format this is; name it people.csv, "
        "records.jsonl or ratings.csv, or pass --format",
        field="file",
    )


def _first_line(path: Path) -> str:
    """The header, read as bytes so that a binary file cannot fail here: check_file says
    what is wrong with it, by line."""
    try:
        with path.open("rb") as handle:
            head = handle.readline(_HEADER_BYTES)
    except OSError as exc:
        raise IngestError(
            f"{path.name}: cannot read the file ({exc.strerror or exc})", field="file"
        ) from None
    return head.decode("utf-8-sig", errors="replace")


def files_to_ingest(path: Path, label: str | None = None) -> list[tuple[Path, str]]:
    """A file alone, or a folder's files in dependency order: people, records, ratings.
    `label` names `path` in messages (a folder's files as label/name)."""
    if not path.exists():
        raise IngestError(f"{label or path}: no such file or folder", field="file")
    if path.is_file():
        return [(path, detect_format(path, label))]
    found = [
        (child, detect_format(child, _child_label(child, label)))
        for child in sorted(path.iterdir())
        if child.is_file() and child.suffix.lower() in (".csv", ".jsonl", ".ndjson")
    ]
    if not found:
        raise IngestError(
            f"{label or path}: no people.csv, records.jsonl or ratings.csv in this folder",
            field="file",
        )
    return sorted(found, key=lambda item: FORMATS.index(item[1]))


def _child_label(child: Path, label: str | None) -> str | None:
    return f"{label}/{child.name}" if label else None


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
        self.limits = FileLimits.from_settings(settings)

    def check(self, path: Path, *, label: str | None = None) -> None:
        """IngestRefused when the file's bytes are not a UTF-8 text export within the
        limits (see service.ingest.validate); reads the file once, writes nothing."""
        check_file(path, self.limits, label=label)

    def ingest(
        self, path: Path, fmt: str, *, skip_invalid: bool, label: str | None = None
    ) -> IngestSummary:
        """Check the file's bytes, then hand it to its format's importer. `label` is how
        the summary and errors name the file (an upload's own name, not our path)."""
        started = time.perf_counter()
        self.check(path, label=label)
        summary = self._dispatch(path, fmt, skip_invalid, label)
        summary.seconds = time.perf_counter() - started
        if fmt != "records":
            summary.db_seconds = summary.seconds
        return summary

    def _dispatch(
        self, path: Path, fmt: str, skip_invalid: bool, label: str | None
    ) -> IngestSummary:
        if fmt == "people":
            return ingest_people(
                self.engine,
                path,
                actor=self.actor,
                skip_invalid=skip_invalid,
                batch_rows=self.settings.ingest_batch_rows,
                label=label,
            )
        if fmt == "ratings":
            return ingest_ratings(
                self.engine, path, actor=self.actor, skip_invalid=skip_invalid, label=label
            )
        if fmt == "records":
            return ingest_records(
                self.engine,
                path,
                actor=self.actor,
                embedder=self.embedder,
                chunking=ChunkSettings.of(self.settings),
                skip_invalid=skip_invalid,
                embed_batch_size=self.settings.embedding_batch_size,
                progress=self.progress,
                limits=self.limits,
                label=label,
            )
        raise IngestError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="file")


def ingest_path(
    ingestor: Ingestor,
    path: Path,
    *,
    fmt: str | None = None,
    skip_invalid: bool = False,
    label: str | None = None,
) -> list[IngestSummary]:
    """Ingest a file or a folder (people, records, ratings in that order); `fmt` forces
    the format of every file. A folder's files are all checked before the first is
    ingested, so a binary or mis-encoded file refuses the folder with nothing written.
    `label` names `path` in summaries and errors instead of its place on disk."""
    if fmt is not None and fmt not in FORMATS:
        raise IngestError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="file")
    if fmt is not None and path.is_file():
        files = [(path, fmt)]  # the given format wins: the name need not tell it
    else:
        files = files_to_ingest(path, label)
        if fmt is not None:
            files = [(file, fmt) for file, _ in files]
    labels = [label if file == path else _child_label(file, label) for file, _ in files]
    if len(files) > 1:
        for (file, _), file_label in zip(files, labels, strict=True):
            ingestor.check(file, label=file_label)
    return [
        ingestor.ingest(file, file_format, skip_invalid=skip_invalid, label=file_label)
        for (file, file_format), file_label in zip(files, labels, strict=True)
    ]
