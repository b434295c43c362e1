"""What ingest finds once instead of at every read: each record's evidence cues
(records.cues), from which the cycle report's evidence features come, equal to those
computed from the text (cues missing or of another revision are computed when read and
stored for the next report); and each chunk's measured outcomes (chunks.outcomes), from
which a search ranks as it did counting the text."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, update

from domain.periods import Period, parse_period
from evals.synthetic_org import generate_org
from retrieval.embedding import Embedder
from retrieval.outcomes import outcome_count
from retrieval.schema import Chunk
from retrieval.search import retrieve_evidence
from service.bias.evidence_features import (
    CUES_REVISION,
    RecordCues,
    evidence_features,
    features_from_cues,
    record_cues,
)
from service.bias.evidence_store import people_cues
from service.db.migrate import downgrade, upgrade
from service.db.models import Record
from service.ingest.run import Ingestor, ingest_path

PERIOD: Period = parse_period("2026-H1")


@pytest.fixture
def synthetic(ingestor: Ingestor, engine: Engine, tmp_path: Path) -> Engine:
    generate_org(tmp_path / "org", people=30, seed=5)
    ingest_path(ingestor, tmp_path / "org")
    return engine


def _features_from_text(engine: Engine) -> dict[int, dict[str, float]]:
    """Each person's features computed from their records' text, as before issue 15."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Record.subject_id, Record.kind, Record.title, Record.body, Record.meta.label("meta")
            ).where(Record.occurred_at >= PERIOD.starts_at, Record.occurred_at < PERIOD.ends_before)
        ).all()
    records: dict[int, list[dict[str, object]]] = {}
    for r in rows:
        records.setdefault(r.subject_id, []).append(
            {"kind": r.kind, "title": r.title, "body": r.body, "metadata": r.meta}
        )
    return {person: evidence_features(found) for person, found in records.items()}


def _features_from_store(engine: Engine) -> dict[int, dict[str, float]]:
    with engine.begin() as conn:
        people = set(conn.execute(select(Record.subject_id).distinct()).scalars())
        cued = people_cues(conn, people, PERIOD)
    return {person: features_from_cues(found) for person, found in cued.items()}


def test_ingest_stores_each_records_cues_as_found_in_its_text(synthetic: Engine) -> None:
    with synthetic.connect() as conn:
        rows = conn.execute(
            select(Record.kind, Record.title, Record.body, Record.meta.label("meta"), Record.cues)
        ).all()
    assert rows
    for r in rows:
        assert r.cues is not None and r.cues["revision"] == CUES_REVISION
        assert RecordCues.model_validate(r.cues) == record_cues(r.kind, r.title, r.body, r.meta)
    # the synthetic org's records carry every kind of cue somewhere
    stored = [RecordCues.model_validate(r.cues) for r in rows]
    assert any(c.setback for c in stored) and any(c.concern for c in stored)
    assert any(c.gains for c in stored) and any(c.goal_status is not None for c in stored)
    assert any(c.growth is not None for c in stored) and any(c.outcomes for c in stored)


def test_the_reports_features_from_stored_cues_equal_those_from_the_text(
    synthetic: Engine,
) -> None:
    from_text = _features_from_text(synthetic)
    assert len(from_text) >= 25
    assert _features_from_store(synthetic) == from_text


def test_missing_and_stale_cues_are_computed_on_read_and_stored(synthetic: Engine) -> None:
    expected = _features_from_text(synthetic)
    with synthetic.begin() as conn:
        ids = list(conn.execute(select(Record.id).order_by(Record.id)).scalars())
        conn.execute(update(Record).where(Record.id.in_(ids[::3])).values(cues=None))
        conn.execute(
            update(Record)
            .where(Record.id.in_(ids[1::3]))
            # cues of an older revision that said nothing: must not be believed
            .values(cues={"revision": CUES_REVISION - 1})
        )
    assert _features_from_store(synthetic) == expected
    with synthetic.connect() as conn:
        in_period = (Record.occurred_at >= PERIOD.starts_at) & (
            Record.occurred_at < PERIOD.ends_before
        )
        stale = conn.execute(
            select(func.count()).where(
                in_period,
                (Record.cues.is_(None)) | (Record.cues["revision"].astext != str(CUES_REVISION)),
            )
        ).scalar_one()
    assert stale == 0  # written back: the next report reads them


def test_reingesting_a_changed_record_updates_its_cues(
    ingestor: Ingestor, engine: Engine, org_dir: Path
) -> None:
    ingest_path(ingestor, org_dir)
    records = org_dir / "records.jsonl"
    text = records.read_text()
    with engine.connect() as conn:
        before = conn.execute(select(Record.cues).where(Record.kind == "work_record")).scalar_one()
    assert before is not None and not before.get("setback", False)
    assert text.startswith('{"source": "jira", "external_id": "PAY-101", "kind": "work_record"')
    records.write_text(text.replace('"body": "', '"body": "We had to revert a first attempt. ', 1))
    ingest_path(ingestor, org_dir)
    with engine.connect() as conn:
        after = conn.execute(select(Record.cues).where(Record.kind == "work_record")).scalar_one()
    assert after is not None and after["setback"] is True


def test_ingest_counts_each_chunks_measured_outcomes(synthetic: Engine) -> None:
    with synthetic.connect() as conn:
        rows = conn.execute(select(Chunk.text, Chunk.outcomes)).all()
    assert rows and all(r.outcomes == outcome_count(r.text) for r in rows)
    assert sum(r.outcomes > 0 for r in rows) > len(rows) // 10  # the org states results


def test_a_pack_is_the_same_from_stored_outcome_counts_as_from_counting_the_text(
    synthetic: Engine, embedder: Embedder
) -> None:
    with synthetic.connect() as conn:
        person = conn.execute(select(Record.subject_id).limit(1)).scalar_one()

    def pack() -> list[tuple[int, float]]:
        with synthetic.connect() as conn:
            found = retrieve_evidence(
                conn, embedder, subject_id=person, period=PERIOD, draft_kind="self_reflection"
            )
        return [(item.chunk_id, item.scores.fused) for item in found.items]

    stored = pack()
    with synthetic.begin() as conn:
        conn.execute(update(Chunk).values(outcomes=None))  # as written before 0011
    assert stored and pack() == stored


def test_the_migration_counts_the_outcomes_of_chunks_written_before_it(
    synthetic: Engine,
) -> None:
    with synthetic.connect() as conn:
        expected = dict(conn.execute(select(Chunk.id, Chunk.outcomes)).all())
    downgrade(synthetic, "0010")
    upgrade(synthetic)
    with synthetic.connect() as conn:
        assert dict(conn.execute(select(Chunk.id, Chunk.outcomes)).all()) == expected
