"""The evidence pack as a LangChain retriever, so chains can draw on the same evidence."""

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from sqlalchemy import Engine

from retrieval.evidence import EvidenceItem
from retrieval.periods import Period
from retrieval.search import DEFAULT_TOKEN_BUDGET, retrieve_evidence


class EvidenceRetriever(BaseRetriever):
    """One person's evidence for one period and draft kind; the query, when given, is
    matched beside the kind's own queries. Documents come in pack order with their ids."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Engine
    embedder: Any
    subject_id: int
    period: Period | None
    draft_kind: str
    token_budget: int = DEFAULT_TOKEN_BUDGET

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        with self.engine.connect() as conn:
            pack = retrieve_evidence(
                conn,
                self.embedder,
                subject_id=self.subject_id,
                period=self.period,
                draft_kind=self.draft_kind,
                token_budget=self.token_budget,
                extra_queries=[query] if query.strip() else (),
            )
        return [as_document(item) for item in pack.items]


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
