"""The query-vector cache stays within its bound and gives the model's own vectors when
many threads use it at once."""

import threading
from collections.abc import Sequence

import numpy as np
import pytest

from retrieval.embedding import HashingEmbedder, Vectors
from retrieval.query_cache import QueryVectorCache
from retrieval.search import QUERY_VECTORS


class _Counting:
    """A hashing embedder that counts its calls."""

    def __init__(self) -> None:
        self.inner = HashingEmbedder(64)
        self.calls = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.calls += 1
        return self.inner.embed(texts)


def test_a_repeated_query_is_embedded_once() -> None:
    cache = QueryVectorCache(max_entries=4)
    embedder = _Counting()
    first = cache.vectors(embedder, ("shipped the release",))
    second = cache.vectors(embedder, ("shipped the release",))
    assert embedder.calls == 1
    assert second is first


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = QueryVectorCache(max_entries=2)
    embedder = _Counting()
    cache.vectors(embedder, ("a",))
    cache.vectors(embedder, ("b",))
    cache.vectors(embedder, ("a",))  # a is now the most recent
    cache.vectors(embedder, ("c",))  # b goes
    assert len(cache) == 2
    calls = embedder.calls
    cache.vectors(embedder, ("a",))
    assert embedder.calls == calls
    cache.vectors(embedder, ("b",))
    assert embedder.calls == calls + 1


def test_entries_are_kept_per_embedder() -> None:
    cache = QueryVectorCache()
    small, large = HashingEmbedder(16), HashingEmbedder(32)
    assert cache.vectors(small, ("q",)).shape == (1, 16)
    assert cache.vectors(large, ("q",)).shape == (1, 32)


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_entries"):
        QueryVectorCache(max_entries=0)


def test_eight_threads_stay_within_the_bound_and_get_the_models_vectors() -> None:
    bound = 1024
    cache = QueryVectorCache(max_entries=bound)
    embedder = HashingEmbedder(64)
    sizes: list[int] = []
    wrong: list[str] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        start.wait()
        for i in range(500):
            query = (f"query {worker} {i}",)
            got = cache.vectors(embedder, query)
            if not np.array_equal(got, embedder.embed(list(query))):
                wrong.append(query[0])
            sizes.append(len(cache))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not wrong
    assert len(sizes) == 8 * 500
    assert max(sizes) <= bound
    assert len(cache) == bound


def test_retrieval_uses_a_bounded_cache() -> None:
    assert isinstance(QUERY_VECTORS, QueryVectorCache)
    assert QUERY_VECTORS.max_entries == 1024
