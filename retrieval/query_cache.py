"""A bounded, thread-safe cache of query vectors, keyed per embedder.

The draft kinds' queries are fixed, so embedding them once per model and process saves a
model call per retrieval. Retrieval runs in worker threads (the API's thread pool, the job
worker), so the cache takes a lock, and it is bounded (least recently used out first) so
callers that pass their own queries cannot grow it without limit.
"""

import threading
from collections import OrderedDict

from retrieval.embedding import Embedder, Vectors

DEFAULT_MAX_ENTRIES = 1024

_Key = tuple[str, tuple[str, ...]]


class QueryVectorCache:
    """Vectors for (embedder name, queries), at most `max_entries` of them."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[_Key, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def vectors(self, embedder: Embedder, queries: tuple[str, ...]) -> Vectors:
        """The embedder's vectors for `queries`, embedded on a miss. The model runs outside
        the lock, so one slow embedding never holds up other threads' hits; two threads
        missing the same key at once both embed it, with the same result."""
        key = (embedder.name, queries)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit
        vectors = embedder.embed(list(queries))
        with self._lock:
            self._entries[key] = vectors
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return vectors
