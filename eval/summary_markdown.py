"""The eval summary as GitHub Markdown, plus the summary-reading helpers the HTML scorecard shares.

The helpers live here rather than in `report.py` so that writing summary.md never imports
matplotlib (half a second, and a backend) just to format a table.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

NO_JUDGE = "no LLM judge configured: faithfulness/relevancy/factual correctness not scored"
# Metrics a judge model scores; the runner may say so with "requires": "judge" instead.
_JUDGE_METRICS = frozenset({"faithfulness", "answer_relevancy", "response_relevancy", "factual_correctness"})


def number(value: Any) -> float | None:
    """The value as a float, or None where it is missing, not numeric or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return None if math.isnan(value) else float(value)


def fmt_value(value: Any) -> str:
    v = number(value)
    return "—" if v is None else f"{v:.3f}"


def fmt_ci(interval: Any) -> str:
    """`[0.31, 0.40]`, or "" when the runner gave no usable interval."""
    if not isinstance(interval, (list, tuple)) or len(interval) != 2:
        return ""
    lo, hi = number(interval[0]), number(interval[1])
    return "" if lo is None or hi is None else f"[{lo:.2f}, {hi:.2f}]"


def variant_names(summary: dict) -> list[str]:
    return list((summary.get("variants") or {}).keys())


def metric_specs(summary: dict) -> list[tuple[str, dict]]:
    """(key, meta) in the runner's order; metrics it scored but did not describe come last."""
    specs: dict[str, dict] = {k: dict(m or {}) for k, m in (summary.get("metrics") or {}).items()}
    for values in (summary.get("variants") or {}).values():
        for key in values or {}:
            specs.setdefault(key, {})
    return list(specs.items())


def metric_label(key: str, meta: dict) -> str:
    return str(meta.get("label") or key.replace("_", " ").capitalize())


def direction(meta: dict) -> str:
    """↑/↓ for the reader; "" where the runner did not say which way is better."""
    hib = meta.get("higher_is_better")
    return "" if hib is None else ("↑" if hib else "↓")


def best_variants(summary: dict, key: str, meta: dict) -> set[str]:
    """Variants holding the best value of a metric (ties all win); empty when there is nothing to compare."""
    hib = meta.get("higher_is_better")
    values = {
        name: v
        for name, scores in (summary.get("variants") or {}).items()
        if (v := number((scores or {}).get(key))) is not None
    }
    if hib is None or len(values) < 2:
        return set()
    # Rounded so float noise does not split a tie the table shows as equal.
    target = round(max(values.values()) if hib else min(values.values()), 6)
    return {name for name, v in values.items() if round(v, 6) == target}


def is_judge_metric(key: str, meta: dict) -> bool:
    return meta.get("requires") == "judge" or key in _JUDGE_METRICS


def is_retrieval_metric(key: str, meta: dict) -> bool:
    return meta.get("requires") == "retrieval" or key.startswith("context_")


def missing_reason(summary: dict, variant: str, key: str, meta: dict) -> str:
    """Why a variant has no value for a metric, for the "—" cell's tooltip."""
    run = summary.get("run") or {}
    if is_judge_metric(key, meta) and not run.get("judge"):
        return "not scored: no LLM judge configured"
    config = (run.get("variants") or {}).get(variant) or {}
    if is_retrieval_metric(key, meta) and config.get("retrieval") is False:
        return "not applicable: this variant retrieves no context"
    applies = meta.get("applies_to")
    if applies in ("answerable", "unanswerable"):
        counts = (summary.get("counts") or {}).get(variant) or {}
        if counts.get(applies) == 0:
            return f"not applicable: no {applies} questions"
    return "not scored for this variant"


def judge_text(run: dict) -> str:
    judge = run.get("judge")
    return f"LLM judge: {judge}" if judge else NO_JUDGE


