"""Ranking a person's candidate chunks: fusion, diversification, the token budget.

Pure functions over arrays, so the ranking can be tested and evaluated without a database.

- Fusion is reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009): each query's
  vector ranking, the full-text ranking and the measured-outcome ranking (`outcomes.py`)
  vote 1/(k + rank). It needs no score calibration between cosine similarities, ts_rank
  values and outcome counts, which live on unrelated scales, and it is robust to one list
  being noisy. k = 60 as in the paper.
- Diversification is maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998) with
  coverage bonuses: a chunk from a month, a record kind or a topic (a feedback theme, else
  a project) not yet in the pack gains a little, so one project or the last month does not
  crowd out the rest of the period; a second chunk of a record already picked loses a
  little. Near-duplicates (cosine >= 0.97 to a chosen chunk) are dropped.
"""

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

RRF_K = 60
MMR_LAMBDA = 0.7
COVERAGE_BONUS = 0.08
DUPLICATE_SIMILARITY = 0.97
REPEAT_PENALTY = 0.15

Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]


def rankings(
    query_similarity: Floats, text_score: Floats, outcome_score: Floats, mode: str
) -> list[list[int]]:
    """Candidate indices best first: one list per query (vector), one full-text list and,
    in the hybrid, one list of the chunks that state measured outcomes. Ties break on the
    index, which callers make the chunk order, so results are stable."""
    lists: list[list[int]] = []
    if mode in ("hybrid", "vector"):
        for column in range(query_similarity.shape[1]):
            order = np.lexsort((np.arange(len(query_similarity)), -query_similarity[:, column]))
            lists.append([int(i) for i in order])
    if mode in ("hybrid", "text"):
        lists.append(_positive_first(text_score))
    if mode == "hybrid":
        lists.append(_positive_first(outcome_score))
    if not lists:
        raise ValueError(f"unknown ranking mode {mode!r}; use hybrid, vector or text")
    return lists


def _positive_first(scores: Floats) -> list[int]:
    """Only the candidates that scored at all, best first."""
    matched = [i for i in range(len(scores)) if scores[i] > 0]
    return sorted(matched, key=lambda i: (-float(scores[i]), i))


def reciprocal_rank_fusion(lists: Sequence[Sequence[int]], size: int, k: int = RRF_K) -> Floats:
    scores = np.zeros(size, dtype=np.float64)
    for ranked in lists:
        for rank, index in enumerate(ranked, start=1):
            scores[index] += 1.0 / (k + rank)
    return scores


def diversify(
    relevance: Floats,
    embeddings: Floats,
    facets: Sequence[Sequence[str | None]],
    records: Sequence[int],
    *,
    limit: int,
    lead_groups: Sequence[int] = (),
    lead_slots: Sequence[int] = (),
    mmr_lambda: float = MMR_LAMBDA,
    coverage_bonus: float = COVERAGE_BONUS,
    repeat_penalty: float = REPEAT_PENALTY,
) -> list[int]:
    """Indices in pick order: relevant, unlike what is already picked, spread over facets.

    `facets` holds one label per candidate for each facet (month, record kind, topic); a
    candidate gains `coverage_bonus` per facet whose label the pack does not show yet (None
    never does). A chunk of a record already in the pack loses `repeat_penalty`, so the
    pack's first items are distinct pieces of evidence. Candidates with no relevance at
    all are never picked.

    The lead: while the pack is shorter than sum(`lead_slots`), only candidates of a lead
    group (`lead_groups[i]`, -1 for none) with slots left are eligible, so the first places
    hold each kind of evidence in its share; once no eligible candidate is left, the lead
    ends and every candidate competes."""
    top = float(relevance.max()) if len(relevance) else 0.0
    if top <= 0:
        return []
    relevance = relevance / top
    remaining = [i for i in range(len(relevance)) if relevance[i] > 0]
    max_similarity = np.full(len(relevance), -1.0)
    chosen: list[int] = []
    seen: list[set[str | None]] = [{None} for _ in facets]
    seen_records: set[int] = set()
    slots_left = list(lead_slots)
    while remaining and len(chosen) < limit:
        eligible = _in_lead(remaining, lead_groups, slots_left) if any(slots_left) else remaining
        if not eligible:
            slots_left = [0] * len(slots_left)
            eligible = remaining
        index = np.array(eligible)
        novelty = np.array(
            [
                coverage_bonus * sum(f[i] not in s for f, s in zip(facets, seen, strict=True))
                - repeat_penalty * (records[i] in seen_records)
                for i in eligible
            ]
        )
        scores = (
            mmr_lambda * relevance[index]
            - (1 - mmr_lambda) * np.maximum(0.0, max_similarity[index])
            + novelty
        )
        best = int(index[int(np.argmax(scores))])  # argmax keeps the first (lowest) index on ties
        chosen.append(best)
        if slots_left and lead_groups[best] >= 0:
            slots_left[lead_groups[best]] -= 1
        for facet, labels in zip(facets, seen, strict=True):
            labels.add(facet[best])
        seen_records.add(records[best])
        max_similarity = np.maximum(max_similarity, embeddings @ embeddings[best])
        remaining = [i for i in remaining if i != best and max_similarity[i] < DUPLICATE_SIMILARITY]
    return chosen


def _in_lead(remaining: list[int], groups: Sequence[int], slots_left: list[int]) -> list[int]:
    return [i for i in remaining if groups[i] >= 0 and slots_left[groups[i]] > 0]


def fit_budget(order: Sequence[int], tokens: Sequence[int], budget: int) -> list[int]:
    """Most valuable first, skipping what does not fit while smaller items still might."""
    kept: list[int] = []
    used = 0
    for index in order:
        if used + tokens[index] <= budget:
            kept.append(index)
            used += tokens[index]
    return kept
