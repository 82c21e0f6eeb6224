"""Scoring a candidate adapter version against what serves now, and promoting it only through the gate.

Used by `ragtune finetune --promote`, `ragtune retrain` (and its admin button) and, on the scorecard it already
wrote, by the main job (`ragtune up`). The baseline is the promoted version of the candidate's name, or base+RAG
when none is promoted. The decision (eval/promotion_gate.py) is stored in the candidate's registry metadata under
`gate`, newest last, with the scorecard it came from, whether it promoted or not.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from assistant import assembly
from assistant.settings import Settings
from eval.promotion_gate import GateDecision, decide

Bar = Callable[[str, int], Callable[[int], None]]


def no_bar(variant: str, total: int) -> Callable[[int], None]:
    return lambda answers: None


def baseline_for(settings: Settings, candidate_ref: str) -> tuple[str, str, str]:
    """(variant spec, variant name, adapter for the canary) of what the candidate must beat."""
    name = candidate_ref.partition("@")[0]
    promoted = assembly.adapter_registry(settings).promoted(name)
    if promoted is None or promoted.ref == candidate_ref:
        return "rag", "rag", "base"
    return f"adapter:{promoted.ref}", promoted.ref, promoted.ref


def canary(settings: Settings, adapters: dict[str, str], answerer: Any = None) -> dict[str, dict[str, Any]]:
    """variant name -> CanaryResult dict, each adapter attacked through the full chat path of this process
    (`answerer`'s, when the scorecard already loaded one)."""
    from eval.canary import STRUCTURED_KINDS, run_canary
    from eval.runner import in_process_answerer
    from finetune.pii import PiiRedactor

    service = (answerer or in_process_answerer(settings)).service
    redactor = PiiRedactor(kinds=STRUCTURED_KINDS)
    return {variant: run_canary(service, adapter, redactor).to_dict() for variant, adapter in adapters.items()}


def gate(settings: Settings, rows: list[dict], baseline: str, candidate: str,
         canary_results: dict[str, dict] | None) -> GateDecision:
    p = settings.pipeline
    return decide(rows, baseline, candidate, p.promote_metric, canary_results, p.promote_min_gain,
                  p.promote_max_false_refusal_increase, p.promote_level, settings.eval.seed)


def record(settings: Settings, candidate_ref: str, decision: GateDecision, run_dir: Path | None) -> None:
    registry = assembly.adapter_registry(settings)
    version = registry.get(candidate_ref)
    history = list(version.metadata.get("gate") or [])
    registry.update_metadata(version.ref, gate=[*history, {**decision.to_dict(), "run_dir": str(run_dir or "")}])


def evaluate_and_gate(settings: Settings, candidate_ref: str, golden: Sequence[Path] | None = None,
                      limit: int | None = None, bar: Bar = no_bar, promote: bool = True) -> tuple[GateDecision, Path]:
    """Score candidate vs baseline on the golden set(s), attack both with the canary, decide, record, and promote
    when the gate passes (and `promote`). Returns the decision and the scorecard's directory."""
    from eval.runner import in_process_answerer, run_eval

    golden = list(golden or settings.pipeline.golden)
    limit = settings.pipeline.eval_limit if limit is None else limit
    spec, baseline, baseline_adapter = baseline_for(settings, candidate_ref)
    out = settings.evals_dir / f"gate-{candidate_ref.replace('@', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    answerer = in_process_answerer(settings)  # loaded once: the scorecard and the canary share it
    run = run_eval(settings, golden, f"{spec},adapter:{candidate_ref}", None, None, None, out, limit, [], bar, answerer)
    results = canary(settings, {baseline: baseline_adapter, candidate_ref: candidate_ref}, answerer)
    (run.out_dir / "canary.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    decision = gate(settings, run.rows, baseline, candidate_ref, results)
    record(settings, candidate_ref, decision, run.out_dir)
    if decision.promote and promote:
        assembly.adapter_registry(settings).promote(candidate_ref)
    return decision, run.out_dir
