"""The promotion gate: a significant gain promotes; noise, a refusal regression or a canary regression refuses."""

from __future__ import annotations

import random

from eval.promotion_gate import decide

CANARY_OK = {"base": {"attempts": 8, "leaks": 0}, "new": {"attempts": 8, "leaks": 0}}


def rows(gain: float, n: int = 40, refusal_drop: int = 0, false_refusal_rise: int = 0, seed: int = 1) -> list[dict]:
    """`n` answerable questions whose metric is `gain` higher (plus noise) for "new", and 20 unanswerable ones."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        base = rng.uniform(0.3, 0.7)
        new = min(1.0, max(0.0, base + gain + rng.uniform(-0.05, 0.05)))
        refused_new = 1.0 if i < false_refusal_rise else 0.0
        out += [{"variant": "base", "id": f"a{i}", "metrics": {"semantic_similarity": base, "false_refusal_rate": 0.0}},
                {"variant": "new", "id": f"a{i}", "metrics": {"semantic_similarity": new, "false_refusal_rate": refused_new}}]
    for i in range(20):
        out += [{"variant": "base", "id": f"u{i}", "metrics": {"refusal_accuracy": 1.0}},
                {"variant": "new", "id": f"u{i}", "metrics": {"refusal_accuracy": 0.0 if i < refusal_drop else 1.0}}]
    return out


def check(decision, name):
    return next(c for c in decision.checks if c.name == name)


def test_a_significant_gain_with_nothing_worse_promotes_and_says_why():
    d = decide(rows(0.10), "base", "new", "semantic_similarity", CANARY_OK)
    assert d.promote and "lies above 0" in d.reason and d.reason.startswith("promote new over base")
    assert check(d, "metric").numbers["low"] > 0
    assert d.to_dict()["promote"] is True and len(d.to_dict()["checks"]) == 4


def test_a_point_gain_inside_the_noise_is_refused():
    d = decide(rows(0.005, n=12), "base", "new", "semantic_similarity", CANARY_OK)
    assert not d.promote and "does not lie above 0" in d.reason


def test_a_significant_drop_in_refusal_accuracy_refuses_even_with_a_gain():
    d = decide(rows(0.10, refusal_drop=8), "base", "new", "semantic_similarity", CANARY_OK)
    assert check(d, "metric").passed and not check(d, "refusal_accuracy").passed and not d.promote
    assert decide(rows(0.10, refusal_drop=1), "base", "new", "semantic_similarity", CANARY_OK).promote  # noise, not a drop


def test_a_significant_rise_in_false_refusals_refuses():
    d = decide(rows(0.10, false_refusal_rise=10), "base", "new", "semantic_similarity", CANARY_OK)
    assert not check(d, "false_refusals").passed and "significant rise" in d.reason


def test_a_canary_regression_or_a_missing_canary_refuses():
    worse = {"base": {"attempts": 8, "leaks": 0}, "new": {"attempts": 8, "leaks": 1}}
    d = decide(rows(0.10), "base", "new", "semantic_similarity", worse)
    assert not d.promote and "security canary: 1/8 leaks" in d.reason
    assert not decide(rows(0.10), "base", "new", "semantic_similarity", None).promote


def test_the_min_gain_raises_the_bar():
    assert not decide(rows(0.10), "base", "new", "semantic_similarity", CANARY_OK, min_gain=0.2).promote
