"""`bench/soak.py --workers 1,2,4`: the soak mix against `ragtune serve --workers N`, then a per-key limit check.

For each N: the server with N worker processes on one port (shared state in the database: PostgreSQL with
--postgres, a throw-away server from tests/postgres_server.py; else the home's SQLite), --clients clients loop over
the soak mix for --duration-s (rate limit out of the way), and the table gives req/s and p95 per route. Then the
server is restarted with `rate_limit_per_minute` = --limit and one key sends 2 x --limit searches on fresh
connections (so every worker takes some): allowed must stay within the limit plus what refilled meanwhile, and
the 429s must come from every worker. Writes bench/results/soak_workers.json.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter

import _common as common
import httpx
from _soak_server import Server, server_env


def _phase_env(home, args, database_url: str, rate: int) -> dict[str, str]:
    env = server_env(False, home, args.clients + 4, args.fake_delay_s, args.max_new_tokens)
    env.update({"RAGTUNE_SERVER__RATE_LIMIT_PER_MINUTE": str(rate), "RAGTUNE_SERVER__SHARED_STATE": "database"})
    if database_url:
        env["RAGTUNE_SERVER__DATABASE_URL"] = database_url
    return env


async def limit_check(url: str, key: str, limit: int, concurrency: int = 4) -> dict:
    """2 x `limit` searches by one key, `concurrency` at a time, each on a new connection."""
    statuses, refused_by, answered_by = Counter(), Counter(), Counter()
    todo = list(range(2 * limit))
    started = time.monotonic()

    async def sender():
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key, "Connection": "close"}, timeout=60,
                                     limits=httpx.Limits(max_keepalive_connections=0)) as http:
            while todo:
                todo.pop()
                response = await http.post("/v1/search", json={"query": "hotel limit", "k": 3})
                statuses[response.status_code] += 1
                worker = response.headers.get("x-ragtune-worker", "?")
                (refused_by if response.status_code == 429 else answered_by)[worker] += 1

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    wall = time.monotonic() - started
    refilled = wall * limit / 60
    allowed = statuses.get(200, 0)
    return {"sent": 2 * limit, "limit_per_minute": limit, "allowed": allowed, "refused": statuses.get(429, 0),
            "other": {str(k): v for k, v in statuses.items() if k not in (200, 429)}, "seconds": round(wall, 2),
            "refilled_during": round(refilled, 2), "workers_answering": len(answered_by),
            "workers_refusing": len(refused_by),
            "enforced": limit <= allowed <= limit + refilled + 1 and len(refused_by) == len(answered_by | refused_by)}


def wait_all_ready(url: str, workers: int, timeout_s: float = 600) -> float:
    """Seconds until `workers` distinct workers answered /readyz 200 (each load their own model and index)."""
    started, ready = time.monotonic(), set()
    while len(ready) < workers:
        if time.monotonic() - started > timeout_s:
            raise SystemExit(f"only {len(ready)} of {workers} workers ready after {timeout_s} s")
        try:
            response = httpx.get(f"{url}/readyz", timeout=5, headers={"Connection": "close"})
            if response.status_code == 200:
                ready.add(response.headers.get("x-ragtune-worker"))
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return time.monotonic() - started


def run(args, prepare_home, run_phase, job_outcomes, route_rows) -> int:
    counts = [int(n) for n in str(args.workers).split(",")]
    load_before = os.getloadavg()
    pg = None
    database_url = ""
    if args.postgres:
        from tests.postgres_server import PostgresServer, find_binaries

        binaries = find_binaries()
        if binaries is None:
            raise SystemExit("--postgres: PostgreSQL's server binaries are not installed")
        pg = PostgresServer(binaries).start()
        database_url = pg.create_database("soak")
    try:
        home, key = prepare_home(False, database_url)
        log = common.CACHE_ROOT / "soak-workers.log"
        log.unlink(missing_ok=True)
        results = {}
        for n in counts:
            server = Server(_phase_env(home, args, database_url, 1_000_000), log, workers=n)
            try:
                ready_s = server.wait_ready() + wait_all_ready(server.url, n)
                phase = asyncio.run(run_phase(server.url, key, args.clients, args.duration_s, args.mix))
                phase["upload_job_outcomes"] = job_outcomes(server.url, key, phase.pop("upload_jobs"))
                phase["server_ready_s"] = ready_s
            finally:
                server.stop()
            _, limited_key = prepare_home(False, database_url, ingest=False)
            server = Server(_phase_env(home, args, database_url, args.limit), log, workers=n)
            try:
                server.wait_ready()
                wait_all_ready(server.url, n)
                phase["limit"] = asyncio.run(limit_check(server.url, limited_key, args.limit))
            finally:
                server.stop()
            results[n] = phase
    finally:
        if pg is not None:
            pg.stop()
    load_after = os.getloadavg()
    what = f"fake generator ({args.fake_delay_s:g} s/token) + fake embedder, {'PostgreSQL' if pg else 'SQLite'}"
    columns = ["route", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "status counts"]
    for n, phase in results.items():
        common.console.print(common.table(f"{n} worker(s): {args.clients} clients x {args.duration_s:g} s, {what}",
                                          columns, route_rows(phase)))
        lim = phase["limit"]
        common.console.print(
            f"  5xx: {phase['errors_5xx_other_than_503']} (503: {phase['responses_503']}), timeouts {phase['timeouts']}, "
            f"upload jobs {phase['upload_job_outcomes']}; limit {lim['limit_per_minute']}/min: {lim['allowed']} of "
            f"{lim['sent']} allowed in {lim['seconds']} s (+{lim['refilled_during']} refilled), 429 from "
            f"{lim['workers_refusing']} of {n} worker(s): enforced {'YES' if lim['enforced'] else 'NO'}")
    common.console.print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (2 cores, shared)")
    path = common.write_json("soak_workers", {"args": vars(args), "workers": results, "database": "postgresql" if pg
                                              else "sqlite", "load_average": {"before": load_before, "after": load_after},
                                              "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0
