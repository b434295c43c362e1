"""Hostile files through the CLI and the upload: each refused naming line, field and reason
(never a traceback, never an "unexpected" job error), uploads kept 0600 and removed when
refused or done, results naming the sender's file and not the server's path, and two
ingests of one file at once both finishing.

The bad files are built here rather than kept under fixtures/ because most are binary
(gzip, zip, UTF-16, NUL bytes) or huge (a 10 MB line); each starts from the fixture org's
first record, so only the planted problem is wrong with it.
"""

import gzip
import io
import json
import os
import random
import stat
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from retrieval.embedding import Embedder
from service.cli import app
from service.db.models import Chunk, Person, Record
from service.ingest.errors import IngestRefused
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, ingest_path
from service.ingest.uploads import uploads_dir
from service.jobs.worker import Worker
from service.settings import Settings, get_settings
from tests.api_org import ApiOrg
from tests.conftest import FIXTURES, CountingEmbedder

INGEST = "/api/v1/ingest"
GOOD_RECORD = (FIXTURES / "org" / "records.jsonl").read_bytes().splitlines(keepends=True)[0]
GOOD_PEOPLE = (FIXTURES / "org" / "people.csv").read_bytes()
MB = 1024 * 1024


def record(**changes: Any) -> dict[str, Any]:
    """The fixture's first record with a new key and the planted change."""
    data: dict[str, Any] = json.loads(GOOD_RECORD)
    return {**data, "external_id": "PAY-HOSTILE", **changes}


def record_line(**changes: Any) -> bytes:
    """A records file: the good record, then one changed as given."""
    return GOOD_RECORD + json.dumps(record(**changes)).encode() + b"\n"


def deep(levels: int) -> str:
    return '{"x": ' * levels + "1" + "}" * levels


