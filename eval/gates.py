"""CI gates on a scorecard: thresholds (`--fail-under`) and no regression against an earlier run.

A rule is METRIC=VALUE (every variant that has the metric) or VARIANT.METRIC=VALUE. For a metric
where higher is better the value must be at least VALUE; where lower is better (false refusals)
at most VALUE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from eval.metrics import CATALOGUE


class GateError(ValueError):
    pass


@dataclass
class Gate:
    rule: str
    passed: bool
    value: float | None

    def to_dict(self) -> dict:
        return asdict(self)


def parse_rule(text: str) -> tuple[str | None, str, float]:
    target, sep, number = text.partition("=")
    if not sep:
        raise GateError(f"gate {text!r}: write METRIC=VALUE or VARIANT.METRIC=VALUE")
    variant, _, metric = target.strip().rpartition(".")
    if metric not in CATALOGUE:
        raise GateError(f"gate {text!r}: unknown metric {metric!r} (known: {', '.join(CATALOGUE)})")
    try:
        return (variant or None), metric, float(number)
    except ValueError:
        raise GateError(f"gate {text!r}: {number!r} is not a number") from None


def check(rules: list[str], variants: dict[str, dict[str, float | None]]) -> list[Gate]:
    gates = []
    for text in rules:
        variant, metric, threshold = parse_rule(text)
        names = [variant] if variant else [v for v, m in variants.items() if m.get(metric) is not None]
        if variant and variant not in variants:
            raise GateError(f"gate {text!r}: no variant {variant!r} in this run ({', '.join(variants)})")
        if not names:
            raise GateError(f"gate {text!r}: no variant of this run has {metric}")
        higher = CATALOGUE[metric].higher_is_better
        for name in names:
            value = variants[name].get(metric)
            ok = value is not None and (value >= threshold if higher else value <= threshold)
            sign = ">=" if higher else "<="
            gates.append(Gate(f"{name}.{metric} {sign} {threshold:g}", ok, value))
    return gates


def scorecard_allows(metadata: dict, rules: list[str]) -> tuple[bool, str]:
    """Whether an adapter version's recorded scorecards allow promoting it: at least one scorecard
    recorded by `ragtune eval` whose own gates passed and whose metrics meet `rules` (METRIC=VALUE;
    a VARIANT. prefix is ignored here: the recorded metrics are this adapter's)."""
    cards = {k: v for k, v in (metadata.get("eval") or {}).items() if k.startswith("scorecard:")}
    if not cards:
        return False, "no scorecard recorded for this version (run `ragtune eval --variants rag,adapter:NAME@vN ...`)"
    reasons = []
    for key, card in sorted(cards.items(), key=lambda kv: kv[1].get("at") or "", reverse=True):
        if not card.get("gates_passed", False):
            reasons.append(f"{key}: its gates failed")
            continue
        failed = [g.rule for g in check([r.split(".", 1)[-1] if "." in r.split("=")[0] else r for r in rules],
                                        {"card": card.get("metrics") or {}}) if not g.passed] if rules else []
        if not failed:
            return True, f"{key} passes"
        reasons.append(f"{key}: {', '.join(failed)} not met")
    return False, "; ".join(reasons)
