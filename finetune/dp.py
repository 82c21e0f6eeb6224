"""Differentially private LoRA training (DP-SGD): Poisson-sampled lots, per-example clipping, Gaussian noise, and
opacus' RDP accountant for the noise calibration and the ε actually spent.

Per-example gradients come from one backward pass per example (a micro-batch of one), which gives the exact
per-example gradient of everything the loss contains, including the anchor term's pass through the base model
with the adapter disabled. Why not opacus' GradSampleModule: its hooks compute per-sample gradients layer by
layer from activations and do not follow peft's `disable_adapter` pass or `logits_to_keep`; the training loop of
this project already runs one example per forward pass on the CPU (batch_size 1), so micro-batching costs little.
opacus does what must not be hand-rolled: the privacy accounting.

What DP changes besides the step: examples are drawn by Poisson sampling (each one joins a lot with probability
q = lot size / N), as the accountant assumes; the best-validation-loss choice and early stopping are off (choosing
by private validation data would spend privacy the accountant does not count): the final weights are the result.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


class PrivacyError(ValueError):
    """The requested (ε, δ) cannot be reached with these data and this recipe; the message says why."""


@dataclass
class PrivacyPlan:
    target_epsilon: float
    delta: float
    max_grad_norm: float  # per-example clipping norm C
    noise_multiplier: float  # σ: noise std is σ·C on the sum of clipped gradients
    sample_rate: float  # q: chance each example joins a lot
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(target_epsilon: float, delta: float, max_grad_norm: float, lot_size: int, examples: int, epochs: int,
         max_steps: int = 0) -> PrivacyPlan:
    """The noise multiplier that spends at most `target_epsilon` over the run, or PrivacyError."""
    from opacus.accountants.utils import get_noise_multiplier

    if target_epsilon <= 0:
        raise PrivacyError(f"ε must be positive, got {target_epsilon}")
    if not 0 < delta < 1:
        raise PrivacyError(f"δ must be between 0 and 1, got {delta}")
    if delta >= 1 / examples:
        raise PrivacyError(f"δ = {delta:g} is not below 1/N = 1/{examples}: such a δ allows leaking a whole example; "
                           f"use δ < {1 / examples:.2g}")
    sample_rate = min(1.0, lot_size / examples)
    steps = max(1, math.ceil(epochs / sample_rate))
    if max_steps:
        steps = min(steps, max_steps)
    try:
        sigma = get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=sample_rate,
                                     steps=steps, accountant="rdp")
    except ValueError as exc:  # opacus: "The privacy budget is too low."
        raise PrivacyError(f"ε = {target_epsilon:g} cannot be reached with δ = {delta:g} over {steps} steps at "
                           f"sampling rate {sample_rate:.3g} ({exc}); raise ε, train fewer epochs or on more examples") from None
    chosen = PrivacyPlan(target_epsilon, delta, max_grad_norm, float(sigma), sample_rate, steps)
    certified = spent(chosen, steps)
    # opacus' search stops at its largest σ without raising for some settings; at such σ the RDP bound over its
    # default orders is not valid (it can come out negative). Only a σ whose ε the accountant certifies is used.
    if not 0 < certified <= target_epsilon * (1 + 0.01):
        raise PrivacyError(f"ε = {target_epsilon:g} cannot be reached with δ = {delta:g} over {steps} steps at sampling "
                           f"rate {sample_rate:.3g}: the accountant certifies no noise level for it (σ = {sigma:g} gives "
                           f"ε = {certified:.3g}); raise ε, train fewer epochs or on more examples")
    return chosen


def spent(privacy: PrivacyPlan, steps: int) -> float:
    """ε the RDP accountant reports for `steps` noisy steps of this plan (at its δ)."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(privacy.noise_multiplier, privacy.sample_rate, steps)] if steps else []
    return float(accountant.get_epsilon(privacy.delta)) if steps else 0.0


class DpStep:
    """One DP-SGD optimizer step: clip each example's gradient to C, sum, add N(0, (σC)²), divide by the expected
    lot size (q·N, not the sampled size, which would leak it)."""

    def __init__(self, torch, params: list, privacy: PrivacyPlan, examples: int, seed: int):
        self.torch = torch
        self.params = params
        self.privacy = privacy
        self.expected_lot = privacy.sample_rate * examples
        self.generator = torch.Generator().manual_seed(seed)

    def lot(self, examples: int) -> list[int]:
        """Poisson sampling: each example joins with probability q (the lot may be empty)."""
        draws = self.torch.rand(examples, generator=self.generator)
        return [i for i in range(examples) if float(draws[i]) < self.privacy.sample_rate]

    def gradients(self, losses) -> float:
        """Set each parameter's .grad to the noisy mean of clipped per-example gradients; returns the mean loss.
        `losses` yields one scalar loss per example of the lot."""
        torch, c = self.torch, self.privacy.max_grad_norm
        total = [torch.zeros_like(p) for p in self.params]
        seen, loss_sum = 0, 0.0
        for loss in losses:
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
            grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, self.params)]
            norm = float(torch.sqrt(sum((g.float() ** 2).sum() for g in grads)))
            scale = min(1.0, c / (norm + 1e-12))
            for t, g in zip(total, grads):
                t.add_(g, alpha=scale)
            seen, loss_sum = seen + 1, loss_sum + float(loss.detach())
        for p, t in zip(self.params, total):
            noise = torch.normal(0.0, self.privacy.noise_multiplier * c, size=t.shape, generator=self.generator)
            p.grad = ((t + noise.to(t.dtype)) / self.expected_lot).to(p.dtype)
        return loss_sum / max(seen, 1)
