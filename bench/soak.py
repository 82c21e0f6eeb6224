"""Soak: concurrent chat (JSON and SSE), search, upload and feedback clients against a live server.

    .venv/bin/python bench/soak.py [--duration-s 120] [--clients 8] [--real] [--fake-delay-s 0.01]
    .venv/bin/python bench/soak.py --workers 1,2,4 [--postgres] [--limit 60]   (see bench/_soak_workers.py)

The server runs as its own process on loopback (`ragtune serve`), so its RSS is measured alone
(/proc/PID/status every --rss-every-s; its parser worker children are added as "tree"). Phase 1
("soak"): --clients clients each loop over a fixed mix of requests for --duration-s while a probe
GETs /healthz every 250 ms. Phase 2 ("shed"): the server restarted with max_queue 0 and slower
generation, 2x the clients ask at once for --shed-duration-s: every request must end as 200 or
503 + Retry-After, quickly, never as a client timeout. Default is the fake generator (tokens with
--fake-delay-s between them) and the fake embedder; --real uses Gemma 3 270M and MiniLM.

Reported: one table per phase (per route: requests, req/s, p50/p95/p99 ms, counts by status),
then RSS start/end/max, /healthz latency under load, and the shedding verdict.
Writes bench/results/soak_fake.json or soak_real.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import _common as common
import httpx
from _soak_server import RssSampler, Server, server_env

SAMPLE_DOCS = common.PROJECT / "samples" / "kestrel" / "docs"
QUESTIONS = [
    "How do I connect to the VPN?", "How many days of annual leave do employees get?",
    "What is the hotel limit when travelling?", "How do I reset my password?", "Who approves remote work?",
    "How do I release a print job?", "What does the code of conduct say about gifts?",
]
# One client's loop: chat twice as often as the others; an upload every tenth request.
MIX = ["chat_stream", "search", "chat", "feedback", "search", "chat_stream", "chat", "search", "feedback", "upload"]
CLIENT_TIMEOUT_S = 120.0  # a request still unanswered after this is a "timeout" (the failure the queue prevents)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- clients -----------------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)  # seconds, every completed request
        self.status: dict[str, Counter] = defaultdict(Counter)
        self.retry_after_missing = 0  # 503s without a Retry-After header
        self.latency_503: list[float] = []
        self.messages: list[str] = []  # answer ids, for feedback
        self.jobs: list[str] = []

    def add(self, route: str, status: int | str, seconds: float, response: httpx.Response | None = None) -> None:
        self.status[route][status] += 1
        if isinstance(status, int):
            self.latency[route].append(seconds)
        if status == 503:
            self.latency_503.append(seconds)
            if response is not None and not response.headers.get("retry-after"):
                self.retry_after_missing += 1


async def one_request(http: httpx.AsyncClient, kind: str, n: int, tally: Tally) -> None:
    question = QUESTIONS[n % len(QUESTIONS)]
    started = time.monotonic()
    response: httpx.Response | None = None
    try:
        if kind == "chat":
            response = await http.post("/v1/chat", json={"message": question})
            if response.status_code == 200 and response.json().get("message_id"):
                tally.messages.append(response.json()["message_id"])
        elif kind == "chat_stream":
            async with http.stream("POST", "/v1/chat", json={"message": question, "stream": True}) as response:
                final = None
                async for line in response.aiter_lines():
                    if line.startswith("data:") and '"message_id"' in line:
                        final = json.loads(line[5:])
                if final and final.get("message_id"):
                    tally.messages.append(final["message_id"])
        elif kind == "search":
            response = await http.post("/v1/search", json={"query": question, "k": 5})
        elif kind == "feedback":
            if not tally.messages:
                return
            message_id = tally.messages[n % len(tally.messages)]
            response = await http.post(f"/v1/messages/{message_id}/feedback",
                                       json={"rating": 1 if n % 3 else -1, "comment": f"soak {n}"})
        elif kind == "upload":
            body = f"# Soak note {n}\n\nSoak test note number {n}: the {question.lower()} answer is in the handbook.\n"
            response = await http.post("/v1/documents", files={"files": (f"soak_{n % 20}.md", body.encode())},
                                       data={"collection": "soak"})
            if response.status_code == 202:
                tally.jobs.append(response.json()["job_id"])
        tally.add(kind, response.status_code, time.monotonic() - started, response)
    except httpx.TimeoutException:
        tally.add(kind, "timeout", time.monotonic() - started)
    except httpx.HTTPError as exc:
        tally.add(kind, type(exc).__name__, time.monotonic() - started)


async def client(url: str, key: str, number: int, stop_at: float, tally: Tally, mix: list[str]) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=CLIENT_TIMEOUT_S) as http:
        n = number
        while time.monotonic() < stop_at:
            await one_request(http, mix[n % len(mix)], n, tally)
            n += 1


async def probe(url: str, stop_at: float, out: list[float], failures: Counter) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            try:
                response = await http.get("/healthz")
                out.append(time.perf_counter() - started)
                if response.status_code != 200:
                    failures[response.status_code] += 1
            except httpx.HTTPError as exc:
                failures[type(exc).__name__] += 1
            await asyncio.sleep(0.25)


async def run_phase(url: str, key: str, clients: int, seconds: float, mix: list[str]) -> dict:
    tally, health, health_failures = Tally(), [], Counter()
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    await asyncio.gather(probe(url, stop_at, health, health_failures),
                         *(client(url, key, n, stop_at, tally, mix) for n in range(clients)))
    wall = time.monotonic() - started  # requests in flight at the deadline finish
    routes = {}
    for route in sorted(tally.status):
        lat = tally.latency[route]
        routes[route] = {
            "requests": sum(tally.status[route].values()), "per_s": sum(tally.status[route].values()) / wall,
            "p50_ms": ms(pct(lat, 0.5)), "p95_ms": ms(pct(lat, 0.95)), "p99_ms": ms(pct(lat, 0.99)),
            "max_ms": ms(max(lat) if lat else None), "status": {str(k): v for k, v in sorted(tally.status[route].items(), key=str)},
        }
    statuses = Counter()
    for counter in tally.status.values():
        statuses.update(counter)
    return {
        "clients": clients, "seconds": seconds, "wall_s": wall, "routes": routes,
        "errors_5xx_other_than_503": sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500 and k != 503),
        "responses_503": statuses.get(503, 0), "responses_503_without_retry_after": tally.retry_after_missing,
        "latency_503_p95_ms": ms(pct(tally.latency_503, 0.95)), "latency_503_max_ms": ms(max(tally.latency_503, default=None)),
        "timeouts": statuses.get("timeout", 0),
        "transport_errors": sum(v for k, v in statuses.items() if isinstance(k, str) and k != "timeout"),
        "health": {"n": len(health), "p50_ms": ms(pct(health, 0.5)), "p95_ms": ms(pct(health, 0.95)),
                   "p99_ms": ms(pct(health, 0.99)), "max_ms": ms(max(health, default=None)),
                   "failures": dict(health_failures)},
        "upload_jobs": tally.jobs,
    }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(1000 * seconds, 1)


def job_outcomes(url: str, key: str, job_ids: list[str], wait_s: float = 120) -> dict[str, int]:
    """Final status of the upload jobs (waits for queued ones to finish)."""
    deadline = time.monotonic() + wait_s
    outcomes: Counter = Counter()
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=30) as http:
        for job_id in job_ids:
            while True:
                status = http.get(f"/v1/jobs/{job_id}").json().get("status")
                if status in ("done", "failed") or time.monotonic() > deadline:
                    outcomes[status] += 1
                    break
                time.sleep(0.5)
    return dict(outcomes)


# --- set-up and report -------------------------------------------------------------------------


def prepare_home(real: bool, database_url: str = "", ingest: bool = True) -> tuple[Path, str]:
    """A home with the Kestrel sample documents ingested and an API key (chat + ingest) in its database."""
    from assistant import assembly
    from assistant.settings import load_settings

    home = common.CACHE_ROOT / ("soak-real" if real else "soak-fake")
    overrides: dict = {"home": str(home)}
    if real:
        overrides["generator"] = {"cache_dir": str(common.CACHE_ROOT / "models")}
    if database_url:
        overrides["server"] = {"database_url": database_url}
    settings = load_settings(profile="default" if real else "test", environ={}, overrides=overrides)
    if ingest:
        job = assembly.ingest_job(settings)
        report = job.run([SAMPLE_DOCS], settings.default_collection)
        job.store.close()
        if report.exit_code() != 0:
            raise SystemExit(f"ingest failed: {report.counts()}")
    db = assembly.database(settings)
    _, key = db.keys.create(f"soak-{int(time.time())}", "chat,ingest", all_collections=True)
    db.dispose()
    return home, key


def route_rows(phase: dict) -> list[list]:
    rows = [[route, r["requests"], r["per_s"], r["p50_ms"], r["p95_ms"], r["p99_ms"], json.dumps(r["status"])]
            for route, r in phase["routes"].items()]
    h = phase["health"]
    rows.append(["/healthz (probe)", h["n"], h["n"] / phase["wall_s"], h["p50_ms"], h["p95_ms"], h["p99_ms"],
                 json.dumps(h["failures"] or {"200": h["n"]})])
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration-s", type=float, default=120)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--real", action="store_true", help="Gemma 3 270M + MiniLM instead of the fake backends")
    p.add_argument("--fake-delay-s", type=float, default=0.01, help="fake generator: pause per token, seconds")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--shed-duration-s", type=float, default=20)
    p.add_argument("--rss-every-s", type=float, default=2.0)
    p.add_argument("--workers", default="", help="e.g. 1,2,4: the soak mix per worker count, then a per-key limit "
                   "check (bench/_soak_workers.py); fake backends only")
    p.add_argument("--postgres", action="store_true", help="--workers: shared state on a throw-away PostgreSQL")
    p.add_argument("--limit", type=int, default=60, help="--workers: rate_limit_per_minute for the limit check")
    args = p.parse_args()
    if args.workers:
        import _soak_workers

        args.mix = MIX
        return _soak_workers.run(args, prepare_home, run_phase, job_outcomes, route_rows)
    mode = "real" if args.real else "fake"
    load_before = os.getloadavg()
    home, key = prepare_home(args.real)
    log = common.CACHE_ROOT / f"soak-{mode}.log"
    log.unlink(missing_ok=True)

    # Phase 1: the queue holds every client (nothing should be shed).
    server = Server(server_env(args.real, home, args.clients + 4, args.fake_delay_s, args.max_new_tokens), log)
    try:
        ready_s = server.wait_ready()
        sampler = RssSampler(server.proc.pid, args.rss_every_s)
        sampler.start()
        soak = asyncio.run(run_phase(server.url, key, args.clients, args.duration_s, MIX))
        samples = sampler.stop()
        soak["upload_job_outcomes"] = job_outcomes(server.url, key, soak.pop("upload_jobs"))
        soak["rss_mib"] = {"start": samples[0][1], "end": samples[-1][1], "max": max(s[1] for s in samples),
                           "tree_max": max(s[2] for s in samples), "samples": samples}
        soak["server_ready_s"] = ready_s
    finally:
        server.stop()

    # Phase 2: no waiting room and slow generation: requests beyond the running one must be shed at once.
    shed_delay = args.fake_delay_s if args.real else max(args.fake_delay_s, 0.05)
    server = Server(server_env(args.real, home, 0, shed_delay, args.max_new_tokens), log)
    try:
        server.wait_ready()
        shed = asyncio.run(run_phase(server.url, key, 2 * args.clients, args.shed_duration_s, ["chat", "chat_stream"]))
        shed.pop("upload_jobs")
    finally:
        server.stop()
    load_after = os.getloadavg()

    what = "Gemma 3 270M + MiniLM" if args.real else f"fake generator ({args.fake_delay_s:g} s/token) + fake embedder"
    columns = ["route", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "status counts"]
    common.console.print(common.table(
        f"soak: {args.clients} clients x {args.duration_s:g} s, {what}, max {args.max_new_tokens} new tokens, "
        f"max_queue {args.clients + 4}", columns, route_rows(soak)))
    rss = soak["rss_mib"]
    common.console.print(
        f"server RSS MiB: start {rss['start']:.0f}, end {rss['end']:.0f}, max {rss['max']:.0f} "
        f"(with parser children: max {rss['tree_max']:.0f}); {len(rss['samples'])} samples every {args.rss_every_s:g} s\n"
        f"5xx other than 503: {soak['errors_5xx_other_than_503']}; 503: {soak['responses_503']}; timeouts: "
        f"{soak['timeouts']}; transport errors: {soak['transport_errors']}; upload jobs: {soak['upload_job_outcomes']}")
    common.console.print(common.table(
        f"shed: {2 * args.clients} clients x {args.shed_duration_s:g} s of chat, max_queue 0", columns, route_rows(shed)))
    sheds = shed["responses_503"] > 0 and shed["responses_503_without_retry_after"] == 0 and shed["timeouts"] == 0
    common.console.print(
        f"queue sheds load with 503 + Retry-After instead of timing out: {'YES' if sheds else 'NO'} "
        f"({shed['responses_503']} x 503, {shed['responses_503_without_retry_after']} without Retry-After, 503 p95 "
        f"{shed['latency_503_p95_ms']} ms / max {shed['latency_503_max_ms']} ms, {shed['timeouts']} timeouts, "
        f"{shed['errors_5xx_other_than_503']} other 5xx)\n"
        f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores; other work on the machine "
        f"shares them)")
    path = common.write_json(f"soak_{mode}", {
        "args": vars(args), "soak": soak, "shed": shed, "sheds_load": sheds,
        "load_average": {"before": load_before, "after": load_after}, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
