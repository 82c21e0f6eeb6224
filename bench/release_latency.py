"""What the release policy costs a streaming client: time to first visible token and to the final answer.

    .venv/bin/python bench/release_latency.py [--limit 30] [--token-ms 35] [--sentences 2]

The same answers (the Contoso golden references, cut to `--sentences` sentences; grounded in themselves plus the
next reference as a distractor) are streamed word by word by a fake generator at `--token-ms` per token (a 270M
model on 2 CPU cores writes a token every ~30-40 ms) through the served guard (`guardrails.engine`, MiniLM):

- `unchecked`: today's stream before issue 19: the PII masker only, `check_output` after the last token;
- `checked`: assistant/release.py, units released once `Guard.check_unit` passed them;
- `final`: assistant/release.py, nothing released before the whole answer passed.

The rails run on the consumer thread while the producer keeps writing, as in the server (rails on a worker thread,
generation on another). Prints p50/p95 of the first visible token and of the final answer, each also as the time
added over `unchecked` on the same answer, and writes bench/results/release_latency.json.
"""

from __future__ import annotations

import argparse
import queue
import re
import threading
import time

import _common as common
import numpy as np

from assistant import assembly
from assistant.release import Release
from assistant.settings import load_settings

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def answers(limit: int, sentences: int) -> list[tuple[str, list[str]]]:
    rows = common.load_golden()[: limit + 1]
    texts = [" ".join(_SENTENCE.split(r["reference"])[:sentences]) for r in rows]
    return [(texts[i], [rows[i]["reference"], rows[i + 1]["reference"]]) for i in range(min(limit, len(rows) - 1))]


def produce(text: str, token_s: float, out: queue.Queue) -> None:
    for i, word in enumerate(text.split(" ")):
        time.sleep(token_s)
        out.put((" " if i else "") + word)
    out.put(None)


def run(guard, mode: str, text: str, contexts: list[str], token_s: float, unit_chars: int) -> dict[str, float]:
    pieces: queue.Queue = queue.Queue()
    started = time.monotonic()
    threading.Thread(target=produce, args=(text, token_s, pieces), daemon=True).start()
    first_token = first_shown = None
    raw = []
    release = Release(guard, contexts, mode, unit_chars) if mode != "unchecked" else None
    masker = guard.output_stream() if release is None else None
    while (piece := pieces.get()) is not None:
        first_token = first_token or time.monotonic()
        raw.append(piece)
        shown = release.feed(piece) if release is not None else masker.feed(piece)
        if shown and first_shown is None:
            first_shown = time.monotonic()
    whole = "".join(raw)
    if release is not None:
        verdict = release.finish(whole)
        rest = release.rest(verdict.text) if verdict is not None else ""
        replaced = bool(verdict and verdict.replaced)
    else:
        rest = masker.flush()
        replaced = guard.check_output(whole.strip(), contexts).replaced
    done = time.monotonic()
    if first_shown is None and rest:
        first_shown = done
    return {"first_token_ms": (first_token - started) * 1000, "first_shown_ms": ((first_shown or done) - started) * 1000,
            "final_ms": (done - started) * 1000, "replaced": float(replaced)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=30)
    parser.add_argument("--token-ms", type=float, default=35.0)
    parser.add_argument("--sentences", type=int, default=2)
    args = parser.parse_args()
    common.require_contoso()
    settings = load_settings()
    guard = assembly.guard(settings)
    unit_chars = settings.guardrails.stream_unit_max_chars
    rows = answers(args.limit, args.sentences)
    run(guard, "checked", *rows[0], 0.0, unit_chars)  # warm-up: model loads, first NeMo call
    results: dict[str, list[dict[str, float]]] = {m: [] for m in ("unchecked", "checked", "final")}
    for text, contexts in rows:  # modes interleaved per answer, so machine load hits all three alike
        for mode in results:
            results[mode].append(run(guard, mode, text, contexts, args.token_ms / 1000, unit_chars))
    base = results["unchecked"]
    table_rows, summary = [], {}
    for mode, runs in results.items():
        shown = [r["first_shown_ms"] for r in runs]
        added = [r["first_shown_ms"] - b["first_shown_ms"] for r, b in zip(runs, base)]
        final_added = [r["final_ms"] - b["final_ms"] for r, b in zip(runs, base)]
        summary[mode] = {
            "first_visible_p50_ms": float(np.percentile(shown, 50)), "first_visible_p95_ms": float(np.percentile(shown, 95)),
            "added_first_visible_p50_ms": float(np.percentile(added, 50)),
            "added_first_visible_p95_ms": float(np.percentile(added, 95)),
            "final_p50_ms": float(np.percentile([r["final_ms"] for r in runs], 50)),
            "added_final_p95_ms": float(np.percentile(final_added, 95)),
            "replaced": int(sum(r["replaced"] for r in runs)),
        }
        s = summary[mode]
        table_rows.append([mode, f"{s['first_visible_p50_ms']:.0f}", f"{s['first_visible_p95_ms']:.0f}",
                           f"{s['added_first_visible_p50_ms']:.0f}", f"{s['added_first_visible_p95_ms']:.0f}",
                           f"{s['final_p50_ms']:.0f}", f"{s['added_final_p95_ms']:.0f}", str(s["replaced"])])
    common.console.print(common.table(
        f"Release policy: {len(rows)} answers, {args.token_ms:.0f} ms/token, units ≤ {unit_chars} chars, "
        f"engine {settings.guardrails.engine}",
        ["mode", "first visible p50", "p95", "added p50", "added p95", "final p50", "final added p95", "replaced"],
        table_rows))
    path = common.write_json("release_latency", {"environment": common.environment(), "args": vars(args),
                                                 "unit_max_chars": unit_chars, "summary": summary})
    common.console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
