"""`fairdraft demo` on a small org: counts and timings printed, and stable when run again."""

import json
from io import StringIO

import pytest
from rich.console import Console
from sqlalchemy import select

from evals.demo import run_demo
from retrieval.schema import Chunk
from service.db.engine import open_engine
from service.settings import DEFAULT_EMBEDDING_MODEL, Settings


def run(settings: Settings) -> tuple[dict[str, float], str]:
    out = StringIO()
    figures = run_demo(settings, Console(file=out, width=120), people=40, seed=3)
    return figures, out.getvalue()


def test_the_demo_stores_the_org_and_prints_counts_timings_and_a_json_line(
    settings: Settings,
) -> None:
    figures, output = run(settings)

    assert figures["records_ingested"] > 1500
    assert figures["chunks_embedded"] >= figures["records_ingested"]
    for step in ("start database", "migrate", "generate org", "ingest records"):
        assert step in output
    assert "demographic values (restricted)" in output
    assert json.loads(output.strip().splitlines()[-1]) == figures


def test_the_demo_ends_with_three_offline_drafts_whose_every_sentence_cites_evidence(
    settings: Settings,
) -> None:
    figures, output = run(settings)

    for kind in ("self_reflection", "manager_feedback", "promotion_packet"):
        assert f"{kind} for " in output
    assert "Offline draft" in output and "supported sentences" in output
    assert figures["drafts"] == 3
    assert figures["draft_supported_share_min"] == 1.0


def test_running_the_demo_again_ingests_nothing_new(settings: Settings) -> None:
    run(settings)

    figures, _output = run(settings)

    assert figures["chunks_embedded"] == 0
    assert figures["records_ingested"] > 1500


@pytest.mark.slow
def test_the_demo_embeds_with_the_packaged_model_by_default(settings: Settings) -> None:
    real = settings.model_copy(update={"embedding_model": DEFAULT_EMBEDDING_MODEL})
    out = StringIO()

    figures = run_demo(real, Console(file=out, width=120), people=30, seed=1)

    assert figures["chunks_embedded"] >= figures["records_ingested"] > 1000
    assert figures["embed_s"] > 0
    with open_engine(real) as engine, engine.connect() as conn:
        models = conn.execute(select(Chunk.embedding_model).distinct()).scalars().all()
    assert models == [DEFAULT_EMBEDDING_MODEL]
