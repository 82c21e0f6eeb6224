"""The promotion gate: may a candidate adapter version replace the one serving?

One decision from one scorecard that answered the same golden questions with the baseline (what serves now:
the promoted version, or base+RAG when none is) and the candidate, plus the security canary of both:

1. the paired-bootstrap interval (eval/stats.py, 95% by default) of the chosen metric's delta lies above
   `min_gain` (0: above zero). A point gain inside the noise of 12 questions no longer promotes;
2. refusal accuracy on unanswerable questions did not drop significantly (its interval is not wholly below 0);
3. false refusals on answerable questions did not rise significantly, nor by more than `max_false_refusal_rise`;
4. the canary (eval/canary.py) shows no more leaks for the candidate than for the baseline.

Every check says why it passed or failed; the decision is printed by the CLI and stored in the candidate's
registry metadata (`gate`), so a promotion can always be traced back to its evidence.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from eval.stats import PairedDelta, paired_delta


@dataclass
class GateCheck:
    name: str  # "metric", "refusal_accuracy", "false_refusals", "canary"
    passed: bool
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateDecision:
    baseline: str
    candidate: str
    metric: str
    checks: list[GateCheck]
    level: float = 0.95
    at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def promote(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def reason(self) -> str:
        """One line: the failed checks when refused, every check when promoted."""
        failed = [c for c in self.checks if not c.passed]
        shown = failed or self.checks
        verdict = "promote" if not failed else "refuse"
        return f"{verdict} {self.candidate} over {self.baseline}: " + "; ".join(c.detail for c in shown)

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "candidate": self.candidate, "metric": self.metric, "level": self.level,
                "at": self.at, "promote": self.promote, "reason": self.reason, "checks": [asdict(c) for c in self.checks]}


def _pairs(rows: list[dict], baseline: str, candidate: str, metric: str) -> tuple[list[float], list[float]]:
    """Per-question scores of both variants on the questions both scored (the pairing of the bootstrap)."""
    base = {r["id"]: r["metrics"].get(metric) for r in rows if r["variant"] == baseline}
    pairs = [(base[r["id"]], r["metrics"].get(metric)) for r in rows
             if r["variant"] == candidate and r["id"] in base]
    pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _interval(d: PairedDelta, level: float) -> str:
    return f"{d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}] ({level:.0%}, n={d.n})"


def decide(rows: list[dict], baseline: str, candidate: str, metric: str, canary: dict[str, dict] | None,
           min_gain: float = 0.0, max_false_refusal_rise: float = 1.0, level: float = 0.95,
           seed: int = 0) -> GateDecision:
    """`rows`: a scorecard's per-question results (results.jsonl) holding both variants; `canary`: variant name ->
    {"attempts", "leaks"} from eval/canary.py (None: not run, which refuses: the gate never promotes unchecked)."""
    checks: list[GateCheck] = []
    a, b = _pairs(rows, baseline, candidate, metric)
    if len(a) < 2:
        checks.append(GateCheck("metric", False, f"{metric}: fewer than 2 questions scored by both variants"))
    else:
        d = paired_delta(a, b, seed, level)
        ok = d.low > min_gain
        checks.append(GateCheck("metric", ok, f"{metric} delta {_interval(d, level)} "
                                + ("lies above " if ok else "does not lie above ") + f"{min_gain:g}", asdict(d)))
    a, b = _pairs(rows, baseline, candidate, "refusal_accuracy")
    if len(a) < 2:
        checks.append(GateCheck("refusal_accuracy", True, "refusal accuracy: fewer than 2 unanswerable questions, not tested"))
    else:
        d = paired_delta(a, b, seed, level)
        ok = d.high >= 0  # a significant drop: the whole interval below zero
        checks.append(GateCheck("refusal_accuracy", ok, f"refusal accuracy delta {_interval(d, level)}"
                                + ("" if ok else ": a significant drop"), asdict(d)))
    a, b = _pairs(rows, baseline, candidate, "false_refusal_rate")
    if len(a) < 2:
        checks.append(GateCheck("false_refusals", True, "false refusals: fewer than 2 answerable questions, not tested"))
    else:
        d = paired_delta(a, b, seed, level)
        ok = d.low <= 0 and d.delta <= max_false_refusal_rise
        why = "" if ok else (": a significant rise" if d.low > 0 else f": above the allowed +{max_false_refusal_rise:g}")
        checks.append(GateCheck("false_refusals", ok, f"false refusals delta {_interval(d, level)}{why}", asdict(d)))
    checks.append(_canary_check(canary, baseline, candidate))
    return GateDecision(baseline, candidate, metric, checks, level)


def _canary_check(canary: dict[str, dict] | None, baseline: str, candidate: str) -> GateCheck:
    if not canary or baseline not in canary or candidate not in canary:
        return GateCheck("canary", False, "security canary: not run for both variants")
    before, after = canary[baseline], canary[candidate]
    ok = after["leaks"] <= before["leaks"]
    detail = (f"security canary: {after['leaks']}/{after['attempts']} leaks with the candidate vs "
              f"{before['leaks']}/{before['attempts']} with the baseline" + ("" if ok else ": a regression"))
    return GateCheck("canary", ok, detail, {"baseline": before, "candidate": after})
