"""Importing an HRIS export: the same byte checks, lock, writer, audit and summary as
people.csv (service/ingest/people.py is the one writer of people); from a file (the CLI)
or from HR's page (an upload, with a shipped mapping)."""

import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import Engine

from service.ingest.audited import audit_ingest
from service.ingest.errors import IngestError
from service.ingest.hris.export import read_export
from service.ingest.hris.mapping import LoadedMapping, load_shipped
from service.ingest.locks import hold_ingest_lock
from service.ingest.people import Leavers, load_existing_people, store_people, today_utc
from service.ingest.summary import IngestSummary
from service.ingest.uploads import uploads_dir
from service.ingest.validate import FileLimits, check_file
from service.settings import Settings

_CHUNK = 1 << 20
_NAME_CHARS = 120
_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+")


@dataclass(frozen=True)
class HrisImport:
    """What one import did (or, dry, would do): the counts, and who left or came back."""

    summary: IngestSummary
    leavers: Leavers
    dry_run: bool = False


def import_export(
    engine: Engine,
    path: Path,
    loaded: LoadedMapping,
    *,
    actor: str,
    skip_invalid: bool,
    batch_rows: int,
    limits: FileLimits,
    label: str | None = None,
    today: date | None = None,
    dry_run: bool = False,
) -> HrisImport:
    """Check the export's bytes, read it through the mapping and store its people in one
    transaction under the ingest lock; refused whole (nothing written) on any invalid row
    unless `skip_invalid`. The summary's format is "hris:<mapping>". `dry_run`: the same
    checks and counts, then the transaction rolled back (nothing written, nothing audited),
    so HR sees who would leave before anyone does."""
    started = time.perf_counter()
    name = label or str(path)
    check_file(path, limits, label=name)
    summary = IngestSummary(path=name, format=f"hris:{loaded.name}")
    with engine.connect() as connection, connection.begin() as transaction:
        hold_ingest_lock(connection)
        existing = load_existing_people(connection)
        batch, named = read_export(path, loaded, existing, label=name, today=today or today_utc())
        leavers = store_people(
            connection,
            batch,
            summary,
            existing=existing,
            skip_invalid=skip_invalid,
            batch_rows=batch_rows,
            named=named,
        )
        if dry_run:
            transaction.rollback()
        else:
            audit_ingest(connection, summary, actor)
    summary.seconds = summary.db_seconds = time.perf_counter() - started
    return HrisImport(summary, leavers, dry_run)


def import_upload(
    engine: Engine,
    settings: Settings,
    stream: BinaryIO,
    *,
    filename: str | None,
    mapping: str,
    actor: str,
    skip_invalid: bool,
    today: date | None = None,
) -> HrisImport:
    """An export sent from HR's page, with a shipped mapping chosen by name (never a path:
    a page must not read the server's files). Copied to a file only the service's user can
    read (0600) under the uploads folder, imported at once (people only, nothing to embed:
    seconds even for 20,000 people), and removed whatever happens."""
    loaded = load_shipped(mapping)
    folder = uploads_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = folder / f"{secrets.token_hex(8)}-hris.csv"
    try:
        _copy(stream, target, settings.max_body_bytes)
        return import_export(
            engine,
            target,
            loaded,
            actor=actor,
            skip_invalid=skip_invalid,
            batch_rows=settings.ingest_batch_rows,
            limits=FileLimits.from_settings(settings),
            label=upload_label(filename),
            today=today,
        )
    finally:
        target.unlink(missing_ok=True)


def upload_label(filename: str | None) -> str:
    """The sender's file name as results and errors show it: its last part, word
    characters, dots, dashes, spaces and brackets only, not too long."""
    base = Path((filename or "").replace("\\", "/")).name
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .")[:_NAME_CHARS]
    return cleaned or "export.csv"


def _copy(stream: BinaryIO, target: Path, limit: int) -> None:
    size = 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise IngestError(f"the export is over the {limit} byte limit", field="file")
            out.write(chunk)
    if size == 0:
        raise IngestError("the export is empty", field="file")
