"""Who answers the golden questions: the assistant in this process, or a deployed server.

Both return the same plain rows, so scoring and reports do not care where answers came from.
In-process answers go through the chat service with the served settings (cap, temperature, rails; up
to `eval.batch_size` answers decoded together, with the tokens each one streams alone), and retrieval is done once per question for all
variants that retrieve (the retrieved chunks do not depend on the adapter). Remote answers go
through `/v1/chat` with an API key, exactly as a ticket tool would send them.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Protocol

from eval.golden import GoldenRow
from eval.variants import Variant

Done = Callable[[int], None]


class EvalError(ValueError):
    """An evaluation that cannot run (server unreachable, key refused); the message is for users."""


class Answerer(Protocol):
    description: str
    model: str

    def answer(self, variant: Variant, rows: list[GoldenRow], on_done: Done) -> list[dict[str, Any]]: ...


def _row(answer: dict[str, Any], contexts: list[dict[str, Any]], latency_ms: float) -> dict[str, Any]:
    return {
        "answer": answer["text"], "refused": bool(answer["refused"]), "finish_reason": answer.get("finish_reason"),
        "citations": [{"number": c["number"], "document": c["document"], "page": c.get("page")} for c in answer.get("citations") or []],
        "contexts": contexts, "latency_ms": round(latency_ms, 1), "adapter": answer.get("adapter") or "base",
        "guardrails": answer.get("guardrails") or [], "attributed": bool(answer.get("attributed")),
    }


class InProcessAnswerer:
    def __init__(self, service, docstore, batch_size: int = 8, max_new_tokens: int = 0,
                 collections: list[str] | None = None):
        self.service, self.docstore, self.batch_size = service, docstore, batch_size
        self.max_new_tokens = max_new_tokens or None  # None: the served cap, as /v1/chat applies it
        self.collections = list(collections) if collections else None  # None: every collection
        self.description = "in-process"
        self.model = service.generator.name
        self._prepared: dict[str, Any] = {}  # question id -> retrieval + prompt, shared by variants

    def answer(self, variant: Variant, rows: list[GoldenRow], on_done: Done) -> list[dict[str, Any]]:
        from assistant.chat_service import ChatRequest

        requests = [ChatRequest(r.question, collections=self.collections, adapter=variant.adapter,
                                retrieval=variant.retrieval, max_new_tokens=self.max_new_tokens) for r in rows]
        if variant.retrieval:
            prepared = [self._prepared.get(r.id) or self._prepared.setdefault(r.id, self.service.prepare(q))
                        for r, q in zip(rows, requests)]
        else:
            prepared = [self.service.prepare(q) for q in requests]
        answers = self.service.answer_batch(requests, prepared, self.batch_size, on_done)
        texts = self.docstore.chunks([c.chunk_id for a in answers for c in a.sources])
        out = []
        for answer in answers:
            contexts = [{"number": c.number, "document": c.document, "page": c.page, "page_end": c.page_end,
                         "heading": c.heading, "text": texts[c.chunk_id].text if c.chunk_id in texts else c.snippet}
                        for c in answer.sources]
            out.append(_row(answer.to_dict(), contexts, answer.timing_ms.get("total", 0.0)))
        return out


class RemoteAnswerer:
    """A deployed ragtune: POST /v1/chat, a few requests at a time (the server queues the rest)."""

    def __init__(self, url: str, api_key: str, concurrency: int = 2, timeout_s: float = 300.0, max_new_tokens: int = 0):
        import httpx

        self.description = f"url {url}"
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout_s,
                                   headers={"Authorization": f"Bearer {api_key}"})
        self.concurrency, self.max_new_tokens = concurrency, max_new_tokens
        self.model = self._model()

    def _model(self) -> str:
        import httpx

        try:
            response = self.client.get("/v1/models")
        except httpx.HTTPError as exc:
            raise EvalError(f"cannot reach {self.client.base_url}: {exc}") from None
        if response.status_code in (401, 403):
            raise EvalError(f"{self.client.base_url} refused the API key ({response.status_code})")
        if response.status_code != 200:
            raise EvalError(f"{self.client.base_url}/v1/models answered {response.status_code}: {response.text[:200]}")
        models = response.json().get("data") or [{}]
        return str(models[0].get("id", "unknown"))

    def answer(self, variant: Variant, rows: list[GoldenRow], on_done: Done) -> list[dict[str, Any]]:
        def one(row: GoldenRow) -> dict[str, Any]:
            body = {"message": row.question, "adapter": variant.adapter, "retrieval": variant.retrieval}
            if self.max_new_tokens:  # else the server's own cap, what its users get
                body["max_new_tokens"] = self.max_new_tokens
            started = time.monotonic()
            response = self.client.post("/v1/chat", json=body)
            if response.status_code != 200:
                raise EvalError(f"{row.id}: the server answered {response.status_code}: {response.text[:300]}")
            answer = response.json()["answer"]
            contexts = [{"number": c["number"], "document": c["document"], "page": c.get("page"),
                         "page_end": c.get("page_end"), "heading": c.get("heading", ""), "text": c.get("snippet", "")}
                        for c in answer.get("sources") or []]
            on_done(1)
            return _row(answer, contexts, (time.monotonic() - started) * 1000)

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(one, rows))

    def close(self) -> None:
        self.client.close()
