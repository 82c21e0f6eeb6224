"""Prometheus metrics, one registry per app (tests build many apps in one process)."""

from __future__ import annotations

import time
from typing import Any, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self, queue_depth: Callable[[], int]):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "ragtune_http_requests", "HTTP requests by route and status", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "ragtune_http_request_seconds", "Time to the response head, in seconds", ["method", "route"],
            registry=self.registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.tokens = Counter("ragtune_generated_tokens", "Tokens generated", ["adapter"], registry=self.registry)
        self.first_token = Histogram(
            "ragtune_time_to_first_token_seconds", "From request to the first answer token, in seconds",
            registry=self.registry, buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
        )
        self.refusals = Counter("ragtune_refusals", "Answers that said 'not in the documents'", registry=self.registry)
        self.guardrails = Counter("ragtune_guardrail_actions", "Times a rail acted, by rail and action",
                                  ["rail", "action"], registry=self.registry)
        drift = ("collection",)
        self.drift_p = Gauge("ragtune_drift_p_value", "Drift watch: two-sample test p-value of the recent questions "
                             "against the training and golden questions", drift, registry=self.registry)
        self.drift_alert = Gauge("ragtune_drift_alert", "1 while the drift p-value is below loop.drift_alpha", drift,
                                 registry=self.registry)
        self.drift_similarity = Gauge("ragtune_drift_similarity", "Mean cosine of recent questions to their nearest "
                                      "reference question", drift, registry=self.registry)
        self.best_score = Gauge("ragtune_best_retrieval_score", "Mean best dense retrieval score of recent questions",
                                drift, registry=self.registry)
        self.refusal_rate = Gauge("ragtune_refusal_rate", "Share of recent questions refused", drift, registry=self.registry)
        self.unanswered = Gauge("ragtune_unanswered_share", "Share of recent questions with no chunk above the "
                                "relevance threshold", drift, registry=self.registry)
        depth = Gauge("ragtune_generation_queue_depth", "Generations running or waiting", registry=self.registry)
        depth.set_function(queue_depth)

    def observe_answer(self, answer: Any) -> None:
        self.tokens.labels(answer.adapter or "base").inc(answer.completion_tokens)
        if answer.completion_tokens:
            self.first_token.observe(answer.timing_ms.get("first_token", 0) / 1000)
        if answer.refused:
            self.refusals.inc()
        for event in getattr(answer, "rail_events", []):
            self.guardrails.labels(event.rail, event.action).inc()

    def observe_drift(self, collection: str, figures: dict[str, Any]) -> None:
        """The drift watch's figures for one collection (assistant/drift.py), over its recent window."""
        if figures.get("p_value") is not None:
            self.drift_p.labels(collection).set(figures["p_value"])
        self.drift_alert.labels(collection).set(1 if figures.get("alert") else 0)
        self.drift_similarity.labels(collection).set(figures["similarity"])
        if figures.get("best_score") is not None:
            self.best_score.labels(collection).set(figures["best_score"])
        self.refusal_rate.labels(collection).set(figures["refusal_rate"])
        self.unanswered.labels(collection).set(figures["unanswered_share"])

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: Any) -> Any:
        """ASGI middleware counting every HTTP response by its route template (not the raw path)."""

        async def wrapped(scope: dict, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started, status = time.perf_counter(), {"code": 500}

            async def observe(message: dict) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                    route = scope.get("path_template") or "unmatched"
                    self.latency.labels(scope["method"], route).observe(time.perf_counter() - started)
                    self.requests.labels(scope["method"], route, str(status["code"])).inc()
                await send(message)

            await app(scope, receive, observe)

        return wrapped
