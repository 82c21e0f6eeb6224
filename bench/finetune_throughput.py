"""LoRA training throughput on CPU: ragtune's trainer vs a plain peft training loop, same data and model.

    .venv/bin/python bench/finetune_throughput.py --data DATASET_DIR [--examples 16] [--recipe lora-cpu]

DATASET_DIR is a `ragtune synth` output (train.jsonl). Both variants train Gemma 3 270M with the
recipe's LoRA config on the same first N examples, batch 1, gradient accumulation from the recipe,
each in its own process so peak RSS is its own. The plain loop is what a peft tutorial does: the
model's forward with `labels` (full-vocabulary logits at every position) and its built-in loss.
Prints tokens/s and peak RSS for both and the ratio; writes bench/results/finetune_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

import _common as common


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a dataset directory written by `ragtune synth`")
    p.add_argument("--examples", type=int, default=16, help="training examples per variant (after one warm-up)")
    p.add_argument("--recipe", default="lora-cpu", help="recipe name or YAML")
    p.add_argument("--variant", choices=["ours", "raw"], help=argparse.SUPPRESS)  # child process mode
    return p.parse_args(argv)


def run_variant(args: argparse.Namespace) -> dict:
    import torch

    from assistant.settings import Settings
    from finetune.finetune_job import load_base
    from finetune.recipe import load_recipe
    from finetune.trainer import LoraTrainer
    from finetune.training_data import encode_all, read_jsonl

    recipe = load_recipe(args.recipe).model_copy(update={"epochs": 1, "max_train_examples": 0})
    settings = Settings(home=common.CACHE_ROOT / "finetune-bench", generator={"cache_dir": common.CACHE_ROOT / "models"})
    tokenizer, model = load_base(settings, recipe)
    rows, _ = encode_all(tokenizer, read_jsonl(args.data / "train.jsonl"), recipe.max_seq_tokens, args.examples + 1)
    warmup, rows = rows[0], rows[1:]
    pad = tokenizer.pad_token_id
    trainer = LoraTrainer(model, recipe, rows, [], common.CACHE_ROOT / "finetune-bench" / "work", pad)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=recipe.learning_rate)
    model.train()

    def raw_step(example) -> None:
        ids = torch.tensor([example.input_ids])
        loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.tensor([example.labels])).loss
        loss.backward()

    if args.variant == "ours":  # the whole trainer: scheduler, clipping, checkpoints, final save
        trainer.loss([warmup]).backward()
        model.zero_grad()
        started = time.perf_counter()
        trainer.train()
    else:
        raw_step(warmup)
        optimizer.zero_grad()
        started = time.perf_counter()
        for number, example in enumerate(rows, start=1):
            raw_step(example)
            if number % recipe.gradient_accumulation == 0:
                optimizer.step()
                optimizer.zero_grad()
    seconds = time.perf_counter() - started
    tokens = sum(len(e.input_ids) for e in rows)
    return {"variant": args.variant, "examples": len(rows), "tokens": tokens, "seconds": seconds,
            "tokens_per_s": tokens / seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args)))
        return 0
    results = {}
    for variant in ("raw", "ours"):
        out = subprocess.run([sys.executable, __file__, "--data", str(args.data), "--examples", str(args.examples),
                              "--recipe", args.recipe, "--variant", variant], capture_output=True, text=True)
        if out.returncode:
            sys.stderr.write(out.stderr)
            return out.returncode
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    raw, ours = results["raw"], results["ours"]
    rows = [[name, common.fmt(raw[key]), common.fmt(ours[key]), common.fmt(ours[key] / raw[key])]
            for name, key in [("tokens/s", "tokens_per_s"), ("peak RSS MiB", "peak_rss_mb"), ("seconds", "seconds")]]
    common.console.print(common.table(
        f"LoRA training on CPU, {ours['examples']} examples ({ours['tokens']} tokens), {ours['threads']} threads",
        ["metric", "plain peft loop", "ragtune trainer", "ratio ours/raw"], rows))
    path = common.write_json("finetune_throughput", {"raw": raw, "ours": ours, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
