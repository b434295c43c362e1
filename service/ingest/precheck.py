"""What can be checked of an upload before its job is queued, without the database.

The bytes always (encoding, NUL, binary, line size: see validate.py). Without
--skip-invalid also the rows' own shape, since any invalid row refuses the file anyway:
JSON, fields, nesting and body size of records; columns and values of people. What needs
the stored data (unknown employees, managers, ratings' scales) stays for the job.
"""

from pathlib import Path

from service.ingest.csv_rows import read_csv
from service.ingest.directory import Directory, PersonRef
from service.ingest.errors import IngestRefused
from service.ingest.people import parse_people
from service.ingest.ratings import RATING_COLUMNS
from service.ingest.records import parse_records
from service.ingest.validate import FileLimits, check_file


class _Anyone(Directory):
    """Resolves every reference, so rows are checked without knowing who exists."""

    def __init__(self) -> None:
        super().__init__([], {})

    def find(self, reference: str) -> PersonRef | None:
        return PersonRef(0, reference)


def check_upload(
    path: Path, fmt: str, limits: FileLimits, *, skip_invalid: bool, label: str
) -> None:
    """IngestRefused (or IngestError) when the upload would certainly be refused."""
    check_file(path, limits, label=label)
    if skip_invalid:
        return
    if fmt == "records":
        _, errors = parse_records(path, _Anyone(), limits)
    elif fmt == "people":
        _, errors, _ = parse_people(path, label=label)
    else:
        read_csv(path, RATING_COLUMNS, label=label)
        errors = []
    if errors:
        raise IngestRefused(label, errors)
