"""`ragtune finetune`: a LoRA adapter trained on a synthetic dataset, published to the registry.

Recipe: setup (base model, tokenizer, dataset, recipe; the resolved config written beside the
output) → train (resumable) → save the best adapter and its metadata as the next registry version.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from assistant import prompt
from assistant.runtime.checkpoint import packaged_gguf, resolve_model_dir
from assistant.settings import Settings
from finetune.dataset_card import read_card
from finetune.synth_job import dataset_hash
from finetune.recipe import LoraRecipe
from finetune.registry import AdapterRegistry, AdapterVersion, check_name
from finetune.trainer import LoraTrainer, Progress, TrainResult
from finetune.training_data import encode_all, read_jsonl


def load_base(settings: Settings, recipe: LoraRecipe):
    """(tokenizer, LoRA-wrapped model) with LoRA weights initialised from the recipe's seed."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if recipe.threads:
        torch.set_num_threads(recipe.threads)
    directory = resolve_model_dir(settings.generator.model, settings.models_dir)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, recipe.dtype)).to(recipe.device)
    torch.manual_seed(recipe.seed)
    config = LoraConfig(r=recipe.rank, lora_alpha=recipe.alpha, lora_dropout=recipe.dropout,
                        target_modules=list(recipe.target_modules), task_type="CAUSAL_LM")
    return tokenizer, get_peft_model(model, config)


def base_model_fingerprint(model: str) -> dict[str, str]:
    """Which base weights an adapter belongs to: the GGUF (or model directory config+weights) hash."""
    path = Path(model).expanduser()
    if path.is_dir():
        files = sorted([path / "config.json", *path.glob("*.safetensors")])
    else:
        files = [path if path.suffix == ".gguf" else packaged_gguf(model)]
    digest = hashlib.sha256()
    for file in files:
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return {"id": model, "sha256": digest.hexdigest(), "files": ", ".join(f.name for f in files)}


def code_version() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = ""
    from importlib.metadata import PackageNotFoundError, version

    try:
        package = version("ragtune")
    except PackageNotFoundError:
        package = "unknown"
    return f"ragtune {package}" + (f" ({rev})" if rev else "")


def run_finetune(
    settings: Settings,
    dataset: Path,
    recipe: LoraRecipe,
    name: str,
    resume: bool = False,
    progress: Progress | None = None,
    stop_after_steps: int = 0,
) -> tuple[AdapterVersion | None, TrainResult, Path]:
    """Train and publish. Returns (the new version, or None if stopped early by `stop_after_steps`,
    the training result, the work directory)."""
    # --- setup ---------------------------------------------------------------------------------
    registry = AdapterRegistry(settings.adapters_dir)
    check_name(name)
    if not (dataset / "train.jsonl").is_file():  # before loading a model for a minute
        raise FileNotFoundError(f"{dataset} holds no train.jsonl: give a directory written by `ragtune synth`")
    data_hash = dataset_hash(dataset)
    work = _resumable(registry, name, data_hash) if resume else None
    if resume and work is None:
        raise FileNotFoundError(f"no interrupted run of adapter {name!r} on this dataset to resume")
    if work is not None:  # a resumed run continues with the recipe it started with
        recipe = LoraRecipe.model_validate(yaml.safe_load((work / "config.yaml").read_text())["recipe"])
    work = work or registry.staging_dir(name)
    resolved = {"recipe": recipe.model_dump(), "dataset": str(dataset.resolve()), "dataset_sha256": data_hash,
                "base_model": settings.generator.model, "prompt_format": prompt.FORMAT_VERSION}
    (work / "config.yaml").write_text(yaml.safe_dump(resolved, sort_keys=False))
    tokenizer, model = load_base(settings, recipe)
    train, skipped_train = encode_all(tokenizer, read_jsonl(dataset / "train.jsonl"), recipe.max_seq_tokens,
                                      recipe.max_train_examples)
    val_path = dataset / "val.jsonl"
    val, skipped_val = encode_all(tokenizer, read_jsonl(val_path) if val_path.is_file() else [],
                                  recipe.max_seq_tokens, recipe.max_val_examples)
    if not train:
        raise ValueError(f"{dataset}/train.jsonl has no example of at most {recipe.max_seq_tokens} tokens")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # --- run -----------------------------------------------------------------------------------
    trainer = LoraTrainer(model, recipe, train, val, work, pad)
    result = trainer.train(resume=resume, progress=progress, stop_after_steps=stop_after_steps)
    if stop_after_steps and (work / "checkpoint").is_dir():
        return None, result, work

    # --- save ----------------------------------------------------------------------------------
    for file in (work / "best").iterdir():
        file.replace(work / file.name)
    (work / "best").rmdir()
    card = read_card(dataset)
    metadata: dict[str, Any] = {
        "base_model": base_model_fingerprint(settings.generator.model),
        "prompt_format": prompt.FORMAT_VERSION,
        "dataset": {"path": str(dataset.resolve()), "sha256": data_hash,
                    "train_examples": len(train), "val_examples": len(val),
                    "skipped_too_long": skipped_train + skipped_val,
                    "card": {k: card.get(k) for k in ("collection", "teacher", "filters", "examples",
                                                      "excluded_documents", "excluded_golden_sets")}},
        "hyperparameters": recipe.model_dump(),
        "training": {**asdict(result), "tokens_per_s": round(result.tokens_per_s, 1)},
        "privacy": result.privacy,  # DP-SGD's ε (target and spent, by the accountant) and δ; None without DP
        "code_version": code_version(),
        "created_at": time.time(),
        "eval": {},
    }
    (work / "train_result.json").write_text(json.dumps(metadata["training"], indent=2))
    return registry.publish(name, work, metadata), result, work


def _resumable(registry: AdapterRegistry, name: str, data_hash: str) -> Path | None:
    """The newest interrupted run of `name` on the same dataset (a staging dir with a checkpoint)."""
    folder = registry.root / name
    candidates = sorted(folder.glob(".staging-*"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []
    for work in candidates:
        config = work / "config.yaml"
        has_checkpoint = (work / "checkpoint").is_dir() or (work / "checkpoint.old").is_dir()
        if has_checkpoint and config.is_file() and yaml.safe_load(config.read_text()).get("dataset_sha256") == data_hash:
            return work
    return None
