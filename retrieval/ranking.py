"""Ranking a person's candidate chunks: fusion, diversification, the token budget.

Pure functions over arrays, so the ranking can be tested and evaluated without a database.

- Fusion is reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each query's
  vector ranking and the full-text ranking vote 1/(k + rank). It needs no score calibration
  between cosine similarities and ts_rank values, which live on unrelated scales, and it is
  robust to one list being noisy. k = 60 as in the paper.
- Diversification is maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998) with
  two coverage bonuses: a chunk from a month or a record kind not yet in the pack gains a
  little, so one project or the last month does not crowd out the rest of the period.
  Near-duplicates (cosine >= 0.97 to a chosen chunk) are dropped.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

RRF_K = 60
MMR_LAMBDA = 0.7
COVERAGE_BONUS = 0.08
DUPLICATE_SIMILARITY = 0.97

Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]


def rankings(query_similarity: Floats, text_score: Floats, mode: str) -> list[list[int]]:
    """Candidate indices best first: one list per query (vector) and one full-text list.
    Ties break on the index, which callers make the chunk order, so results are stable."""
    lists: list[list[int]] = []
    if mode in ("hybrid", "vector"):
        for column in range(query_similarity.shape[1]):
            order = np.lexsort((np.arange(len(query_similarity)), -query_similarity[:, column]))
            lists.append([int(i) for i in order])
    if mode in ("hybrid", "text"):
        matched = [i for i in range(len(text_score)) if text_score[i] > 0]
        lists.append(sorted(matched, key=lambda i: (-float(text_score[i]), i)))
    if not lists:
        raise ValueError(f"unknown ranking mode {mode!r}; use hybrid, vector or text")
    return lists


def reciprocal_rank_fusion(lists: Sequence[Sequence[int]], size: int, k: int = RRF_K) -> Floats:
    scores = np.zeros(size, dtype=np.float64)
    for ranked in lists:
        for rank, index in enumerate(ranked, start=1):
            scores[index] += 1.0 / (k + rank)
    return scores


def diversify(
    relevance: Floats,
    embeddings: Floats,
    months: Sequence[str],
    kinds: Sequence[str],
    *,
    limit: int,
    mmr_lambda: float = MMR_LAMBDA,
    coverage_bonus: float = COVERAGE_BONUS,
) -> list[int]:
    """Indices in pick order: relevant, unlike what is already picked, spread over months
    and kinds. Candidates with no relevance at all are never picked."""
    top = float(relevance.max()) if len(relevance) else 0.0
    if top <= 0:
        return []
    relevance = relevance / top
    remaining = [i for i in range(len(relevance)) if relevance[i] > 0]
    max_similarity = np.full(len(relevance), -1.0)
    chosen: list[int] = []
    seen_months: set[str] = set()
    seen_kinds: set[str] = set()
    while remaining and len(chosen) < limit:
        novelty = np.array(
            [
                coverage_bonus * ((months[i] not in seen_months) + (kinds[i] not in seen_kinds))
                for i in remaining
            ]
        )
        index = np.array(remaining)
        scores = (
            mmr_lambda * relevance[index]
            - (1 - mmr_lambda) * np.maximum(0.0, max_similarity[index])
            + novelty
        )
        best = int(index[int(np.argmax(scores))])  # argmax keeps the first (lowest) index on ties
        chosen.append(best)
        seen_months.add(months[best])
        seen_kinds.add(kinds[best])
        max_similarity = np.maximum(max_similarity, embeddings @ embeddings[best])
        remaining = [i for i in remaining if i != best and max_similarity[i] < DUPLICATE_SIMILARITY]
    return chosen


def fit_budget(order: Sequence[int], tokens: Sequence[int], budget: int) -> list[int]:
    """Most valuable first, skipping what does not fit while smaller items still might."""
    kept: list[int] = []
    used = 0
    for index in order:
        if used + tokens[index] <= budget:
            kept.append(index)
            used += tokens[index]
    return kept
