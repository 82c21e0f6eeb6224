"""The transformers backend's own decode loop against raw `model.generate`: same model object, same prompt.

    .venv/bin/python bench/generation_raw.py [--repeats 3] [--max-new-tokens 64] [--docs 3]

The prompt is rendered by assistant.prompt from the first paragraphs of sample documents (the size
of a real chat prompt). Both sides decode greedily to exactly --max-new-tokens tokens (the backend
gets no stop sequences and its EOS set is emptied; raw gets min_new_tokens) and run alternately.
TTFT = call → first text piece (raw: through a TextIteratorStreamer); tokens/s = tokens after the
first / time after the first, so prefill does not blur the decode rate. Writes
bench/results/generation_raw.json. The checkpoint is converted once into /tmp/ragtune-bench/models.

On a 2-core machine that other processes also load, OpenMP's default spin-waiting made both sides
about 4x slower and erratic (two intra-op threads stall at every barrier); `OMP_WAIT_POLICY=PASSIVE`
in the environment avoids it. The policy and the load average are recorded with the results.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import _common as common

from assistant import prompt
from assistant.runtime.base import GenerationRequest, GenerationStats
from assistant.runtime.factory import build_generator
from assistant.settings import Settings

DOCS = ["leave_policy.md", "remote_work_policy.md", "onboarding_guide.md", "it_password_reset_mfa.md"]


def render_prompt(count: int) -> str:
    docs = []
    for name in DOCS[:count]:
        text = (common.PROJECT / "samples" / "kestrel" / "docs" / name).read_text(encoding="utf-8")
        docs.append(prompt.PromptDoc(name, None, "", text[:1200]))
    return prompt.render(docs, "How many days can I work remotely, and how do I request leave?")


def ours(generator, text: str, tokens: int) -> dict:
    stats, first = GenerationStats(), None
    started = time.perf_counter()
    for _piece in generator.stream(GenerationRequest(text, tokens, []), threading.Event(), stats):
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    n = stats.completion_tokens
    return {"ttft_s": first - started, "tokens": n, "tps": (n - 1) / (end - first), "prompt_tokens": stats.prompt_tokens}


def raw(generator, text: str, tokens: int) -> dict:
    from transformers import TextIteratorStreamer

    model, tokenizer = generator.model, generator.tokenizer
    ids = tokenizer(text, return_tensors="pt")
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
    kwargs = dict(**ids, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, streamer=streamer)
    started = time.perf_counter()
    worker = threading.Thread(target=model.generate, kwargs=kwargs)
    worker.start()
    first = None
    for piece in streamer:
        if first is None and piece:
            first = time.perf_counter()
    worker.join()
    end = time.perf_counter()
    return {"ttft_s": first - started, "tokens": tokens, "tps": (tokens - 1) / (end - first)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--docs", type=int, default=3, choices=range(0, len(DOCS) + 1))
    args = p.parse_args()
    settings = Settings(home=common.CACHE_ROOT, generator={"cache_dir": str(common.CACHE_ROOT / "models")})
    started = time.perf_counter()
    generator = build_generator(settings)
    load_s = time.perf_counter() - started
    generator.eos_ids = set()  # decode the full cap, like min_new_tokens on the raw side
    text = render_prompt(args.docs)
    raw(generator, text, 2)  # warm-up (first-call allocations)
    rows = []
    for repeat in range(args.repeats):
        a, b = ours(generator, text, args.max_new_tokens), raw(generator, text, args.max_new_tokens)
        rows.append({"ours": a, "raw": b})
        common.console.print(f"  {repeat + 1}/{args.repeats}: ours ttft {a['ttft_s']:.2f} s {a['tps']:.2f} tok/s | "
                             f"raw ttft {b['ttft_s']:.2f} s {b['tps']:.2f} tok/s", style="dim")
    med = lambda side, key: statistics.median(r[side][key] for r in rows)  # noqa: E731
    summary = {
        "prompt_tokens": rows[0]["ours"]["prompt_tokens"], "new_tokens": args.max_new_tokens, "load_s": load_s,
        "ours_ttft_s": med("ours", "ttft_s"), "raw_ttft_s": med("raw", "ttft_s"),
        "ours_tokens_per_s": med("ours", "tps"), "raw_tokens_per_s": med("raw", "tps"),
        "tokens_per_s_ratio": med("ours", "tps") / med("raw", "tps"), "samples": len(rows),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "load_average_1min": os.getloadavg()[0],
    }
    common.console.print(common.table(
        f"Backend decode loop vs raw model.generate (median of {len(rows)}; {summary['prompt_tokens']}-token prompt, "
        f"{args.max_new_tokens} new tokens, greedy, CPU)",
        ["metric", "ours", "raw", "ratio"],
        [["time to first token s", summary["ours_ttft_s"], summary["raw_ttft_s"],
          summary["ours_ttft_s"] / summary["raw_ttft_s"]],
         ["tokens/s", summary["ours_tokens_per_s"], summary["raw_tokens_per_s"], summary["tokens_per_s_ratio"]]]))
    path = common.write_json("generation_raw", {"summary": summary, "rows": rows, "environment": common.environment()})
    common.console.print(f"wrote {path} (model load {load_s:.1f} s)")
    generator.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
