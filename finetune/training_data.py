"""Tokenized training examples with the loss on answer tokens only.

The prompt is tokenized exactly as the runtime tokenizes it (with the tokenizer's special tokens,
i.e. BOS), the completion without special tokens and followed by EOS so the model learns to stop.
Labels are -100 on every prompt token. A few prompt positions are kept as anchors: there the trainer
holds the adapter to the base model's next-token distribution (see `trainer.LoraTrainer.loss`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

IGNORE = -100


@dataclass
class Encoded:
    id: str
    input_ids: list[int]
    labels: list[int]

    @property
    def answer_tokens(self) -> int:
        return sum(label != IGNORE for label in self.labels)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def encode(tokenizer, example: dict) -> Encoded:
    prompt_ids = tokenizer(example["prompt"])["input_ids"]
    answer_ids = tokenizer(example["completion"], add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        answer_ids = [*answer_ids, tokenizer.eos_token_id]
    return Encoded(example.get("id", ""), prompt_ids + answer_ids, [IGNORE] * len(prompt_ids) + answer_ids)


def encode_all(tokenizer, examples: list[dict], max_tokens: int, limit: int = 0) -> tuple[list[Encoded], int]:
    """(encoded examples that fit `max_tokens`, how many were skipped as too long)."""
    kept, skipped = [], 0
    for example in examples:
        if limit and len(kept) >= limit:
            break
        encoded = encode(tokenizer, example)
        if len(encoded.input_ids) > max_tokens:
            skipped += 1
            continue
        kept.append(encoded)
    return kept, skipped


def collate(batch: list[Encoded], pad_id: int, anchors: int = 0):
    """Right-padded tensors, plus the positions whose logits the loss needs.

    `keep` holds every position t whose next token t+1 is an answer token in some row; the model
    computes logits only there (`logits_to_keep`), which on Gemma's 262k vocabulary saves most of
    the lm-head work of a full-sequence forward pass. `targets` are the labels at t+1 for those
    positions (IGNORE where that row has no answer token there). `anchor` holds up to `anchors`
    positions, evenly spaced (no randomness, so a resumed run is exact), whose next token is a
    prompt token in every row; `prompt_positions` counts such positions over the rows (the anchors
    stand for all of them).
    """
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(batch):
        ids[row, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[row, : len(e.input_ids)] = 1
        labels[row, : len(e.labels)] = torch.tensor(e.labels)
    answer_positions = (labels[:, 1:] != IGNORE).any(dim=0).nonzero().flatten()
    keep = answer_positions  # position t predicts token t+1
    targets = labels[:, keep + 1]
    # Position t predicts prompt token t+1 in every row while t+1 < the shortest prompt.
    shortest_prompt = min(len(e.input_ids) - e.answer_tokens for e in batch)
    span = max(shortest_prompt - 1, 0)
    count = min(anchors, span)
    anchor = torch.linspace(0, span - 1, count).round().long().unique() if count else torch.zeros(0, dtype=torch.long)
    prompt_positions = sum(len(e.input_ids) - e.answer_tokens - 1 for e in batch)
    return {"input_ids": ids, "attention_mask": mask, "keep": keep, "targets": targets, "anchor": anchor,
            "prompt_positions": prompt_positions}
