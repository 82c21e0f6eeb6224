"""Bootstrap intervals and paired comparisons over per-question scores.

Scores per question are not normally distributed (many 0/1 values, bounded in [0, 1]), so
intervals come from resampling questions rather than from a t-test. numpy only: a percentile
bootstrap is 10 lines, and scipy's `bootstrap` gives the same numbers more slowly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000


def mean_ci(values: list[float], seed: int = 0, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile-bootstrap interval of the mean; None for fewer than two values."""
    data = np.asarray(values, dtype=float)
    if data.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(RESAMPLES, data.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


@dataclass
class PairedDelta:
    delta: float  # mean(b) - mean(a) over the shared questions
    low: float
    high: float
    p_value: float  # two-sided: how often the resampled delta falls on the other side of zero
    n: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0


def paired_delta(a: list[float], b: list[float], seed: int = 0, level: float = 0.95) -> PairedDelta:
    """Paired bootstrap of mean(b - a): the same questions resampled for both runs."""
    diff = np.asarray(b, dtype=float) - np.asarray(a, dtype=float)
    if diff.size == 0:
        return PairedDelta(0.0, 0.0, 0.0, 1.0, 0)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(RESAMPLES, diff.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    observed = float(diff.mean())
    if observed == 0 and not diff.any():
        return PairedDelta(0.0, 0.0, 0.0, 1.0, int(diff.size))
    other_side = float(np.mean(means <= 0)) if observed > 0 else float(np.mean(means >= 0))
    return PairedDelta(observed, float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)),
                       min(1.0, 2 * other_side), int(diff.size))
