"""Where uploaded files wait for their ingest job, and how they are removed.

An upload is written 0600 in a 0700 folder, removed at once when refused, and removed by
its job when the job ends (landed or refused). What a crash leaves behind (a worker that
died on an upload's only attempt, a request whose job was never committed) is swept by
the next upload once it is old enough that no request can still be queueing its job.
"""

import time
from pathlib import Path

from sqlalchemy import Connection, select

from service.db.models import Job
from service.settings import Settings

STALE_UPLOAD_S = 3600.0
_LIVE = ("queued", "running")


def uploads_dir(settings: Settings) -> Path:
    """Where the service keeps uploaded files until their ingest job has run. Only files in
    here are deleted after ingest, so a job can never remove anything else."""
    return settings.data_dir / "uploads"


def is_upload(settings: Settings, path: Path) -> bool:
    return path.is_file() and path.resolve().is_relative_to(uploads_dir(settings).resolve())


def remove_upload(settings: Settings, path: Path) -> None:
    """Delete `path` if it is an uploaded file; anything outside uploads_dir is left alone."""
    if is_upload(settings, path):
        path.unlink(missing_ok=True)


def remove_stale_uploads(
    connection: Connection, settings: Settings, *, older_than_s: float = STALE_UPLOAD_S
) -> int:
    """Delete uploads older than `older_than_s` that no queued or running ingest job will
    read; how many were deleted."""
    folder = uploads_dir(settings)
    if not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    old = [path for path in folder.iterdir() if _modified(path) < cutoff]
    if not old:
        return 0
    waiting = select(Job.payload["path"].astext).where(Job.kind == "ingest", Job.status.in_(_LIVE))
    live = set(connection.execute(waiting).scalars())
    stale = [path for path in old if str(path) not in live and path.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile by its job
        return float("inf")
