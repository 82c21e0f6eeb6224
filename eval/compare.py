"""Two scorecards side by side: per variant and metric, the paired difference with its bootstrap
interval over the questions both runs asked, and the questions that got worse."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from eval.eval_job import load_run
from eval.metrics import CATALOGUE
from eval.stats import PairedDelta, paired_delta

WORSE_BY = 0.15  # a per-question drop in semantic similarity (or a new false refusal) worth listing


@dataclass
class MetricDelta:
    variant: str
    metric: str
    before: float
    after: float
    delta: PairedDelta

    @property
    def regressed(self) -> bool:
        """Significantly worse in the metric's own direction."""
        higher = CATALOGUE[self.metric].higher_is_better if self.metric in CATALOGUE else True
        return self.delta.high < 0 if higher else self.delta.low > 0

    def to_dict(self) -> dict:
        return {**{k: v for k, v in asdict(self).items() if k != "delta"}, **asdict(self.delta),
                "significant": self.delta.significant, "regressed": self.regressed}


@dataclass
class Comparison:
    deltas: list[MetricDelta]
    worse: list[dict]  # {variant, id, question, before, after, why}

    @property
    def regressions(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.regressed]


def compare(run_a: Path, run_b: Path, seed: int = 0) -> Comparison:
    _, rows_a = load_run(run_a)
    _, rows_b = load_run(run_b)
    index_a = {(r["variant"], r["id"]): r for r in rows_a}
    deltas: list[MetricDelta] = []
    worse: list[dict] = []
    for variant in sorted({r["variant"] for r in rows_b} & {r["variant"] for r in rows_a}):
        pairs = [(index_a[(variant, r["id"])], r) for r in rows_b if r["variant"] == variant and (variant, r["id"]) in index_a]
        metrics = [m for m in CATALOGUE if any(m in a["metrics"] and m in b["metrics"] for a, b in pairs)]
        for metric in metrics:
            both = [(a["metrics"][metric], b["metrics"][metric]) for a, b in pairs
                    if a["metrics"].get(metric) is not None and b["metrics"].get(metric) is not None]
            if not both:
                continue
            before, after = [x for x, _ in both], [y for _, y in both]
            deltas.append(MetricDelta(variant, metric, sum(before) / len(before), sum(after) / len(after),
                                      paired_delta(before, after, seed)))
        for a, b in pairs:
            why = _worse(a, b)
            if why:
                worse.append({"variant": variant, "id": b["id"], "question": b["question"], "why": why,
                              "before": a["answer"], "after": b["answer"]})
    return Comparison(deltas, worse)


def _worse(a: dict, b: dict) -> str:
    if a["answerable"]:
        if b["refused"] and not a["refused"]:
            return "now refuses an answerable question"
        sa, sb = a["metrics"].get("semantic_similarity"), b["metrics"].get("semantic_similarity")
        if sa is not None and sb is not None and sa - sb >= WORSE_BY:
            return f"semantic similarity {sa:.2f} -> {sb:.2f}"
        return ""
    return "now answers an unanswerable question" if a["refused"] and not b["refused"] else ""
