"""The LoRA training loop: answer-only loss, validation per epoch, early stopping, resumable checkpoints.

Why not `transformers.Trainer`: it computes logits for every position, and with Gemma's 262k
vocabulary the lm head dominates a CPU step; we ask the model only for the positions that predict
answer tokens (`logits_to_keep`). The loop is small enough to own, and resuming is exact: the
checkpoint holds the LoRA weights, optimizer, scheduler, RNG state and the position in the epoch.
"""

from __future__ import annotations

import math
import random
import resource
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from finetune.recipe import LoraRecipe
from finetune.training_data import IGNORE, Encoded, collate

# (optimizer steps done, total steps, latest training loss)
Progress = Callable[[int, int, float], None]


@dataclass
class TrainResult:
    steps: int = 0
    epochs_completed: int = 0
    train_losses: list[float] = field(default_factory=list)  # mean training objective per epoch (loss + anchor term)
    val_losses: list[float] = field(default_factory=list)  # per epoch
    best_val_loss: float | None = None
    best_epoch: int | None = None
    stopped_early: bool = False
    privacy: dict | None = None  # DP-SGD: the plan (target ε, δ, σ, q, C) and the ε the accountant reports spent
    anchor_kl: list[float] = field(default_factory=list)  # mean KL(base || adapter) at anchor positions per epoch, nats
    tokens: int = 0  # tokens through the forward pass (prompt + answer)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0


