"""Uploads of the three ingest formats (HR admins): stored under the data folder and
ingested by a background job, so a large file neither ties up a request nor is lost if
the service restarts before it is read."""

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Response, UploadFile

from service.api.deps import ConnectionDep, HrDep, SettingsDep
from service.api.errors import ERROR_RESPONSES, ApiError, ErrorBody
from service.api.routers.jobs import accept_job
from service.api.schemas import JobOut

router = APIRouter(prefix="/api/v1", tags=["ingest"], responses=ERROR_RESPONSES)
_SUFFIXES = {"people": ".csv", "ratings": ".csv", "records": ".jsonl"}
_CHUNK = 1 << 20


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
    folder = settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{secrets.token_hex(8)}-{format}{_SUFFIXES[format]}"
    size = 0
    with target.open("wb") as out:
        while chunk := file.file.read(_CHUNK):
            size += len(chunk)
            if size > settings.max_upload_bytes:
                out.close()
                target.unlink(missing_ok=True)
                raise ApiError(
                    413,
                    f"the file is over the {settings.max_upload_bytes} byte limit",
                    field="file",
                )
            out.write(chunk)
    if size == 0:
        target.unlink(missing_ok=True)
        raise ApiError(422, "the file is empty", field="file")
    return accept_job(
        connection,
        response,
        principal,
        "ingest",
        {"path": str(target), "format": format, "skip_invalid": skip_invalid},
        max_attempts=1,
    )
