"""A process-local cache of evidence packs for readers that ask for the same pack again
(the API: a manager's page, a panel, a client polling), keyed by everything the pack
depends on, the stored data included.

The data's version is the count and the highest id of the person's chunks: ingest deletes
and re-inserts the chunks of any record whose content changed, and adds new ones, so any
change that could alter a pack changes the key (one index-only query, ~0.2 ms, against
7-14 ms for building a pack). Benchmarks and evals call `retrieve_evidence` directly, so
they never measure a cache hit.
"""

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from domain.periods import Period
from retrieval.embedding import Embedder
from retrieval.evidence import EvidencePack
from retrieval.schema import Chunk
from retrieval.search import retrieve_evidence

DEFAULT_ENTRIES = 4096
# Built once: constructing a statement costs more Python than running a small one.
_DATA_VERSION = select(func.count(), func.max(Chunk.id)).where(
    Chunk.subject_id == bindparam("subject_id", type_=Chunk.subject_id.type)
)


class PackCache:
    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self.entries = entries
        self._packs: OrderedDict[tuple[Any, ...], EvidencePack] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def pack(
        self,
        connection: Connection,
        embedder: Embedder,
        *,
        subject_id: int,
        period: Period | None,
        draft_kind: str,
    ) -> EvidencePack:
        """The pack `retrieve_evidence` would build now (callers must not change it)."""
        count, newest = connection.execute(_DATA_VERSION, {"subject_id": subject_id}).one()
        key = (embedder.name, subject_id, period, draft_kind, count, newest)
        with self._lock:
            found = self._packs.get(key)
            if found is not None:
                self._packs.move_to_end(key)
                self.hits += 1
                return found
        pack = retrieve_evidence(
            connection, embedder, subject_id=subject_id, period=period, draft_kind=draft_kind
        )
        with self._lock:
            self.misses += 1
            self._packs[key] = pack
            while len(self._packs) > self.entries:
                self._packs.popitem(last=False)
        return pack
