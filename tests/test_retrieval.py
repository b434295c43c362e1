"""Evidence retrieval: scoped to the person and period, stable, within budget, diversified."""

import json
import re
from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import Engine, select

from domain.periods import PeriodError, parse_period
from retrieval.langchain_retriever import EvidenceRetriever
from retrieval.outcomes import PATTERNS_FILE, outcome_count
from retrieval.queries import UnknownDraftKind, draft_kinds
from retrieval.ranking import diversify, fit_budget, rankings, reciprocal_rank_fusion
from retrieval.schema import Record
from retrieval.search import recurrence_weights, retrieve_evidence
from service.db.models import Person
from service.ingest.run import Ingestor, ingest_path
from tests.conftest import FIXTURES, CountingEmbedder


@pytest.fixture
def people(ingestor: Ingestor, engine: Engine) -> dict[str, int]:
    ingest_path(ingestor, FIXTURES / "org")
    with engine.connect() as conn:
        return {row.employee_id: row.id for row in conn.execute(select(Person))}


def subjects_of(engine: Engine, record_ids: list[int]) -> set[int]:
    with engine.connect() as conn:
        query = select(Record.subject_id).where(Record.id.in_(record_ids))
        return set(conn.execute(query).scalars())


@pytest.mark.parametrize("kind", draft_kinds())
def test_the_pack_holds_only_the_persons_records_inside_the_period(
    kind: str, engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    february = parse_period("2026-02")
    with engine.connect() as conn:
        pack = retrieve_evidence(
            conn, embedder, subject_id=people["E003"], period=february, draft_kind=kind
        )

    assert {item.external_id for item in pack.items} == {"PAY-101", "1on1-E003-2026-02-17"}
    assert subjects_of(engine, [item.record_id for item in pack.items]) == {people["E003"]}
    assert all(february.starts_at <= item.occurred_at < february.ends_before for item in pack.items)


def test_without_a_period_the_whole_history_is_searched(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    with engine.connect() as conn:
        pack = retrieve_evidence(
            conn, embedder, subject_id=people["E003"], period=None, draft_kind="manager_feedback"
        )

    assert {item.external_id for item in pack.items} == {
        "PAY-101",
        "1on1-E003-2026-02-17",
        "fb-7781",
    }


def test_ids_are_stable_and_numbered_in_pack_order(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    def pack_ids() -> list[tuple[str, int]]:
        with engine.connect() as conn:
            pack = retrieve_evidence(
                conn,
                embedder,
                subject_id=people["E003"],
                period=parse_period("2026"),
                draft_kind="self_reflection",
            )
        return [(item.id, item.chunk_id) for item in pack.items]

    first = pack_ids()

    assert first == pack_ids()
    assert [item_id for item_id, _ in first] == [f"E{n}" for n in range(1, len(first) + 1)]


def test_the_pack_fits_the_token_budget(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    with engine.connect() as conn:
        full = retrieve_evidence(
            conn, embedder, subject_id=people["E003"], period=None, draft_kind="self_reflection"
        )
        budget = full.tokens - 1
        small = retrieve_evidence(
            conn,
            embedder,
            subject_id=people["E003"],
            period=None,
            draft_kind="self_reflection",
            token_budget=budget,
        )

    assert 0 < small.tokens <= budget
    assert len(small.items) < len(full.items)


def test_an_empty_history_gives_an_empty_pack_with_a_message(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    with engine.connect() as conn:
        pack = retrieve_evidence(
            conn,
            embedder,
            subject_id=people["E001"],
            period=parse_period("2026-H1"),
            draft_kind="promotion_packet",
        )

    assert pack.items == []
    assert pack.message == "no evidence recorded for this person in 2026-H1"


def test_an_unknown_draft_kind_is_named_in_the_error(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    with engine.connect() as conn, pytest.raises(UnknownDraftKind, match="self_reflection"):
        retrieve_evidence(conn, embedder, subject_id=1, period=None, draft_kind="haiku")


def test_rank_fusion_rewards_agreement_between_lists() -> None:
    scores = reciprocal_rank_fusion([[0, 1, 2], [1, 0, 2], [1]], size=3)

    assert list(np.argsort(-scores)) == [1, 0, 2]


def test_diversification_spreads_the_pick_over_months_and_drops_near_duplicates() -> None:
    same = np.array([1.0, 0.0, 0.0])
    other = np.array([0.0, 1.0, 0.0])
    embeddings = np.array([same, same, same * 0.999 + other * 0.001, other])
    embeddings = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    relevance = np.array([1.0, 0.99, 0.98, 0.5])
    months = ["2026-06", "2026-06", "2026-06", "2026-01"]

    order = diversify(relevance, embeddings, [months], [1, 2, 3, 4], limit=10)

    assert order == [0, 3], "the duplicates of item 0 are dropped and January is reached"


def test_diversification_prefers_a_new_record_and_a_new_topic_over_more_of_the_same() -> None:
    embeddings = np.eye(4)
    relevance = np.array([1.0, 0.95, 0.9, 0.85])
    topics = ["ledger", "ledger", "ledger", "hiring"]
    records = [7, 7, 8, 9]

    order = diversify(relevance, embeddings, [topics], records, limit=2)

    assert order == [0, 3], "another chunk of record 7, or more ledger, waits for hiring"


def test_the_lead_gives_each_kind_group_its_slots_before_the_rest_compete() -> None:
    relevance = np.array([1.0, 0.99, 0.98, 0.97, 0.5, 0.4])
    groups = [0, 0, 0, 0, 1, -1]  # four work records, one goal, one 1:1 note

    order = diversify(
        relevance, np.eye(6), [], [1, 2, 3, 4, 5, 6], limit=6, lead_groups=groups, lead_slots=[2, 1]
    )

    assert order[:3] == [0, 1, 4], "two work records, then the goal, before a third work record"
    assert sorted(order[3:]) == [2, 3, 5]


def test_unfillable_lead_slots_go_to_the_best_remaining_evidence() -> None:
    order = diversify(
        np.array([1.0, 0.9, 0.8]),
        np.eye(3),
        [],
        [1, 2, 3],
        limit=3,
        lead_groups=[0, -1, -1],
        lead_slots=[1, 2],
    )
    assert order == [0, 1, 2]


def test_feedback_on_a_recurring_theme_weighs_more_than_a_one_off() -> None:
    weights = recurrence_weights(["ownership", "ownership", "communication", None], [1, 2, 3, 4])

    assert weights[0] == weights[1] > weights[2] == weights[3] == 1.0


def test_a_topic_of_none_earns_no_coverage_bonus() -> None:
    order = diversify(np.array([1.0, 0.99]), np.eye(2), [["ledger", None]], [1, 2], limit=1)
    assert order == [0]


def test_measured_outcomes_are_counted_and_activity_is_not() -> None:
    assert outcome_count("Failed retries dropped from 4.1% to 1.3% in two weeks.") >= 2
    assert outcome_count("Saved $40k a year on storage.") >= 1
    assert outcome_count("Worked on the migration plan and met weekly.") == 0


def test_the_hybrid_ranking_adds_a_vote_for_stated_outcomes_only() -> None:
    similarity = np.array([[0.9], [0.1], [0.5]])
    text = np.array([0.0, 0.2, 0.0])
    outcomes = np.array([0.0, 3.0, 1.0])

    assert rankings(similarity, text, outcomes, "hybrid") == [[0, 2, 1], [1], [1, 2]]
    assert rankings(similarity, text, outcomes, "vector") == [[0, 2, 1]]
    assert rankings(similarity, text, outcomes, "text") == [[1]]


def test_the_budget_skips_what_does_not_fit_but_keeps_smaller_items() -> None:
    assert fit_budget([0, 1, 2, 3], [50, 80, 30, 10], budget=100) == [0, 2, 3]


def test_a_period_bound_is_a_half_open_range_in_utc() -> None:
    period = parse_period("2026-H1")

    assert period.starts_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert period.ends_before == datetime(2026, 7, 1, tzinfo=UTC)


@pytest.mark.parametrize("name", ["0000", "0000-H1", "2026-02-30..2026-03-01", "2026-Q5", ""])
def test_an_impossible_period_is_a_period_error_not_a_crash(name: str) -> None:
    with pytest.raises(PeriodError, match="is not a period"):
        parse_period(name)


def test_the_langchain_retriever_returns_the_pack_as_documents_in_order(
    engine: Engine, embedder: CountingEmbedder, people: dict[str, int]
) -> None:
    retriever = EvidenceRetriever(
        engine=engine,
        embedder=embedder,
        subject_id=people["E003"],
        period=parse_period("2026"),
        draft_kind="manager_feedback",
    )

    documents = retriever.invoke("settlement alerts")
    with engine.connect() as conn:
        pack = retrieve_evidence(
            conn,
            embedder,
            subject_id=people["E003"],
            period=parse_period("2026"),
            draft_kind="manager_feedback",
            extra_queries=["settlement alerts"],
        )

    assert [(d.id, d.page_content) for d in documents] == [(i.id, i.text) for i in pack.items]
    assert {d.metadata["external_id"] for d in documents} == {
        "PAY-101",
        "1on1-E003-2026-02-17",
        "fb-7781",
    }
    assert documents[0].metadata["occurred_at"].startswith("2026-")


def test_outcome_patterns_are_written_in_lower_case_as_the_matcher_expects() -> None:
    data = json.loads(PATTERNS_FILE.read_text())
    literals = [re.sub(r"\\[A-Za-z]", "", pattern) for pattern in data["patterns"]]

    assert not [p for p in literals if p != p.lower()]
    assert outcome_count("Failed retries DROPPED from 4.1% to 1.3%.") >= 2