class LoraTrainer:
    def __init__(self, model, recipe: LoraRecipe, train: list[Encoded], val: list[Encoded], work_dir: Path, pad_id: int):
        import torch
        from transformers import get_linear_schedule_with_warmup

        self.torch = torch
        self.model = model
        self.recipe = recipe
        self.train_set = train
        self.val_set = val
        self.work_dir = work_dir
        self.pad_id = pad_id
        self.batches_per_epoch = (len(train) + recipe.batch_size - 1) // recipe.batch_size
        steps_per_epoch = max(1, (self.batches_per_epoch + recipe.gradient_accumulation - 1) // recipe.gradient_accumulation)
        self.total_steps = steps_per_epoch * recipe.epochs
        if recipe.max_steps:
            self.total_steps = min(self.total_steps, recipe.max_steps)
        self.params = [p for p in model.parameters() if p.requires_grad]  # the LoRA weights
        self.optimizer = torch.optim.AdamW(self.params, lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
        # Rounded up: a short run (the demo's 18 steps x 0.05) still warms up for a step instead of none.
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, math.ceil(recipe.warmup_ratio * self.total_steps), self.total_steps
        )
        self.result = TrainResult()
        self.epoch, self.batch_in_epoch, self.patience_used = 0, 0, 0
        self._drift: list[float] = []  # anchor KL of the training batches since the epoch began

    # --- the loop ---------------------------------------------------------------------------------
    def train(self, resume: bool = False, progress: Progress | None = None, stop_after_steps: int = 0) -> TrainResult:
        """Train to the end (or `stop_after_steps` optimizer steps, to simulate an interruption)."""
        torch, recipe = self.torch, self.recipe
        torch.manual_seed(recipe.seed)
        if recipe.dp_epsilon:
            if resume:
                raise ValueError("a DP run cannot be resumed (its accounting starts over); run it again")
            return self._train_private(progress)
        if resume:
            self._load_checkpoint()
        started = time.monotonic() - self.result.seconds
        steps_this_call, loss_sum, loss_count = 0, 0.0, 0
        self.model.train()
        while self.epoch < recipe.epochs and self.result.steps < self.total_steps:
            order = list(range(len(self.train_set)))
            random.Random(recipe.seed + self.epoch).shuffle(order)
            batches = [order[i : i + recipe.batch_size] for i in range(0, len(order), recipe.batch_size)]
            while self.batch_in_epoch < len(batches):
                group = batches[self.batch_in_epoch : self.batch_in_epoch + recipe.gradient_accumulation]
                loss = self._step([[self.train_set[i] for i in b] for b in group])
                self.batch_in_epoch += len(group)
                self.result.steps += 1
                steps_this_call += 1
                loss_sum, loss_count = loss_sum + loss, loss_count + 1
                self.result.seconds = time.monotonic() - started
                if progress:
                    progress(self.result.steps, self.total_steps, loss)
                done = self.result.steps >= self.total_steps
                if self.result.steps % recipe.checkpoint_every_steps == 0 and not done:
                    self._save_checkpoint()
                if stop_after_steps and steps_this_call >= stop_after_steps:
                    self._save_checkpoint()
                    return self.result
                if done:
                    break
            self.result.train_losses.append(round(loss_sum / max(loss_count, 1), 5))
            if self._drift:
                self.result.anchor_kl.append(round(sum(self._drift) / len(self._drift), 6))
            loss_sum, loss_count, self._drift = 0.0, 0, []
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
            self.result.epochs_completed = self.epoch
            if self._end_of_epoch():
                self.result.stopped_early = self.epoch < recipe.epochs and self.result.steps < self.total_steps
                break
        self.result.seconds = time.monotonic() - started
        self.result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        shutil.rmtree(self.work_dir / "checkpoint", ignore_errors=True)
        if not (self.work_dir / "best").is_dir():  # no validation set: the final weights are the result
            self.model.save_pretrained(self.work_dir / "best")
        return self.result

    def _train_private(self, progress: Progress | None) -> TrainResult:
        """DP-SGD (finetune/dp.py): Poisson lots, per-example clipping, noise; no best-epoch choice, no early stop."""
        from finetune.dp import DpStep, plan, spent

        recipe, n = self.recipe, len(self.train_set)
        delta = recipe.dp_delta or 1 / (10 * n)
        privacy = plan(recipe.dp_epsilon, delta, recipe.dp_max_grad_norm, recipe.batch_size * recipe.gradient_accumulation,
                       n, recipe.epochs, recipe.max_steps)
        self.total_steps = privacy.steps
        self.scheduler = self._schedule(privacy.steps)
        step = DpStep(self.torch, self.params, privacy, n, recipe.seed)
        started = time.monotonic()
        self.model.train()
        losses: list[float] = []
        for number in range(1, privacy.steps + 1):
            lot = step.lot(n)
            loss = step.gradients(self.loss([self.train_set[i]]) for i in lot)
            self.result.tokens += sum(len(self.train_set[i].input_ids) for i in lot)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.result.steps = number
            losses.append(loss)
            if progress:
                progress(number, privacy.steps, loss)
        self.result.epochs_completed = recipe.epochs
        self.result.train_losses.append(round(sum(losses) / max(len(losses), 1), 5))
        val = self.validation_loss()  # reported only: choosing by it would spend uncounted privacy
        if val is not None:
            self.result.val_losses.append(round(val, 5))
        self.result.privacy = {**privacy.to_dict(), "epsilon_spent": round(spent(privacy, privacy.steps), 4),
                               "accountant": "rdp (opacus 1.6.0)", "examples": n}
        self.result.seconds = time.monotonic() - started
        self.result.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.model.save_pretrained(self.work_dir / "best")
        return self.result

    def _schedule(self, steps: int):
        from transformers import get_linear_schedule_with_warmup

        return get_linear_schedule_with_warmup(self.optimizer, math.ceil(self.recipe.warmup_ratio * steps), steps)

    def _step(self, group: list[list[Encoded]]) -> float:
        total = 0.0
        for batch in group:
            loss = self.loss(batch)
            (loss / len(group)).backward()
            total += float(loss.detach())
            self.result.tokens += sum(len(e.input_ids) for e in batch)
        self.torch.nn.utils.clip_grad_norm_(self.params, self.recipe.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / len(group)

    def loss(self, batch: list[Encoded], anchored: bool = True):
        """Mean cross-entropy over the answer tokens of `batch`, plus (when `anchored`) the anchor term.

        Every target ends the same way (" [n]" + EOS, or the refusal), tokens the base model finds
        unlikely there. Seen only at answer positions, the cheapest way down for the loss is a
        context-free boost of those tokens, which then wins at the first answer position, where
        the model is least sure: the demo adapter raised P(EOS) 28-fold at every prompt position
        and answered 10 of 24 scorecard questions with nothing. The anchor term is the KL divergence
        from the base model's next-token distribution at a few prompt positions (where the adapter
        should change nothing), scaled as if all prompt positions were anchors and each weighed like
        one answer token; a boost that is not tied to the answer then costs more than it gains.
        """
        torch, device = self.torch, self.recipe.device
        weight = self.recipe.anchor_weight if anchored else 0.0
        tensors = collate(batch, self.pad_id, self.recipe.anchor_positions if weight else 0)
        keep, anchor, targets = tensors["keep"], tensors["anchor"], tensors["targets"].to(device)
        inputs = {"input_ids": tensors["input_ids"].to(device), "attention_mask": tensors["attention_mask"].to(device)}
        logits = self.model(**inputs, logits_to_keep=torch.cat([keep, anchor]).to(device)).logits.float()
        answer = logits[:, : len(keep)]
        cross_entropy = torch.nn.functional.cross_entropy(
            answer.reshape(-1, answer.shape[-1]), targets.reshape(-1), ignore_index=IGNORE
        )
        if not len(anchor):
            return cross_entropy
        upto = int(anchor.max()) + 1  # causal: the answer tokens after the last anchor change nothing there
        with torch.no_grad(), self.model.disable_adapter():
            base = self.model(**{k: v[:, :upto] for k, v in inputs.items()}, logits_to_keep=anchor.to(device)).logits.float()
        drift = torch.nn.functional.kl_div(  # KL(base || adapter) per anchor, in nats
            logits[:, len(keep) :].log_softmax(-1), base.log_softmax(-1), log_target=True, reduction="none"
        ).sum(-1).mean()
        self._drift.append(float(drift.detach()))
        scale = tensors["prompt_positions"] / max(int((targets != IGNORE).sum()), 1)
        return cross_entropy + weight * scale * drift

    def validation_loss(self) -> float | None:
        if not self.val_set:
            return None
        self.model.eval()
        total, tokens = 0.0, 0
        with self.torch.no_grad():
            for e in self.val_set:
                n = e.answer_tokens
                total += float(self.loss([e], anchored=False)) * n
                tokens += n
        self.model.train()
        return total / max(tokens, 1)

    def _end_of_epoch(self) -> bool:
        """Validate, keep the best adapter; True when early stopping says stop."""
        val = self.validation_loss()
        if val is None:
            return False
        self.result.val_losses.append(round(val, 5))
        best = self.result.best_val_loss
        if best is None or val < best - 1e-4:
            self.result.best_val_loss, self.result.best_epoch = round(val, 5), self.epoch
            self.patience_used = 0
            self.model.save_pretrained(self.work_dir / "best")
            return False
        self.patience_used += 1
        return bool(self.recipe.early_stopping_patience) and self.patience_used >= self.recipe.early_stopping_patience

    # --- checkpoints ------------------------------------------------------------------------------
    def _save_checkpoint(self) -> None:
        torch = self.torch
        target = self.work_dir / "checkpoint"
        tmp = self.work_dir / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        trainable = {n: p.detach().cpu() for n, p in self.model.named_parameters() if p.requires_grad}
        torch.save({
            "trainable": trainable,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "patience_used": self.patience_used,
            "drift": list(self._drift),
            "result": asdict(self.result),
        }, tmp / "state.pt")
        # Swap in the new checkpoint only once it is complete: a kill mid-save keeps the old one.
        old = self.work_dir / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)

    def _load_checkpoint(self) -> None:
        path = self.work_dir / "checkpoint" / "state.pt"
        if not path.is_file() and (self.work_dir / "checkpoint.old" / "state.pt").is_file():
            path = self.work_dir / "checkpoint.old" / "state.pt"  # killed between the two renames
        if not path.is_file():
            raise FileNotFoundError(f"no checkpoint to resume in {self.work_dir}")
        state = self.torch.load(path, weights_only=True)  # tensors, numbers, lists and dicts only: no pickle code
        params = dict(self.model.named_parameters())
        with self.torch.no_grad():
            for name, value in state["trainable"].items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.torch.set_rng_state(state["rng"])
        self.epoch, self.batch_in_epoch = state["epoch"], state["batch_in_epoch"]
        self.patience_used = state["patience_used"]
        self._drift = list(state.get("drift", []))
        self.result = TrainResult(**state["result"])