def zipped(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def column_of(content: bytes, needle: bytes) -> int:
    """1-based byte column of the first `needle` in the line that holds it."""
    at = content.index(needle)
    return at - content.rfind(b"\n", 0, at)


def bad_record(raw: str) -> bytes:
    """A records file whose second line is `raw` (JSON text), encoded as UTF-8."""
    return GOOD_RECORD + raw.encode() + b"\n"


@dataclass(frozen=True)
class BadFile:
    case: str
    name: str
    fmt: str
    content: bytes
    line: int
    field: str
    reason: str  # the start of the expected reason


E_ACUTE = b"\xe9"  # "é" in Latin-1: not UTF-8 on its own
BAD_UTF8 = GOOD_RECORD + record_line()[len(GOOD_RECORD) :].replace(b"Ledger", b"L\xe9dger")
WITH_NUL = record_line().replace(b"PAY-HOSTILE", b"PAY-\x00HOSTILE")
LATIN1_PEOPLE = GOOD_PEOPLE.replace(b"Bo Chen", b"Bo Ch\xe9n")
UTF8_COLUMN = column_of(BAD_UTF8, E_ACUTE)
LATIN1_COLUMN = column_of(LATIN1_PEOPLE, E_ACUTE)
NUL_COLUMN = column_of(WITH_NUL, b"\x00")


def bad_files() -> list[BadFile]:
    return [
        BadFile(
            "binary",
            "records.jsonl",
            "records",
            b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4,
            1,
            "(encoding)",
            "a NUL byte at byte column 8",
        ),
        BadFile(
            "invalid_utf8",
            "records.jsonl",
            "records",
            BAD_UTF8,
            2,
            "(encoding)",
            f"invalid UTF-8 at byte column {UTF8_COLUMN} (byte 0xe9)",
        ),
        BadFile(
            "latin1_csv",
            "people.csv",
            "people",
            LATIN1_PEOPLE,
            3,
            "(encoding)",
            f"invalid UTF-8 at byte column {LATIN1_COLUMN} (byte 0xe9)",
        ),
        BadFile(
            "nul_byte",
            "records.jsonl",
            "records",
            WITH_NUL,
            2,
            "(encoding)",
            f"a NUL byte at byte column {NUL_COLUMN}",
        ),
        BadFile(
            "gzip",
            "records.jsonl",
            "records",
            gzip.compress(record_line()),
            1,
            "(file)",
            "this is gzip-compressed data",
        ),
        BadFile(
            "gzip_people",
            "people.csv",
            "people",
            gzip.compress(GOOD_PEOPLE),
            1,
            "(file)",
            "this is gzip-compressed data",
        ),
        BadFile(
            "zip",
            "people.csv",
            "people",
            zipped("people.csv", GOOD_PEOPLE),
            1,
            "(file)",
            "this is a zip archive",
        ),
        BadFile(
            "utf16",
            "people.csv",
            "people",
            GOOD_PEOPLE.decode().encode("utf-16"),
            1,
            "(file)",
            "this is UTF-16 text",
        ),
        BadFile(
            "deep_metadata",
            "records.jsonl",
            "records",
            bad_record(json.dumps(record(metadata={})).replace("{}", deep(5000))),
            2,
            "metadata",
            "nested deeper than 16 levels",
        ),
        BadFile(
            "huge_line",
            "records.jsonl",
            "records",
            record_line(body="x " * (5 * MB)),
            2,
            "(line)",
            f"longer than {MB} bytes",
        ),
        BadFile(
            "huge_body",
            "records.jsonl",
            "records",
            record_line(body="word " * 40_000),
            2,
            "body",
            "longer than 100000 characters",
        ),
        BadFile(
            "nul_escape",
            "records.jsonl",
            "records",
            record_line(body="before\u0000after"),
            2,
            "body",
            "contains a NUL character",
        ),
        BadFile(
            "lone_surrogate",
            "records.jsonl",
            "records",
            bad_record(json.dumps(record(title="X")).replace('"X"', '"\\ud800"')),
            2,
            "title",
            "contains an unpaired surrogate",
        ),
        BadFile(
            "nan",
            "records.jsonl",
            "records",
            bad_record(json.dumps(record(metadata={"score": float("nan")}))),
            2,
            "(json)",
            "malformed JSON: NaN is not a JSON number",
        ),
        BadFile(
            "infinite_number",
            "records.jsonl",
            "records",
            bad_record(json.dumps(record(metadata={"n": 1})).replace('"n": 1', '"n": 1e400')),
            2,
            "(json)",
            "malformed JSON: 1e400 is out of range for a number",
        ),
        BadFile(
            "year_9999",
            "records.jsonl",
            "records",
            record_line(occurred_at="9999-12-31T23:00:00-05:00"),
            2,
            "occurred_at",
            "'9999-12-31T23:00:00-05:00' is outside the years 1900 to 2100",
        ),
        BadFile(
            "long_department",
            "people.csv",
            "people",
            GOOD_PEOPLE.replace(b",Payments,Lisbon,", b"," + b"D" * 200 + b",Lisbon,"),
            2,
            "department",
            "longer than 128 characters",
        ),
    ]


BAD_FILES = bad_files()
BY_CASE = {bad.case: bad for bad in BAD_FILES}


def write(folder: Path, bad: BadFile) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / bad.name
    path.write_bytes(bad.content)
    return path


# --- the shared check, straight -----------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda bad: bad.case)
def test_each_hostile_file_is_refused_whole_naming_line_field_and_reason(
    bad: BadFile, ingestor: Ingestor, engine: Engine, tmp_path: Path
) -> None:
    ingest_path(ingestor, FIXTURES / "org" / "people.csv")
    path = write(tmp_path / bad.case, bad)

    with pytest.raises(IngestRefused) as refused:
        ingestor.ingest(path, bad.fmt, skip_invalid=False)

    first = refused.value.errors[0]
    assert (first.line, first.field) == (bad.line, bad.field), refused.value.errors
    assert first.reason.startswith(bad.reason), first.reason
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Record)).scalar_one() == 0


def test_a_folder_with_one_binary_file_is_refused_before_anything_is_written(
    ingestor: Ingestor, engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "people.csv").write_bytes(GOOD_PEOPLE)
    (folder / "records.jsonl").write_bytes(gzip.compress(GOOD_RECORD))

    with pytest.raises(IngestRefused) as refused:
        ingest_path(ingestor, folder)

    assert "gzip" in refused.value.errors[0].reason
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Person)).scalar_one() == 0


