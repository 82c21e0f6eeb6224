"""Merge a registry adapter into its base weights: a standalone checkpoint for vLLM, TGI or llama.cpp.

The unmerged adapter stays in the registry for multi-adapter serving; the merged copy is written
to a new directory (refused if it exists and is not empty, so nothing is overwritten).
"""

from __future__ import annotations

import json
from pathlib import Path

from assistant.runtime.checkpoint import resolve_model_dir
from assistant.settings import Settings
from finetune.registry import AdapterVersion


def export_merged(settings: Settings, version: AdapterVersion, out_dir: Path, dtype: str = "float32") -> Path:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if out_dir.exists() and any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} exists and is not empty; choose a new directory")
    base_dir = resolve_model_dir(settings.generator.model, settings.models_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    merged = PeftModel.from_pretrained(model, str(version.path)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    (out_dir / "ragtune_adapter.json").write_text(json.dumps(
        {"merged_from": version.ref, "base_model": version.metadata.get("base_model"),
         "prompt_format": version.metadata.get("prompt_format")}, indent=2, default=str))
    return out_dir
