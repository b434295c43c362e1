"""Evidence for one person, one period and one draft kind.

Per-person retrieval is exact: every chunk of the person in the period is scored (a person
has a few hundred chunks a year, so a sequential scan of their rows through the
(subject_id, occurred_at) index is both exact and fast). No approximate index is involved,
so no evidence is lost to it.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Connection, func, select

from domain.periods import Period
from retrieval.embedding import Embedder, Vectors
from retrieval.evidence import EvidenceItem, EvidencePack, Scores
from retrieval.outcomes import outcome_scores
from retrieval.queries import KindQueries, queries_for
from retrieval.query_cache import QueryVectorCache
from retrieval.ranking import diversify, fit_budget, rankings, reciprocal_rank_fusion
from retrieval.schema import Chunk, Record

DEFAULT_TOKEN_BUDGET = 2000
DEFAULT_MAX_ITEMS = 40
RANKINGS = ("hybrid", "vector", "text")
RECURRENCE_BOOST = 0.15
OUTCOME_BOOST = 0.2


@dataclass(frozen=True)
class _Candidates:
    rows: list[Any]
    embeddings: Vectors
    text_score: np.ndarray[Any, np.dtype[np.float64]]


def retrieve_evidence(
    connection: Connection,
    embedder: Embedder,
    *,
    subject_id: int,
    period: Period | None,
    draft_kind: str,
    token_budget: int = DEFAULT_TOKEN_BUDGET,
    max_items: int = DEFAULT_MAX_ITEMS,
    ranking: str = "hybrid",
    extra_queries: Sequence[str] = (),
    exclude_records: Collection[int] = (),
) -> EvidencePack:
    """The evidence pack for a person: ranked, de-duplicated, diversified, within budget.

    `period=None` asks for the person's whole history. `ranking` is "hybrid" (vector and
    full-text fused) or, for evaluation, "vector" or "text" alone. `extra_queries` (say, a
    question from a chain) are matched by meaning beside the draft kind's own queries.
    `exclude_records` are records a writer chose to leave out: none of their chunks is a
    candidate.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"unknown ranking {ranking!r}; use one of {', '.join(RANKINGS)}")
    spec = queries_for(draft_kind)
    candidates = _candidates(
        connection, embedder.name, subject_id, period, spec, frozenset(exclude_records)
    )
    found = len(candidates.rows)
    if not candidates.rows:
        return EvidencePack(subject_id, period, draft_kind, ranking, token_budget, found)
    queries = QUERY_VECTORS.vectors(embedder, spec.queries)
    if extra_queries:
        queries = np.vstack([queries, embedder.embed(list(extra_queries))])
    similarity = candidates.embeddings @ queries.T
    rows = candidates.rows
    outcomes = outcome_scores([row.text for row in rows], [row.outcomes for row in rows])
    lists = rankings(similarity, candidates.text_score, outcomes, ranking)
    fused = (
        reciprocal_rank_fusion(lists, len(rows))
        * np.array([spec.weight(r.kind) for r in rows])
        * recurrence_weights([r.theme for r in rows], [r.record_id for r in rows])
        * (1.0 + OUTCOME_BOOST * np.minimum(outcomes, 3))
    )
    facets = [
        [row.occurred_at.strftime("%Y-%m") for row in rows],
        [row.kind for row in rows],
        [row.topic for row in rows],
    ]
    order = diversify(
        fused,
        candidates.embeddings,
        facets,
        [row.record_id for row in rows],
        limit=max_items,
        lead_groups=[spec.lead_group(row.kind) for row in rows],
        lead_slots=[group.slots for group in spec.lead],
    )
    kept = set(fit_budget(order, [row.token_count for row in candidates.rows], token_budget))
    chosen = [(pick, i) for pick, i in enumerate(order) if i in kept]
    items = [
        _item(number, candidates.rows[i], similarity[i], candidates.text_score[i], fused[i], pick)
        for number, (pick, i) in enumerate(chosen, start=1)
    ]
    # The pack is frozen: built whole here, never filled in after construction.
    return EvidencePack(subject_id, period, draft_kind, ranking, token_budget, found, items)


