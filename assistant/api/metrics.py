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
