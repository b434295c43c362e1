"""The evidence pack as a LangChain retriever, so chains can draw on the same evidence."""

from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field
from sqlalchemy import Engine

from domain.periods import Period
from retrieval.evidence import EvidenceItem
from retrieval.search import DEFAULT_MAX_ITEMS, DEFAULT_TOKEN_BUDGET, retrieve_evidence


class EvidenceRetriever(BaseRetriever):
    """One person's evidence for one period and draft kind; the query, when given, is
    matched beside the kind's own queries. Documents come in pack order with their ids.

    Two limits, both ceilings: at most `k` documents (LangChain's "number of documents",
    settable here or per call as `invoke(query, k=...)`), and no more text than
    `token_budget`. The budget is applied first, over the whole ranked pick (skipping an
    item too large to fit while smaller ones still do); the result is then the first `k` of
    what fits. So whichever limit binds first wins: a small budget can return fewer than
    `k`, and `k` never admits an item the budget left out. The defaults return the same
    pack as `retrieve_evidence`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Engine
    embedder: Any
    subject_id: int
    period: Period | None
    draft_kind: str
    k: int = Field(default=DEFAULT_MAX_ITEMS, ge=1)
    token_budget: int = DEFAULT_TOKEN_BUDGET

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        limit = self._limit(k)
        with self.engine.connect() as conn:
            pack = retrieve_evidence(
                conn,
                self.embedder,
                subject_id=self.subject_id,
                period=self.period,
                draft_kind=self.draft_kind,
                token_budget=self.token_budget,
                # The pack's pick is greedy, so its first `limit` items are the same for
                # any larger `max_items`: picking at least the usual number lets the
                # budget fill `limit` places even when a large item is skipped.
                max_items=max(limit, DEFAULT_MAX_ITEMS),
                extra_queries=[query] if query.strip() else (),
            )
        return [as_document(item) for item in pack.items[:limit]]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
    ) -> list[Document]:
        """The sync search in a worker thread (the database calls are synchronous); written
        out so that `ainvoke(query, k=...)` takes `k` as `invoke` does."""
        documents: list[Document] = await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync(), k=k
        )
        return documents

    def _limit(self, k: int | None) -> int:
        """The call's `k` over the constructor's; refused by name when not a positive int."""
        if k is None:
            return self.k
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: must be a whole number of documents, 1 or more; got {k!r}")
        return k


def as_document(item: EvidenceItem) -> Document:
    return Document(
        page_content=item.text,
        id=item.id,
        metadata={
            **{("evidence_id" if k == "id" else k): v for k, v in item.source_facts().items()},
            "author": item.author,
            "scores": {
                "vector": item.scores.vector,
                "text": item.scores.text,
                "fused": item.scores.fused,
                "pick": item.scores.pick,
            },
        },
    )
