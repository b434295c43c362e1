"""The embedded PostgreSQL 16 + pgvector server from the `pgserver` package.

Used only when no database URL is configured, so that a fresh machine runs fairdraft with
nothing installed by hand. It lives in the data folder and is stopped when we are done.

pgserver counts the processes using a server in `pgdata/.handle_pids.json` and stops the
server when the last of them leaves. A process killed with SIGKILL never leaves, so the
server would outlive it forever and every later user would leave it running too. Each start
here first forgets owners whose process is gone, and each close stops a server that no live
process owns any more, even one restarted after a crash (which pgserver no longer tracks).
"""

import json
import logging
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from domain.errors import Misconfigured

logger = logging.getLogger(__name__)

OWNERS_FILE = ".handle_pids.json"  # pgserver 0.1.4's list of the pids using a server
PID_REUSE_SLACK_S = 1.0  # a process born this long after the list was written is not an owner
STOP_TIMEOUT_S = 30


class EmbeddedDatabaseError(Misconfigured):
    """The embedded server could not be started; the message says where its log is."""


def _pgserver() -> Any:
    """pgserver, imported on first use: it asks platformdirs for a runtime dir at import,
    and its fallback (with a warning) is fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        import pgserver
    return pgserver


@contextmanager
def embedded_server(pgdata: Path, database: str) -> Iterator[str]:
    """Start (or join) the server in `pgdata`, make sure `database` exists, yield its URL,
    and stop the server when the last live user in any process leaves."""
    pgserver = _pgserver()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata.resolve()  # pgserver keys its servers by the resolved path
    try:
        forget_dead_owners(pgdata)
        server = pgserver.get_server(pgdata, cleanup_mode="stop")
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}. "
            f"Its log is {pgdata / 'log'}."
        ) from exc
    try:
        admin_uri = server.get_uri()
        create_database_if_missing(admin_uri, database)
        yield sqlalchemy_url(server.get_uri(database))
    finally:
        try:
            server.cleanup()
        finally:
            stop_if_unowned(pgdata)


def forget_dead_owners(pgdata: Path) -> list[int]:
    """Drop the recorded users of the server whose process is gone (killed, crashed), so
    that the last live user stops the server again; returns the pids dropped."""
    with _owners_lock():
        recorded = _read_owners(pgdata)
        alive = _live_owners(pgdata, recorded or [])
        if alive != recorded:  # also rewrites an unreadable list, which pgserver cannot read
            _write_owners(pgdata, alive)
    dropped = [pid for pid in recorded or [] if pid not in alive]
    if dropped:
        logger.warning(
            "embedded PostgreSQL in %s: %d user(s) died without leaving (pids %s); "
            "forgotten, so the server is stopped when its last live user leaves",
            pgdata,
            len(dropped),
            dropped,
        )
    return dropped


def stop_if_unowned(pgdata: Path) -> bool:
    """Stop the server in `pgdata` when no live process uses it. pgserver stops only the
    postmaster it started or found at start-up, so one restarted after a crash would run on
    with nobody left to use it. True when a server was stopped here."""
    with _owners_lock():
        recorded = _read_owners(pgdata)
        if _live_owners(pgdata, recorded or []):
            return False
        if recorded != []:
            _write_owners(pgdata, [])
        postmaster = running_postmaster(pgdata)
        if postmaster is None:
            return False
        logger.info("stopping the embedded PostgreSQL in %s: no live user left", pgdata)
        _stop(pgdata, postmaster)
        return True


def running_postmaster(pgdata: Path) -> int | None:
    """The pid of the live postmaster of `pgdata` (from its postmaster.pid), or None. A pid
    reused by another program is not taken for it: the process must be a postgres."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
            return None
    except (OSError, ValueError, psutil.Error):
        return None
    return pid


def pg_ctl(pgdata: Path, *args: str) -> None:
    """Run pgserver's bundled pg_ctl on `pgdata`, as the user pgserver runs the server as (a
    user of its own when we are root, since PostgreSQL refuses to run as root)."""
    user = "pgserver" if hasattr(os, "geteuid") and os.geteuid() == 0 else None
    _pgserver().pg_ctl(list(args), pgdata=pgdata, user=user, timeout=STOP_TIMEOUT_S + 10)


def _stop(pgdata: Path, postmaster: int) -> None:
    """A fast shutdown (sessions ended, data flushed); if that fails, SIGTERM then SIGKILL."""
    try:
        pg_ctl(pgdata, "-w", "-t", str(STOP_TIMEOUT_S), "-m", "fast", "stop")
        return
    except (subprocess.SubprocessError, OSError) as exc:
        logger.warning("pg_ctl stop failed for %s (%s); killing it", pgdata, type(exc).__name__)
    try:
        process = psutil.Process(postmaster)
        process.terminate()
        process.wait(5)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.NoSuchProcess:
        pass


def _owners_lock() -> AbstractContextManager[object]:
    """pgserver's own inter-process lock, under which it reads and writes the owners list."""
    lock: AbstractContextManager[object] = _pgserver().PostgresServer._lock
    return lock


def _read_owners(pgdata: Path) -> list[int] | None:
    """The recorded pids ([] when there is no list yet), or None when the list cannot be
    read (cut short by a crash mid-write): then it counts as no users, the running server
    is adopted by the next user and stopped when that one leaves."""
    path = pgdata / OWNERS_FILE
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        value = None
    if not isinstance(value, list) or not all(type(pid) is int for pid in value):
        logger.warning("embedded PostgreSQL: %s is not a list of pids, taken as no users", path)
        return None
    return value


def _write_owners(pgdata: Path, pids: list[int]) -> None:
    (pgdata / OWNERS_FILE).write_text(json.dumps(pids))


def _live_owners(pgdata: Path, pids: list[int]) -> list[int]:
    """The pids whose process still runs and was born before the list was last written
    (a process born later only reuses a dead owner's pid)."""
    try:
        written = (pgdata / OWNERS_FILE).stat().st_mtime
    except OSError:
        written = time.time()
    return [pid for pid in pids if _is_owner_alive(pid, written)]


def _is_owner_alive(pid: int, list_written: float) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        born: float = process.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # another user's live process: keep it, as pgserver would
    return born <= list_written + PID_REUSE_SLACK_S


def create_database_if_missing(admin_uri: str, database: str) -> None:
    """CREATE DATABASE cannot run in a transaction, and has no IF NOT EXISTS; two processes
    starting together (serve's workers) may both try, and the loser finds it made."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if not exists:
            logger.info("creating database %s", database)
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                logger.info("database %s was created by another process", database)


def sqlalchemy_url(libpq_uri: str) -> str:
    """pgserver hands out libpq URIs; SQLAlchemy needs the psycopg 3 driver named."""
    return libpq_uri.replace("postgresql://", "postgresql+psycopg://", 1)
