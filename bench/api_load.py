"""Concurrent streaming clients against the embedded model, with a health probe alongside.

    .venv/bin/python bench/api_load.py [--clients 8,32] [--seconds 60] [--max-new-tokens 32]
        [--modes transformers:plain,transformers,openvino]

For each client count: that many clients each POST /v1/chat (stream) in a loop for --seconds,
reading every event; a separate probe GETs /healthz every 100 ms. Reported: answers completed,
tokens/s served, p50/p95 answer latency, status counts (target: zero 5xx — the queue is sized to
hold every client), /healthz p50/p95 (target p95 < 50 ms while generation runs). Each generator mode in
--modes runs the same rounds against its own server, one after the other, in one table; `transformers:plain`
is the transformers backend with prompt lookup off (one token per forward pass), `transformers:one` with
prompt lookup but one stream at a time (`generator.batch_streams` 1), `transformers` as served (concurrent streams
decoded together, runtime/decode_loop.py).
Writes bench/results/api_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter

import _common as common
import _server
import httpx


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def client(url: str, key: str, number: int, stop_at: float, max_new: int, out: dict) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=600) as http:
        i = number
        while time.monotonic() < stop_at:
            question = _server.QUESTIONS[i % len(_server.QUESTIONS)]
            i += 1
            started = time.monotonic()
            try:
                async with http.stream("POST", "/v1/chat", json={"message": question, "stream": True,
                                                                 "max_new_tokens": max_new}) as response:
                    out["status"][response.status_code] += 1
                    async for line in response.aiter_lines():
                        if line.startswith("data:") and '"answer"' in line:
                            out["tokens"] += json.loads(line[5:])["answer"]["usage"]["completion_tokens"]
                if response.status_code == 200:
                    out["latency"].append(time.monotonic() - started)
            except httpx.HTTPError as exc:
                out["status"][type(exc).__name__] += 1


async def probe(url: str, stop_at: float, out: list[float]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await http.get("/healthz")
            out.append(time.perf_counter() - started)
            await asyncio.sleep(0.1)


async def round_(url: str, key: str, clients: int, seconds: float, max_new: int) -> dict:
    out = {"status": Counter(), "latency": [], "tokens": 0}
    health: list[float] = []
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(probe(url, stop_at, health),
                         *(client(url, key, n, stop_at, max_new, out) for n in range(clients)))
    wall = time.monotonic() - started  # clients finish the answer in flight after the window
    return {
        "clients": clients, "wall_s": wall, "answers": len(out["latency"]), "tokens": out["tokens"],
        "tokens_per_s": out["tokens"] / wall, "latency_p50_s": pct(out["latency"], 0.5),
        "latency_p95_s": pct(out["latency"], 0.95), "status": {str(k): v for k, v in out["status"].items()},
        "errors_5xx": sum(v for k, v in out["status"].items() if isinstance(k, int) and k >= 500),
        "health_p50_ms": 1000 * pct(health, 0.5), "health_p95_ms": 1000 * pct(health, 0.95), "health_n": len(health),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", default="8,32")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--modes", default="transformers:plain,transformers,openvino",
                   help="generator.mode values, each its own server (MODE:plain = prompt lookup off; MODE:one = "
                        "generator.batch_streams 1, one stream decoded at a time)")
    args = p.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    results = []
    for mode in args.modes.split(","):
        engine, _, variant = mode.partition(":")
        variants = {"plain": {"prompt_lookup_tokens": 0}, "one": {"batch_streams": 1}}
        settings = _server.settings(max_queue=max(counts) + 4, max_new_tokens=args.max_new_tokens, mode=engine,
                                    **variants.get(variant, {}))
        _server.ingest(settings)
        with _server.Live(settings) as live:
            for n in counts:
                results.append({"mode": mode, **asyncio.run(round_(live.url, live.key, n, args.seconds,
                                                                   args.max_new_tokens))})
                common.console.print(f"  {mode}, {n} clients: {results[-1]}", style="dim")
    common.console.print(common.table(
        f"{args.seconds:g} s of streaming clients, Gemma 3 270M on CPU, max {args.max_new_tokens} new tokens",
        ["generator", "clients", "answers", "tokens/s", "p50 s", "p95 s", "5xx", "statuses", "/healthz p50 ms",
         "/healthz p95 ms"],
        [[r["mode"], r["clients"], r["answers"], r["tokens_per_s"], r["latency_p50_s"], r["latency_p95_s"],
          r["errors_5xx"], json.dumps(r["status"]), r["health_p50_ms"], r["health_p95_ms"]] for r in results]))
    path = common.write_json("api_load", {"rounds": results, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
