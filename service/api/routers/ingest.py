"""Uploads of the three ingest formats (HR admins): checked, stored under the data folder
and ingested by a background job, so a large file neither ties up a request nor is lost if
the service restarts before it is read.

A file that would certainly be refused (not UTF-8 text, compressed, a NUL byte, a line
over the limit, and without skip_invalid any row malformed on its own) is answered 422
naming line and field before a job is queued. The stored copy is readable by the service's
user alone (0600), removed when refused, and removed by the job when it ends.
"""

import os
import re
import secrets
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Response, UploadFile

from service.api.accepted import accepted
from service.api.schemas import JobOut
from service.http.deps import ConnectionDep, HrDep, SettingsDep
from service.http.errors import ERROR_RESPONSES, ApiError, ErrorBody
from service.ingest.precheck import check_upload
from service.ingest.uploads import remove_stale_uploads, uploads_dir
from service.ingest.validate import FileLimits
from service.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=ERROR_RESPONSES)
_SUFFIXES = {"people": ".csv", "ratings": ".csv", "records": ".jsonl"}
_CHUNK = 1 << 20
_NAME_CHARS = 120
_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+")


@router.post(
    "/ingest",
    status_code=202,
    summary="Upload people.csv, records.jsonl or ratings.csv; ingested in the background",
    responses={413: {"model": ErrorBody, "description": "Over FAIRDRAFT_MAX_UPLOAD_BYTES"}},
)
def upload(
    file: UploadFile,
    format: Annotated[Literal["people", "records", "ratings"], Form()],
    principal: HrDep,
    connection: ConnectionDep,
    settings: SettingsDep,
    response: Response,
    skip_invalid: Annotated[bool, Form()] = False,
) -> JobOut:
    folder = uploads_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # also when an older version made it 0755
    remove_stale_uploads(connection, settings)
    target = folder / f"{secrets.token_hex(8)}-{format}{_SUFFIXES[format]}"
    name = upload_name(file.filename, format)
    try:
        _save(file, target, settings.max_upload_bytes)
        _check(target, format, settings, skip_invalid=skip_invalid, name=name)
        return accepted(
            connection,
            response,
            principal,
            "ingest",
            {"path": str(target), "format": format, "skip_invalid": skip_invalid, "filename": name},
            max_attempts=1,
        )
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def upload_name(filename: str | None, fmt: str) -> str:
    """The sender's file name as results and errors show it: its last part only, with
    nothing but word characters, dots, dashes, spaces and brackets, and not too long."""
    base = Path((filename or "").replace("\\", "/")).name
    cleaned = _UNSAFE_NAME.sub("_", base).strip(" .")[:_NAME_CHARS]
    return cleaned or f"upload{_SUFFIXES[fmt]}"


def _save(file: UploadFile, target: Path, limit: int) -> None:
    """Copy the upload to `target`, created for the service's user alone (0600); 413 past
    the limit, 422 when empty. The caller removes `target` on any error."""
    size = 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        while chunk := file.file.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the file is over the {limit} byte limit", field="file")
            out.write(chunk)
    if size == 0:
        raise ApiError(422, "the file is empty", field="file")


def _check(target: Path, fmt: str, settings: Settings, *, skip_invalid: bool, name: str) -> None:
    """Refused (422, naming line, field and reason of each problem) before a job is queued."""
    check_upload(
        target, fmt, FileLimits.from_settings(settings), skip_invalid=skip_invalid, label=name
    )
