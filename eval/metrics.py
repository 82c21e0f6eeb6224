"""Per-question scores, computed with RAGAS where it has the metric and by us where it does not.

Without any LLM: context recall / precision at page level (RAGAS ID-based metrics over
"document#page" ids), semantic similarity of answer and reference (RAGAS, with ragtune's own
embedder), ROUGE-L (RAGAS), token F1 (ours: SQuAD's, which RAGAS lacks), citation rate, and the
refusal pair: refusal accuracy on unanswerable questions, false refusals on answerable ones.
With a judge (eval/judge.py): RAGAS faithfulness, response relevancy and factual correctness.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from eval.golden import GoldenRow
from eval.text_metrics import token_f1


@dataclass(frozen=True)
class MetricInfo:
    label: str
    description: str
    higher_is_better: bool
    applies_to: str  # "answerable" | "unanswerable"
    needs: str = ""  # "retrieval" | "judge" | ""


CATALOGUE: dict[str, MetricInfo] = {
    "semantic_similarity": MetricInfo("Semantic similarity", "cosine of answer and reference embeddings (RAGAS)", True, "answerable"),
    "token_f1": MetricInfo("Token F1", "SQuAD bag-of-words overlap with the reference", True, "answerable"),
    "rouge_l": MetricInfo("ROUGE-L", "longest common subsequence F-measure with the reference (RAGAS)", True, "answerable"),
    "context_recall": MetricInfo("Context recall", "share of the reference pages among the retrieved chunks (RAGAS, ID-based)", True, "answerable", "retrieval"),
    "context_precision": MetricInfo("Context precision", "share of retrieved chunks on a reference page (RAGAS, ID-based)", True, "answerable", "retrieval"),
    "cited_rate": MetricInfo("Cited", "answers that cite at least one shown source", True, "answerable", "retrieval"),
    "model_cited_rate": MetricInfo("Cited by the model", "answers whose citations the model wrote itself (not "
                                   "attributed by the service: assistant/attribution.py)", True, "answerable", "retrieval"),
    "cited_reference_rate": MetricInfo("Cites the reference", "cited answers whose cited sources hold a reference "
                                       "page", True, "answerable", "retrieval"),
    "false_refusal_rate": MetricInfo("False refusals", "answerable questions the assistant refused", False, "answerable"),
    "refusal_accuracy": MetricInfo("Refusal accuracy", "unanswerable questions the assistant refused", True, "unanswerable"),
    "faithfulness": MetricInfo("Faithfulness", "claims of the answer supported by its contexts (RAGAS, LLM judge)", True, "answerable", "judge"),
    "answer_relevancy": MetricInfo("Answer relevancy", "the answer addresses the question (RAGAS, LLM judge)", True, "answerable", "judge"),
    "factual_correctness": MetricInfo("Factual correctness", "claims matching the reference (RAGAS, LLM judge)", True, "answerable", "judge"),
}


def page_ids(contexts: Sequence[dict[str, Any]], row: GoldenRow) -> tuple[list[str], list[str]]:
    """(retrieved ids, reference ids): a chunk spanning pages 4-5 counts as page 5 when 5 is a reference page."""
    reference = [f"{s.document}#{s.page or '*'}" for s in row.sources]
    retrieved = []
    for ctx in contexts:
        first, last = ctx.get("page"), ctx.get("page_end") or ctx.get("page")
        match = next((f"{s.document}#{s.page or '*'}" for s in row.sources if s.document == ctx["document"] and
                      (s.page is None or (first is not None and first <= s.page <= (last or first)))), None)
        retrieved.append(match or f"{ctx['document']}#{first}")
    return retrieved, reference


class Scorer:
    """Scores one answer of one variant; RAGAS metric objects are built once and reused."""

    def __init__(self, embed: Callable[[list[str]], Any], judge: Any | None = None):
        from ragas.embeddings import LangchainEmbeddingsWrapper
        from ragas.metrics import IDBasedContextPrecision, IDBasedContextRecall, RougeScore, SemanticSimilarity

        self.similarity = SemanticSimilarity(embeddings=LangchainEmbeddingsWrapper(_LangchainEmbeddings(embed)))
        self.rouge = RougeScore(rouge_type="rougeL", mode="fmeasure")
        self.precision, self.recall = IDBasedContextPrecision(), IDBasedContextRecall()
        self.judged = _judged_metrics(judge) if judge is not None else {}

    def metric_names(self, retrieval: bool) -> list[str]:
        return [name for name, info in CATALOGUE.items()
                if (info.needs != "retrieval" or retrieval) and (info.needs != "judge" or name in self.judged)]

    def score(self, row: GoldenRow, answer: dict[str, Any], retrieval: bool) -> dict[str, float | None]:
        from ragas.dataset_schema import SingleTurnSample

        scores: dict[str, float | None] = {}
        if not row.answerable:
            scores["refusal_accuracy"] = float(answer["refused"])
            return scores
        text = answer["answer"].strip()
        reference = row.reference or ""
        scores["false_refusal_rate"] = float(answer["refused"])
        scores["token_f1"] = token_f1(text, reference)
        sample = SingleTurnSample(user_input=row.question, response=text or " ", reference=reference,
                                  retrieved_contexts=[c.get("text", "") for c in answer["contexts"]])
        scores["semantic_similarity"] = _run(self.similarity.single_turn_ascore(sample)) if text else 0.0
        scores["rouge_l"] = _run(self.rouge.single_turn_ascore(sample)) if text else 0.0
        if retrieval:
            scores["cited_rate"] = float(bool(answer["citations"]))
            scores["model_cited_rate"] = float(bool(answer["citations"]) and not answer.get("attributed"))
            retrieved, reference_ids = page_ids(answer["contexts"], row)
            cited_numbers = {c.get("number") for c in answer["citations"]}
            if cited_numbers and reference_ids:
                cited_ids = {r for r, c in zip(retrieved, answer["contexts"]) if c.get("number") in cited_numbers}
                scores["cited_reference_rate"] = float(bool(cited_ids & set(reference_ids)))
            if reference_ids:
                ids = SingleTurnSample(retrieved_context_ids=retrieved or [""], reference_context_ids=reference_ids)
                scores["context_recall"] = _run(self.recall.single_turn_ascore(ids)) if retrieved else 0.0
                scores["context_precision"] = _run(self.precision.single_turn_ascore(ids)) if retrieved else 0.0
        for name, metric in self.judged.items():
            if name == "faithfulness" and not sample.retrieved_contexts:
                continue  # nothing to be faithful to in a closed-book answer
            try:
                scores[name] = float(_run(metric.single_turn_ascore(sample)))
            except Exception:  # noqa: BLE001 - a judge that returns unparseable output scores nothing, not zero
                scores[name] = None
        return scores


def _run(coro) -> float:
    """RAGAS metrics are async; scoring runs in a worker without an event loop of its own."""
    return float(asyncio.run(coro))


def _judged_metrics(judge: Any) -> dict[str, Any]:
    from ragas.metrics import FactualCorrectness, Faithfulness, ResponseRelevancy

    return {"faithfulness": Faithfulness(llm=judge.llm), "answer_relevancy": ResponseRelevancy(llm=judge.llm, embeddings=judge.embeddings),
            "factual_correctness": FactualCorrectness(llm=judge.llm)}


class _LangchainEmbeddings:
    """ragtune's embedder behind LangChain's Embeddings interface, which RAGAS wraps."""

    def __init__(self, embed: Callable[[list[str]], Any]):
        self._embed = embed

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in vector] for vector in self._embed(list(texts))]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)
