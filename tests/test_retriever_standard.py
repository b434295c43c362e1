"""`EvidenceRetriever` against langchain-tests' standard retriever suite, plus its two limits.

The suite (`RetrieversIntegrationTests`) builds the retriever from
`retriever_constructor_params` and asks for `k` documents in the constructor and in
`invoke`; here it runs on the embedded Postgres with the hand-written org plus three more
records for Cy, so that Cy has six pieces of evidence and `k` really cuts.
"""

import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests
from sqlalchemy import Engine, select

from domain.periods import parse_period
from retrieval.langchain_retriever import EvidenceRetriever
from retrieval.search import retrieve_evidence
from service.db.models import Person
from service.ingest.run import Ingestor, ingest_path
from tests.conftest import CountingEmbedder

# The suite's one async test (`test_ainvoke_returns_documents`) runs on anyio's plugin;
# anyio leaves the synchronous tests alone.
pytestmark = pytest.mark.anyio

QUERY = "settlement alerts"
CY_EXTRA_RECORDS = [
    {
        "source": "github",
        "external_id": "pr-4410",
        "kind": "work_record",
        "subject": "E003",
        "occurred_at": "2026-01-20T11:00:00+00:00",
        "title": "Idempotency keys for payouts",
        "body": "Added idempotency keys to the payout API; duplicate payouts fell to zero.",
    },
    {
        "source": "kudos",
        "external_id": "kudos-88",
        "kind": "recognition",
        "subject": "E003",
        "author": "E001",
        "occurred_at": "2026-04-02T08:00:00+00:00",
        "body": "Thanks to Cy for calming the settlement incident and writing it up the same day.",
    },
    {
        "source": "okr",
        "external_id": "goal-E003-2026",
        "kind": "goal",
        "subject": "E003",
        "occurred_at": "2026-01-05T09:00:00+00:00",
        "body": "Own the settlement alerting end to end and cut false pages by half.",
    },
]
CY_EVIDENCE = 6  # the fixture org's three pieces plus the three above


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def cy_retriever_params(
    org_dir: Path, ingestor: Ingestor, engine: Engine, embedder: CountingEmbedder
) -> dict[str, Any]:
    """Constructor arguments for Cy's 2026 manager-feedback evidence, after ingesting it."""
    with (org_dir / "records.jsonl").open("a", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in CY_EXTRA_RECORDS)
    ingest_path(ingestor, org_dir)
    with engine.connect() as conn:
        cy = conn.execute(select(Person.id).where(Person.employee_id == "E003")).scalar_one()
    return {
        "engine": engine,
        "embedder": embedder,
        "subject_id": cy,
        "period": parse_period("2026"),
        "draft_kind": "manager_feedback",
    }


class TestEvidenceRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's standard retriever tests, unchanged."""

    params: dict[str, Any]

    @pytest.fixture(autouse=True)
    def _cy_evidence(self, cy_retriever_params: dict[str, Any]) -> None:
        # Autouse fixtures run before the suite's `retriever` fixture reads the params.
        self.params = cy_retriever_params

    @property
    def retriever_constructor(self) -> type[BaseRetriever]:
        return EvidenceRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return self.params

    @property
    def retriever_query_example(self) -> str:
        return QUERY


def test_without_k_the_retriever_returns_the_whole_pack(
    cy_retriever_params: dict[str, Any],
) -> None:
    documents = EvidenceRetriever(**cy_retriever_params).invoke(QUERY)

    assert len(documents) == CY_EVIDENCE


def test_k_keeps_the_first_documents_of_the_pack_in_order(
    cy_retriever_params: dict[str, Any],
) -> None:
    everything = EvidenceRetriever(**cy_retriever_params).invoke(QUERY)

    first_two = EvidenceRetriever(**cy_retriever_params, k=2).invoke(QUERY)

    assert [d.id for d in first_two] == [d.id for d in everything[:2]]


def test_k_in_invoke_overrides_the_constructors_k(cy_retriever_params: dict[str, Any]) -> None:
    retriever = EvidenceRetriever(**cy_retriever_params, k=1)

    assert len(retriever.invoke(QUERY, k=4)) == 4
    assert len(retriever.invoke(QUERY)) == 1


async def test_ainvoke_takes_k_as_invoke_does(cy_retriever_params: dict[str, Any]) -> None:
    documents = await EvidenceRetriever(**cy_retriever_params).ainvoke(QUERY, k=2)

    assert len(documents) == 2


def test_the_token_budget_wins_when_it_binds_before_k(
    engine: Engine, embedder: CountingEmbedder, cy_retriever_params: dict[str, Any]
) -> None:
    with engine.connect() as conn:
        pack = retrieve_evidence(
            conn,
            embedder,
            subject_id=cy_retriever_params["subject_id"],
            period=cy_retriever_params["period"],
            draft_kind=cy_retriever_params["draft_kind"],
            extra_queries=[QUERY],
        )
    two_items = sum(item.token_count for item in pack.items[:2])

    retriever = EvidenceRetriever(**cy_retriever_params, k=5, token_budget=two_items)

    assert [d.id for d in retriever.invoke(QUERY)] == [item.id for item in pack.items[:2]]


def test_k_below_one_is_refused_by_name_in_the_constructor_and_in_invoke(
    cy_retriever_params: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"(?s)\bk\b.*greater than or equal to 1"):
        EvidenceRetriever(**cy_retriever_params, k=0)
    with pytest.raises(ValueError, match=r"^k: must be a whole number"):
        EvidenceRetriever(**cy_retriever_params).invoke(QUERY, k=0)
