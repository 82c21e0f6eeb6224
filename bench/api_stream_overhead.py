"""Time to first token and tokens/s through the API (SSE) against raw `model.generate`, same prompt and model.

    .venv/bin/python bench/api_stream_overhead.py [--repeats 3] [--max-new-tokens 64]

The server runs in this process with the real models over the sample knowledge base. For each
question the exact prompt the chat service builds is also given to `model.generate` (greedy, same
token cap, a TextIteratorStreamer for the first token) on the very same model object; the two are
run alternately. ours TTFT = request sent → first SSE token event (retrieval, packing, queue and
HTTP included); raw TTFT = generate() called → first streamed text. tokens/s = tokens after the
first / time after the first. Targets: tokens/s overhead <= 10%, <= 150 ms added to first token.
Writes bench/results/api_stream_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import _common as common
import _server
import httpx
from generation_raw import raw  # the same raw model.generate timing as that bench


def ours(live, question: str, max_new: int) -> dict:
    sent = time.perf_counter()
    first = None
    with httpx.Client(timeout=300) as http, http.stream(
        "POST", f"{live.url}/v1/chat", headers={"X-API-Key": live.key},
        json={"message": question, "stream": True, "max_new_tokens": max_new},
    ) as response:
        for line in response.iter_lines():
            if line.startswith("event: token") and first is None:
                first = time.perf_counter()
            if line.startswith("data:") and '"answer"' in line:
                final = json.loads(line[5:])
    end = time.perf_counter()
    tokens = final["answer"]["usage"]["completion_tokens"]
    return {"ttft_s": first - sent, "tokens": tokens, "tps": (tokens - 1) / (end - first) if tokens > 1 else 0.0}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=64)
    args = p.parse_args()
    settings = _server.settings(max_new_tokens=args.max_new_tokens)
    _server.ingest(settings)
    rows = []
    with _server.Live(settings) as live:
        chat = live.services.chat
        for repeat in range(args.repeats):
            for question in _server.QUESTIONS[:3]:
                from assistant.chat_service import ChatRequest

                prepared = chat.prepare(ChatRequest(question))
                a = ours(live, question, args.max_new_tokens)
                # The same number of tokens from raw generate (our answer may have stopped early).
                b = raw(chat.generator, prepared.prompt_text, max(a["tokens"], 2))
                rows.append({"question": question, "ours": a, "raw": b})
                common.console.print(f"  {repeat + 1}/{args.repeats} {question[:40]}: ours ttft {a['ttft_s']:.3f} s "
                                     f"{a['tps']:.1f} tok/s | raw ttft {b['ttft_s']:.3f} s {b['tps']:.1f} tok/s", style="dim")
    med = lambda side, key: statistics.median(r[side][key] for r in rows)  # noqa: E731
    summary = {
        "ours_ttft_s": med("ours", "ttft_s"), "raw_ttft_s": med("raw", "ttft_s"),
        "added_ttft_ms": 1000 * (med("ours", "ttft_s") - med("raw", "ttft_s")),
        "ours_tokens_per_s": med("ours", "tps"), "raw_tokens_per_s": med("raw", "tps"),
        "tokens_per_s_ratio": med("ours", "tps") / med("raw", "tps"),
        "samples": len(rows),
    }
    common.console.print(common.table(
        "API streaming vs raw model.generate (median over questions × repeats; Gemma 3 270M, CPU)",
        ["metric", "ours", "raw", "ratio / delta", "target"],
        [["time to first token s", summary["ours_ttft_s"], summary["raw_ttft_s"], f"+{summary['added_ttft_ms']:.0f} ms", "<= +150 ms"],
         ["tokens/s", summary["ours_tokens_per_s"], summary["raw_tokens_per_s"], summary["tokens_per_s_ratio"], ">= 0.90"]]))
    path = common.write_json("api_stream_overhead", {"summary": summary, "rows": rows, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