def _candidates(
    connection: Connection,
    model: str,
    subject_id: int,
    period: Period | None,
    spec: KindQueries,
    exclude_records: frozenset[int] = frozenset(),
) -> _Candidates:
    query_text = " | ".join(spec.terms)
    text_rank = func.ts_rank_cd(Chunk.tsv, func.to_tsquery("english", query_text))
    statement = (
        select(
            Chunk.id,
            Chunk.record_id,
            Chunk.text,
            Chunk.token_count,
            Chunk.outcomes,
            Chunk.kind,
            Chunk.occurred_at,
            # pgvector's binary form (vector_send: 4 header bytes, then big-endian float32s):
            # its Python text parser took 40% of a pack's time.
            func.vector_send(Chunk.embedding).label("embedding"),
            Record.source,
            Record.external_id,
            Record.title,
            Record.author,
            Record.instruction_signals,
            # What the evidence is about, where the source system says: the project, and a
            # feedback tool's competency or theme tag.
            Record.meta["project"].astext.label("topic"),
            Record.meta["theme"].astext.label("theme"),
            text_rank.label("text_score"),
        )
        .join(Record, Record.id == Chunk.record_id)
        .where(Chunk.subject_id == subject_id, Chunk.embedding_model == model)
        .order_by(Chunk.id)
    )
    if period is not None:
        statement = statement.where(
            Chunk.occurred_at >= period.starts_at, Chunk.occurred_at < period.ends_before
        )
    if exclude_records:
        statement = statement.where(Chunk.record_id.not_in(sorted(exclude_records)))
    rows = connection.execute(statement).all()
    rows = _drop_exact_duplicates(rows)
    vectors = [np.frombuffer(row.embedding, dtype=">f4", offset=4) for row in rows]
    dim = len(vectors[0]) if vectors else 1
    embeddings = np.array(vectors, dtype=np.float32).reshape(-1, dim)
    text_score = np.array([row.text_score for row in rows], dtype=np.float64)
    return _Candidates(rows, embeddings, text_score)


def recurrence_weights(
    themes: Sequence[str | None], records: Sequence[int]
) -> np.ndarray[Any, Any]:
    """Feedback on a theme several people raised weighs more than a one-off remark: each
    further record on the same theme adds RECURRENCE_BOOST, up to three."""
    per_theme: dict[str, set[int]] = {}
    for theme, record in zip(themes, records, strict=True):
        if theme:
            per_theme.setdefault(theme, set()).add(record)
    return np.array(
        [1.0 + RECURRENCE_BOOST * min(len(per_theme[t]) - 1, 3) if t else 1.0 for t in themes]
    )


def _drop_exact_duplicates(rows: Sequence[Any]) -> list[Any]:
    """The same text recorded twice (a note pasted into two systems) is one piece of evidence."""
    seen: set[str] = set()
    unique = []
    for row in rows:
        key = " ".join(row.text.split()).lower()
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique


# The kind's queries are fixed, so each model embeds them once per process; bounded and
# locked because retrieval runs in many threads (see retrieval/query_cache.py).
QUERY_VECTORS = QueryVectorCache()


def _item(
    number: int, row: Any, similarity: Any, text_score: float, fused: float, pick: int
) -> EvidenceItem:
    return EvidenceItem(
        id=f"E{number}",
        chunk_id=row.id,
        record_id=row.record_id,
        text=row.text,
        token_count=row.token_count,
        kind=row.kind,
        source=row.source,
        external_id=row.external_id,
        title=row.title,
        occurred_at=row.occurred_at,
        author=row.author,
        instruction_signals=(
            None if row.instruction_signals is None else tuple(row.instruction_signals)
        ),
        scores=Scores(
            vector=round(float(np.max(similarity)), 4),
            text=round(float(text_score), 4),
            fused=round(float(fused), 5),
            pick=pick + 1,
        ),
    )