def test_a_binary_file_whose_name_tells_no_format_is_named_for_what_it_is(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(gzip.compress(GOOD_PEOPLE))

    with pytest.raises(IngestRefused) as refused:
        ingest_path(ingestor, path)

    assert str(refused.value.errors[0]) == (
        "line 1, (file): this is gzip-compressed data, not a UTF-8 text export"
    )


def test_with_skip_invalid_a_deep_or_oversized_record_is_skipped_and_the_rest_lands(
    ingestor: Ingestor, engine: Engine, tmp_path: Path
) -> None:
    ingest_path(ingestor, FIXTURES / "org" / "people.csv")
    path = write(tmp_path, BY_CASE["deep_metadata"])

    summary = ingestor.ingest(path, "records", skip_invalid=True)

    assert summary.inserted == 1
    assert [(e.line, e.field) for e in summary.refused] == [(2, "metadata")]


# --- the command line ---------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("FAIRDRAFT_DATABASE_URL", database_url)
    monkeypatch.setenv("FAIRDRAFT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FAIRDRAFT_EMBEDDING_MODEL", "hashing-384")
    monkeypatch.setenv("FAIRDRAFT_PROGRESS", "false")
    get_settings.cache_clear()


def problem_rows(output: str) -> list[list[str]]:
    """The refusal table's rows as [line, field, reason start] (rich draws a box)."""
    rows = []
    for text in output.splitlines():
        cells = [cell.strip() for cell in text.strip("│ ").split("│")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append(cells)
    return rows


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize("bad", BAD_FILES, ids=lambda bad: bad.case)
def test_the_cli_refuses_each_hostile_file_in_one_line_per_problem_with_exit_1(
    bad: BadFile, tmp_path: Path
) -> None:
    runner.invoke(app, ["ingest", str(FIXTURES / "org" / "people.csv")])
    path = write(tmp_path / bad.case, bad)

    result = runner.invoke(app, ["ingest", str(path), "--format", bad.fmt])

    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    assert result.exit_code == 1, result.output
    assert "refused" in result.output and "nothing was written" in result.output
    line, field, reason = problem_rows(result.output)[0]
    assert (int(line), field) == (bad.line, bad.field), result.output
    assert bad.reason.startswith(reason[:40]) or reason.startswith(bad.reason[:40])


@pytest.mark.usefixtures("cli_env")
def test_a_value_that_looks_like_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(record_line(subject="[/red]"))

    result = runner.invoke(app, ["ingest", str(path)])

    assert isinstance(result.exception, SystemExit), result.exception
    assert "unknown employee '[/red]'" in result.output


def test_the_command_in_a_process_of_its_own_prints_no_traceback_for_a_gzip_file(
    tmp_path: Path, database_url: str
) -> None:
    path = write(tmp_path, BY_CASE["gzip"])
    env = {
        **os.environ,
        "FAIRDRAFT_DATABASE_URL": database_url,
        "FAIRDRAFT_HOME": str(tmp_path / "home"),
        "FAIRDRAFT_EMBEDDING_MODEL": "hashing-384",
    }

    done = subprocess.run(
        [sys.executable, "-c", "from service.cli import app; app()", "ingest", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
        cwd=Path(__file__).parents[1],
    )

    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert "(file)" in done.stderr and "gzip-compressed data" in done.stderr


# --- the upload ---------------------------------------------------------------------------


def upload(
    client: TestClient,
    org: ApiOrg,
    name: str,
    content: bytes,
    fmt: str,
    *,
    skip_invalid: bool = False,
) -> Any:
    return client.post(
        INGEST,
        files={"file": (name, content, "application/octet-stream")},
        data={"format": fmt, "skip_invalid": str(skip_invalid).lower()},
        headers=org.auth("hal"),
    )


def uploaded(settings: Settings) -> list[Path]:
    folder = uploads_dir(settings)
    return sorted(folder.iterdir()) if folder.exists() else []


def test_an_upload_of_each_hostile_file_is_answered_422_naming_line_and_field_and_removed(
    client: TestClient, api_org: ApiOrg, settings: Settings, engine: Engine
) -> None:
    for bad in BAD_FILES:  # one org for all cases: building it is the slow part
        response = upload(client, api_org, bad.name, bad.content, bad.fmt)

        assert response.status_code == 422, (bad.case, response.text)
        body = response.json()
        [error] = body["errors"]
        assert error["field"] == "file"
        assert f"line {bad.line}, {bad.field}: {bad.reason}" in error["reason"], bad.case
        assert (body["problems"][0]["line"], body["problems"][0]["field"]) == (bad.line, bad.field)
        assert str(settings.data_dir) not in response.text
        assert uploaded(settings) == [], f"{bad.case}: a refused upload is removed at once"
    assert not Worker(engine, settings).run_once(), "no job was queued"


def test_an_upload_waits_0600_in_a_0700_folder_and_is_removed_once_ingested(
    client: TestClient, api_org: ApiOrg, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    people = (tmp_path / "api-org" / "people.csv").read_bytes()

    accepted = upload(client, api_org, "../../hr/people export.csv", people, "people")

    assert accepted.status_code == 202, accepted.text
    [waiting] = uploaded(settings)
    assert stat.S_IMODE(waiting.stat().st_mode) == 0o600
    assert stat.S_IMODE(uploads_dir(settings).stat().st_mode) == 0o700
    assert Worker(engine, settings).run_once()
    job = client.get(accepted.headers["Location"], headers=api_org.auth("hal")).json()
    assert job["status"] == "done", job
    [summary] = job["result"]["files"]
    assert summary["file"] == "people export.csv"
    assert summary["unchanged"] == 8
    assert str(settings.data_dir) not in json.dumps(job)
    assert uploaded(settings) == []


def test_an_upload_refused_by_its_job_names_line_and_field_and_is_removed(
    client: TestClient, api_org: ApiOrg, settings: Settings, engine: Engine
) -> None:
    content = (FIXTURES / "bad" / "records_unknown_employee.jsonl").read_bytes()

    accepted = upload(client, api_org, "records.jsonl", content, "records")

    assert accepted.status_code == 202, accepted.text
    assert Worker(engine, settings).run_once()
    job = client.get(accepted.headers["Location"], headers=api_org.auth("hal")).json()
    assert job["status"] == "failed"
    assert job["error"].startswith("records.jsonl: refused, 1 invalid row")
    assert "line 2, subject: unknown employee 'E999'" in job["error"]
    assert str(settings.data_dir) not in json.dumps(job)
    assert uploaded(settings) == [], "a refused upload is removed too"


def test_an_upload_with_skip_invalid_lands_the_good_rows_and_lists_the_deep_one(
    client: TestClient, api_org: ApiOrg, settings: Settings, engine: Engine
) -> None:
    bad = BY_CASE["deep_metadata"]

    accepted = upload(client, api_org, bad.name, bad.content, bad.fmt, skip_invalid=True)

    assert accepted.status_code == 202, accepted.text
    assert Worker(engine, settings).run_once()
    job = client.get(accepted.headers["Location"], headers=api_org.auth("hal")).json()
    assert job["status"] == "done", job
    [summary] = job["result"]["files"]
    assert summary["refused_rows"] == [
        {"line": 2, "field": "metadata", "reason": "nested deeper than 16 levels"}
    ]
    assert uploaded(settings) == []


# --- two ingests of one file at once ------------------------------------------------------


class MeetingEmbedder:
    """Hands out the embedder only once both ingests ask for it: both have then read what
    is stored and decided to insert everything, the race that broke the second one."""

    def __init__(self, inner: Embedder, parties: int) -> None:
        self.inner = inner
        self.barrier = threading.Barrier(parties, timeout=60)

    def __call__(self) -> Embedder:
        self.barrier.wait()
        return self.inner


def run_together(jobs: list[Callable[[], Any]]) -> Iterator[Any]:
    """Run the callables in threads at once; their results, or the exception each raised."""
    results: list[Any] = [None] * len(jobs)

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return iter(results)


def test_two_ingests_of_one_records_file_at_once_both_finish_and_write_it_once(
    engine: Engine, settings: Settings, ingestor: Ingestor, embedder: CountingEmbedder
) -> None:
    ingest_path(ingestor, FIXTURES / "org" / "people.csv")
    meeting = MeetingEmbedder(embedder, 2)
    twins = [
        Ingestor(
            engine, settings, actor=f"twin{i}", progress=NoProgress(), embedder_factory=meeting
        )
        for i in range(2)
    ]
    records = FIXTURES / "org" / "records.jsonl"

    first, second = run_together(
        [partial(twin.ingest, records, "records", skip_invalid=False) for twin in twins]
    )

    assert not isinstance(first, Exception), first
    assert not isinstance(second, Exception), second
    assert sorted((s.inserted, s.unchanged) for s in (first, second)) == [(0, 6), (6, 0)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Record)).scalar_one() == 6
        chunks = conn.execute(select(func.count()).select_from(Chunk)).scalar_one()
    assert chunks == max(first.chunks_written, second.chunks_written) > 0


def test_an_upload_sweeps_old_uploads_no_waiting_job_will_read(
    client: TestClient, api_org: ApiOrg, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """What a crash leaves (a worker dead on an upload's only attempt) goes with the next
    upload, once an hour old; an upload whose job still waits stays."""
    people = (tmp_path / "api-org" / "people.csv").read_bytes()
    waiting = upload(client, api_org, "people.csv", people, "people")
    assert waiting.status_code == 202, waiting.text
    [kept] = uploaded(settings)
    left = uploads_dir(settings) / "0123456789abcdef-people.csv"
    left.write_bytes(people)
    two_hours_ago = time.time() - 7200
    for path in (kept, left):
        os.utime(path, (two_hours_ago, two_hours_ago))

    again = upload(client, api_org, "people.csv", people, "people")

    assert again.status_code == 202, again.text
    assert left not in uploaded(settings), "an old upload no job waits for is removed"
    assert kept in uploaded(settings), "an upload whose job waits is kept, however old"
    assert len(uploaded(settings)) == 2


def test_random_bytes_are_listed_up_to_twenty_problems_then_named_not_text(
    ingestor: Ingestor, tmp_path: Path
) -> None:
    path = tmp_path / "records.jsonl"
    path.write_bytes(random.Random(7).randbytes(200_000))

    with pytest.raises(IngestRefused) as refused:
        ingestor.ingest(path, "records", skip_invalid=False)

    problems = refused.value.errors
    assert len(problems) == 21
    assert all(p.field == "(encoding)" for p in problems[:20])
    assert problems[-1].field == "(file)"
    assert "does not look like a UTF-8 text export" in problems[-1].reason
