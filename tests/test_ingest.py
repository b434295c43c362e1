"""Ingest of the three formats against a real Postgres with pgvector."""

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from service.db.models import AuditEvent, Chunk, Demographic, Person, Rating, Record, ReviewCycle
from service.ingest.errors import IngestRefused
from service.ingest.progress import NoProgress
from service.ingest.run import Ingestor, files_to_ingest, ingest_path
from tests.conftest import FIXTURES, CountingEmbedder

BAD = FIXTURES / "bad"
EXPECTED_ERRORS: dict[str, dict[str, Any]] = {
    name: value
    for name, value in json.loads((BAD / "expected.json").read_text()).items()
    if not name.startswith("_")
}


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a test could see change: every row of every table, as text."""
    tables = ["people", "restricted.demographics", "records", "chunks", "review_cycles"]
    tables += ["ratings", "audit_events"]
    with engine.connect() as conn:
        return {
            table: sorted(str(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}")))
            for table in tables
        }


def count(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model)).scalar_one())


def test_people_are_stored_with_managers_and_demographics_kept_apart(
    ingestor: Ingestor, engine: Engine, org_dir: Path
) -> None:
    summary = ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)

    assert (summary.inserted, summary.updated, summary.unchanged) == (4, 0, 0)
    with engine.connect() as conn:
        people = {p.employee_id: p for p in conn.execute(select(Person))}
        demographics = conn.execute(
            select(Demographic.attribute, Demographic.value).where(
                Demographic.person_id == people["E003"].id
            )
        ).all()
        person_columns = conn.execute(
            text("SELECT column_name FROM information_schema.columns WHERE table_name='people'")
        ).scalars()
        assert not {"gender", "ethnicity", "age_band"} & set(person_columns)
    assert people["E003"].manager_id == people["E002"].id
    assert people["E001"].manager_id is None
    assert people["E003"].email == "cy.diaz@example.com"
    assert sorted(demographics) == [
        ("age_band", "under_30"),
        ("ethnicity", "white"),
        ("gender", "nonbinary"),
    ]


def test_records_are_chunked_and_embedded_with_their_subject_kind_date_and_source(
    ingestor: Ingestor, engine: Engine, org_dir: Path, embedder: CountingEmbedder
) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    summary = ingestor.ingest(org_dir / "records.jsonl", "records", skip_invalid=False)

    assert (summary.inserted, summary.updated, summary.unchanged) == (6, 0, 0)
    with Session(engine) as session:
        rows = session.execute(
            select(Chunk, Record, Person.employee_id)
            .join(Record, Chunk.record_id == Record.id)
            .join(Person, Person.id == Chunk.subject_id)
        ).all()
    assert summary.chunks_written == len(rows) == len(embedder.texts) >= 6
    for chunk, record, _employee_id in rows:
        assert chunk.subject_id == record.subject_id
        assert (chunk.kind, chunk.source, chunk.occurred_at) == (
            record.kind,
            record.source,
            record.occurred_at,
        )
        assert chunk.embedding_model == "hashing-384" and chunk.embedding_dim == 384
        assert len(chunk.embedding) == 384
    by_key = {(r.source, r.external_id): (r, eid) for _, r, eid in rows}
    one_on_one, subject = by_key[("1on1", "1on1-E003-2026-02-17")]
    assert subject == "E003", "a subject given by email resolves to the same person"
    assert one_on_one.author_id is not None


def test_ratings_create_the_cycle_from_its_name_and_audit_each_rating(
    ingestor: Ingestor, engine: Engine, org_dir: Path
) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    summary = ingestor.ingest(org_dir / "ratings.csv", "ratings", skip_invalid=False)

    assert summary.inserted == 3
    with engine.connect() as conn:
        cycle = conn.execute(select(ReviewCycle)).one()
        ratings = conn.execute(select(Rating.rating, Rating.calibrated_rating)).all()
        events = conn.execute(
            select(AuditEvent.entity_id, AuditEvent.after).where(AuditEvent.entity == "rating")
        ).all()
    assert (cycle.name, str(cycle.starts_on), str(cycle.ends_on)) == (
        "2026-H1",
        "2026-01-01",
        "2026-06-30",
    )
    assert (cycle.scale_min, cycle.scale_max) == (1, 5)
    assert sorted(ratings, key=str) == sorted([(4, 4), (3, None), (4, 3)], key=str)
    assert ("2026-H1/E002/E001", {"rating": 4, "calibrated_rating": 3}) in events


def test_reingesting_the_same_files_changes_nothing_and_embeds_nothing(
    ingestor: Ingestor, engine: Engine, org_dir: Path, embedder: CountingEmbedder
) -> None:
    ingest_path(ingestor, org_dir)
    before = snapshot(engine)
    embedded_before = len(embedder.texts)

    summaries = ingest_path(ingestor, org_dir)

    assert [(s.inserted, s.updated) for s in summaries] == [(0, 0)] * 3
    assert [s.unchanged for s in summaries] == [4, 6, 3]
    assert len(embedder.texts) == embedded_before
    after = snapshot(engine)
    new_audit = set(after.pop("audit_events")) - set(before.pop("audit_events"))
    assert after == before
    assert len(new_audit) == 3, "only the three per-file ingest events are added"


def test_an_edited_record_is_updated_and_only_it_is_reembedded(
    ingestor: Ingestor, engine: Engine, org_dir: Path, embedder: CountingEmbedder
) -> None:
    ingest_path(ingestor, org_dir)
    lines = (org_dir / "records.jsonl").read_text().splitlines()
    edited = json.loads(lines[2])
    edited["body"] = "Cy rewrote the settlement alert thresholds and halved false pages."
    lines[2] = json.dumps(edited)
    (org_dir / "records.jsonl").write_text("\n".join(lines) + "\n")
    with engine.connect() as conn:
        other_chunks = set(
            conn.execute(
                select(Chunk.id).join(Record).where(Record.external_id != "fb-7781")
            ).scalars()
        )
    embedder.texts.clear()

    summary = ingestor.ingest(org_dir / "records.jsonl", "records", skip_invalid=False)

    assert (summary.inserted, summary.updated, summary.unchanged) == (0, 1, 5)
    assert embedder.texts == [edited["body"]]
    with engine.connect() as conn:
        chunk_texts = conn.execute(
            select(Chunk.text).join(Record).where(Record.external_id == "fb-7781")
        ).scalars()
        assert list(chunk_texts) == [edited["body"]]
        kept = set(
            conn.execute(
                select(Chunk.id).join(Record).where(Record.external_id != "fb-7781")
            ).scalars()
        )
    assert kept == other_chunks


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_a_file_with_a_bad_row_is_refused_whole_and_changes_nothing(
    name: str, ingestor: Ingestor, engine: Engine, org_dir: Path
) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    before = snapshot(engine)
    path = BAD / name
    expected = EXPECTED_ERRORS[name]

    with pytest.raises(IngestRefused) as refused:
        (fmt,) = [fmt for _, fmt in files_to_ingest(path)]
        ingestor.ingest(path, fmt, skip_invalid=False)

    assert any(
        error.line == expected["line"]
        and error.field == expected["field"]
        and expected["reason"] in error.reason
        for error in refused.value.errors
    ), refused.value.errors
    assert snapshot(engine) == before


def test_skip_invalid_lands_the_valid_rows_and_lists_the_invalid_ones(
    ingestor: Ingestor, engine: Engine, org_dir: Path, tmp_path: Path
) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    mixed = tmp_path / "records.jsonl"
    mixed.write_text(
        "".join(
            (BAD / name).read_text()
            for name in sorted(EXPECTED_ERRORS)
            if name.startswith("records_")
        )
    )

    summary = ingestor.ingest(mixed, "records", skip_invalid=True)

    assert summary.inserted == 5
    assert [(e.line, e.field) for e in summary.refused] == [
        (2, "occurred_at"),
        (4, "(json)"),
        (6, "subject"),
        (8, "subject"),
        (10, "kind"),
    ]
    with engine.connect() as conn:
        stored = set(conn.execute(select(Record.external_id)).scalars())
    assert stored == {"PAY-201", "PAY-301", "PAY-401", "PAY-501", "PAY-601"}


def test_skip_invalid_people_drops_the_people_an_invalid_row_would_have_managed(
    ingestor: Ingestor, engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "employee_id,name,email,manager_id,level,job_family,department,location,hire_date\n"
        "E1,Root,root@example.com,,L8,eng,Eng,Oslo,\n"
        "E2,Bad Email,not-an-email,E1,L5,eng,Eng,Oslo,\n"
        "E3,Orphan,orphan@example.com,E2,L3,eng,Eng,Oslo,\n"
    )

    summary = ingestor.ingest(path, "people", skip_invalid=True)

    assert summary.inserted == 1
    assert [(e.line, e.field) for e in summary.refused] == [(3, "email"), (4, "manager_id")]


def test_a_management_loop_is_refused(ingestor: Ingestor, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "employee_id,name,email,manager_id,level,job_family,department,location,hire_date\n"
        "E1,One,one@example.com,E2,L5,eng,Eng,Oslo,\n"
        "E2,Two,two@example.com,E1,L5,eng,Eng,Oslo,\n"
    )

    with pytest.raises(IngestRefused) as refused:
        ingestor.ingest(path, "people", skip_invalid=False)

    assert {(e.line, e.field) for e in refused.value.errors} == {
        (2, "manager_id"),
        (3, "manager_id"),
    }
    assert "loops back" in refused.value.errors[0].reason


def test_a_repeated_external_id_in_one_file_is_refused(
    ingestor: Ingestor, org_dir: Path, tmp_path: Path
) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    first = (org_dir / "records.jsonl").read_text().splitlines()[0]
    path = tmp_path / "records.jsonl"
    path.write_text(f"{first}\n{first}\n")

    with pytest.raises(IngestRefused) as refused:
        ingestor.ingest(path, "records", skip_invalid=False)

    (error,) = refused.value.errors
    assert (error.line, error.field) == (2, "external_id")
    assert "already appears on line 1" in error.reason


def test_a_folder_is_ingested_people_first_whatever_the_file_order(
    ingestor: Ingestor, engine: Engine, org_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    for name, target in [("records.jsonl", "a.jsonl"), ("ratings.csv", "b_ratings.csv")]:
        shutil.copy(org_dir / name, folder / target)
    shutil.copy(org_dir / "people.csv", folder / "z_people.csv")

    formats = [fmt for _, fmt in files_to_ingest(folder)]
    ingest_path(ingestor, folder)

    assert formats == ["people", "records", "ratings"]
    assert count(engine, Record) == 6 and count(engine, Rating) == 3


def test_a_given_format_ingests_a_file_whose_name_does_not_tell_it(
    ingestor: Ingestor, engine: Engine, org_dir: Path, tmp_path: Path
) -> None:
    upload = tmp_path / "export-from-hris.txt"
    shutil.copy(org_dir / "people.csv", upload)

    ingest_path(ingestor, upload, fmt="people")

    assert count(engine, Person) == 4


def test_reingesting_unchanged_records_never_loads_the_model(
    engine: Engine, settings: Any, org_dir: Path, embedder: CountingEmbedder
) -> None:
    loads: list[int] = []

    def factory() -> CountingEmbedder:
        loads.append(1)
        return embedder

    ingestor = Ingestor(
        engine, settings, actor="test", progress=NoProgress(), embedder_factory=factory
    )
    ingest_path(ingestor, org_dir)
    fresh = Ingestor(
        engine, settings, actor="test", progress=NoProgress(), embedder_factory=factory
    )

    ingest_path(fresh, org_dir)

    assert loads == [1]


def test_a_blank_body_is_refused(ingestor: Ingestor, org_dir: Path, tmp_path: Path) -> None:
    ingestor.ingest(org_dir / "people.csv", "people", skip_invalid=False)
    record = json.loads((org_dir / "records.jsonl").read_text().splitlines()[0])
    record["body"] = "   \n "
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(record) + "\n")

    with pytest.raises(IngestRefused) as refused:
        ingestor.ingest(path, "records", skip_invalid=False)

    assert [(e.line, e.field, e.reason) for e in refused.value.errors] == [
        (1, "body", "is required")
    ]