def fmt_duration(seconds: Any) -> str:
    s = number(seconds)
    if s is None:
        return "—"
    if s < 60:
        return f"{s:.1f} s"
    minutes, secs = divmod(int(round(s)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def fmt_started(started: Any) -> str:
    if not started:
        return "—"
    try:
        when = datetime.fromisoformat(str(started))
    except ValueError:
        return str(started)
    zone = when.strftime(" %Z") if when.tzinfo else ""
    return when.strftime("%Y-%m-%d %H:%M") + zone


def fmt_counts(counts: dict | None) -> str:
    if not counts:
        return "—"
    answerable, unanswerable = counts.get("answerable"), counts.get("unanswerable")
    return f"{answerable if answerable is not None else '?'} + {unanswerable or 0} unanswerable"


def run_facts(summary: dict) -> list[tuple[str, str]]:
    """(label, text) pairs describing the run, shared by the Markdown and the HTML header."""
    run = summary.get("run") or {}
    facts = [
        ("Golden set", str(run.get("golden") or "—")),
        ("Model", str(run.get("model") or "—")),
        ("Judge", judge_text(run)),
        ("Mode", str(run.get("mode") or "—")),
        ("Started", fmt_started(run.get("started"))),
        ("Duration", fmt_duration(run.get("duration_s"))),
    ]
    if run.get("ragtune_version"):
        facts.append(("ragtune", str(run["ragtune_version"])))
    for variant, p in sorted((run.get("privacy") or {}).items()):  # DP-trained adapters: the guarantee they carry
        facts.append((f"Privacy of {variant}", f"DP-SGD, ε = {p['epsilon_spent']:.3g} (target {p['target_epsilon']:g}), "
                                                f"δ = {p['delta']:.2g}, {p['accountant']}"))
    return facts


def _cell(text: str) -> str:
    # A pipe would end the cell and a newline the row.
    return text.replace("|", "\\|").replace("\n", " ")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def render_markdown(summary: dict) -> str:
    run = summary.get("run") or {}
    names = variant_names(summary)
    specs = metric_specs(summary)
    lines = ["# ragtune eval scorecard", ""]
    for label, text in run_facts(summary):
        if label == "Judge" and not run.get("judge"):
            text = f"**{NO_JUDGE}**"
        elif label == "Golden set":
            text = f"`{text}`"
        lines.append(f"- {label}: {text}")

    lines += ["", "## Results", ""]
    if names and specs:
        header = ["Variant", "Questions"] + [f"{metric_label(k, m)} {direction(m)}".rstrip() for k, m in specs]
        lines += [_row(header), "|" + "---|" * len(header)]
        best = {k: best_variants(summary, k, m) for k, m in specs}
        for name in names:
            cells = [f"`{name}`", fmt_counts((summary.get("counts") or {}).get(name))]
            for key, _ in specs:
                value = (summary["variants"][name] or {}).get(key)
                text = " ".join(
                    filter(None, [fmt_value(value), fmt_ci(((summary.get("intervals") or {}).get(name) or {}).get(key))])
                )
                cells.append(f"**{text}**" if name in best[key] else text)
            lines.append(_row(cells))
        lines += ["", "Best value per metric in **bold**; ↑ higher is better, ↓ lower is better; "
                  "95% bootstrap confidence intervals in brackets; — means not scored."]
    else:
        lines.append("No results.")

    pairs = summary.get("pairs") or []
    if pairs:
        lines += ["", "## Paired differences between variants", "",
                  _row(["Compared", "Metric", "Δ (b − a)", "95% CI", "p"]), "|---|---|---|---|---|"]
        for p in pairs:
            mark = " *" if p.get("significant") else ""
            lines.append(_row([f"`{p['b']}` vs `{p['a']}`", p["metric"], f"{p['delta']:+.3f}{mark}",
                               f"[{p['low']:+.3f}, {p['high']:+.3f}]", f"{p['p_value']:.3f}"]))
        lines += ["", "Paired bootstrap over the questions both variants scored; * = the interval excludes zero."]

    configs = run.get("variants") or {}
    if configs:
        lines += ["", "## Variants", "", _row(["Variant", "Adapter", "Retrieval", "p50 latency", "p95 latency"]),
                  "|---|---|---|---|---|"]
        timing = run.get("timing") or {}
        for name, config in configs.items():
            t = timing.get(name) or {}
            lat = [f"{v / 1000:.1f} s" if (v := number(t.get(p))) is not None else "—" for p in ("p50_ms", "p95_ms")]
            retrieval = {True: "yes", False: "no"}.get((config or {}).get("retrieval"), "—")
            lines.append(_row([f"`{name}`", str((config or {}).get("adapter") or "—"), retrieval, *lat]))

    gates = summary.get("gates") or []
    if gates:
        failed = sum(1 for g in gates if not g.get("passed"))
        verdict = f"all {len(gates)} passed" if not failed else f"**{failed} of {len(gates)} failed**"
        lines += ["", "## Gates", "", f"Gates: {verdict}.", "", _row(["Gate", "Value", "Result"]), "|---|---|---|"]
        for gate in gates:
            result = "✅ pass" if gate.get("passed") else "❌ FAIL"
            lines.append(_row([f"`{gate.get('rule', '?')}`", fmt_value(gate.get("value")), result]))
    return "\n".join(lines) + "\n"
