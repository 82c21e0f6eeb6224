"""A LoRA training recipe: every hyperparameter in one typed YAML file (`--config lora-cpu.yaml`).

The shipped recipes live in `finetune/recipes/`; a user file overrides any field of the recipe it
names with `base: lora-cpu` (or none = the defaults below).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

RECIPES_DIR = Path(__file__).parent / "recipes"


class LoraRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("custom", description="Recipe name, recorded in adapter metadata.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], description="Linear layers LoRA adapts."
    )
    rank: int = Field(8, ge=1, description="LoRA rank r.")
    alpha: float = Field(16, gt=0, description="LoRA alpha (scale = alpha / rank).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA branch.")
    learning_rate: float = Field(2e-4, gt=0, description="Peak AdamW learning rate.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Share of optimizer steps with linear warm-up.")
    epochs: int = Field(2, ge=1, description="Passes over the training set.")
    batch_size: int = Field(1, ge=1, description="Examples per forward pass.")
    gradient_accumulation: int = Field(4, ge=1, description="Forward passes per optimizer step.")
    max_seq_tokens: int = Field(1024, ge=32, description="Examples longer than this (prompt + target) are skipped.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    max_train_examples: int = Field(0, ge=0, description="Use only the first N training examples; 0 = all.")
    max_val_examples: int = Field(0, ge=0, description="Use only the first N validation examples; 0 = all.")
    max_steps: int = Field(0, ge=0, description="Stop after this many optimizer steps; 0 = run all epochs.")
    anchor_weight: float = Field(
        1.0, ge=0, description="Weight of the KL divergence from the base model at prompt positions, per prompt token "
        "relative to one answer token; keeps the adapter from boosting EOS or the refusal everywhere. 0 = off."
    )
    anchor_positions: int = Field(
        32, ge=1, description="Prompt positions per batch where the anchor term is measured (each costs logits over "
        "the vocabulary, plus one forward pass without the adapter per batch)."
    )
    early_stopping_patience: int = Field(
        1, ge=0, description="Epochs without validation-loss improvement before stopping; 0 = never stop early."
    )
    checkpoint_every_steps: int = Field(20, ge=1, description="Optimizer steps between resumable checkpoints.")
    seed: int = Field(0, description="Seed for LoRA init, dropout and data order.")
    device: str = Field("cpu", description="Torch device (`cpu`, `cuda`).")
    dtype: Literal["float32", "bfloat16", "float16"] = Field("float32", description="Training dtype of the base weights.")
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = torch's default (all cores).")
    dp_epsilon: float = Field(0.0, ge=0, description="Differential privacy: train with DP-SGD to spend at most this ε "
                              "(finetune/dp.py); 0 = no DP.")
    dp_delta: float = Field(0.0, ge=0, lt=1, description="DP's δ; must be below 1 / training examples. 0 with "
                            "dp_epsilon set = 1 / (10 × training examples).")
    dp_max_grad_norm: float = Field(1.0, gt=0, description="DP's per-example gradient clipping norm C.")


def load_recipe(source: str | Path | None) -> LoraRecipe:
    """A shipped recipe by name ("lora-cpu"), a YAML path, or None for lora-cpu."""
    source = source or "lora-cpu"
    path = Path(source)
    if not path.is_file():
        path = RECIPES_DIR / f"{Path(str(source)).stem}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
            raise ValueError(f"no recipe {source!r}: give a YAML file or one of {known}")
    data = yaml.safe_load(path.read_text()) or {}
    base = data.pop("base", None)
    if base:
        merged = load_recipe(base).model_dump()
        merged.update(data)
        data = merged
    return LoraRecipe.model_validate(data)
