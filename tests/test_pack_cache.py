"""The API's evidence-pack cache: the same pack while the data is the same, a new one as
soon as the person's records change."""

import json
from pathlib import Path

from sqlalchemy import Engine, select

from domain.periods import parse_period
from retrieval.pack_cache import PackCache
from retrieval.search import retrieve_evidence
from service.db.models import Person
from service.ingest.run import Ingestor, ingest_path
from tests.conftest import CountingEmbedder

KIND = "self_reflection"


def test_a_pack_is_reused_until_the_persons_records_change(
    engine: Engine, ingestor: Ingestor, org_dir: Path, embedder: CountingEmbedder
) -> None:
    ingest_path(ingestor, org_dir)
    cache = PackCache()
    with engine.connect() as conn:
        cy = conn.execute(select(Person.id).where(Person.employee_id == "E003")).scalar_one()
        period = parse_period("2026-H1")
        first = cache.pack(conn, embedder, subject_id=cy, period=period, draft_kind=KIND)
        again = cache.pack(conn, embedder, subject_id=cy, period=period, draft_kind=KIND)
        assert again is first and (cache.hits, cache.misses) == (1, 1)
        built = retrieve_evidence(conn, embedder, subject_id=cy, period=period, draft_kind=KIND)
        assert first == built

    records = org_dir / "records.jsonl"
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    lines[0]["body"] += " Reconciliation time fell from 3 days to 4 hours."
    records.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    ingest_path(ingestor, records)

    with engine.connect() as conn:
        changed = cache.pack(conn, embedder, subject_id=cy, period=period, draft_kind=KIND)
    assert changed is not first and cache.misses == 2
    assert any("3 days to 4 hours" in item.text for item in changed.items)
