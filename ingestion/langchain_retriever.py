"""LangChain `BaseRetriever` over ragtune's hybrid retriever (for NeMo Guardrails, RAGAS, chains)."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ingestion.retriever import Retriever


class RagtuneRetriever(BaseRetriever):
    """`RagtuneRetriever(retriever=..., k=5, collections=["hr"]).invoke("question")` → Documents.

    Each Document's metadata carries what a citation needs: document, page, heading,
    chunk_id, collection and the fused and per-ranking scores.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 5
    collections: list[str] | None = None
    documents: list[str] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.retriever.search(query, self.k, self.collections, self.documents)
        return [Document(page_content=h.text, metadata=_metadata(h.to_dict())) for h in hits]


def _metadata(hit: dict[str, Any]) -> dict[str, Any]:
    hit.pop("text", None)
    return hit
