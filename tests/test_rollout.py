"""Staged rollout: the hash split matches its share, sticks per unit, and the readout's intervals and verdict."""

from __future__ import annotations

import pytest

from assistant.rollout import Rollout, RolloutState, difference, rate, readout


def test_assignment_matches_the_share_within_one_point_and_sticks():
    rollout = Rollout("r1", "assistant@v1", "assistant@v2", 0.10, 0.0)
    arms = [rollout.arm(f"conversation-{i}") for i in range(10_000)]
    share = arms.count("candidate") / len(arms)
    assert abs(share - 0.10) < 0.01
    assert all(rollout.arm(f"conversation-{i}") == arms[i] for i in range(0, 10_000, 97))  # sticky
    other = Rollout("r2", "assistant@v1", "assistant@v2", 0.10, 0.0)
    assert [other.arm(f"conversation-{i}") for i in range(200)] != arms[:200]  # a new rollout draws anew
    assert rollout.adapter("candidate") == "assistant@v2" and rollout.adapter("control") == "assistant@v1"


def test_state_refuses_a_second_rollout_and_keeps_history(tmp_path):
    state = RolloutState(tmp_path / "rollout.json")
    assert state.active() is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        state.start("base", "a@v1", 1.5)
    with pytest.raises(ValueError, match="already serves"):
        state.start("a@v1", "a@v1", 0.1)
    started = state.start("base", "a@v1", 0.1, "ops")
    with pytest.raises(ValueError, match="already running"):
        state.start("base", "a@v2", 0.1)
    assert RolloutState(tmp_path / "rollout.json").active() == started  # another worker reads the same split
    state.finish("stopped", {"verdict": "not yet"})
    assert state.active() is None and state.history()[-1]["outcome"] == "stopped"
    with pytest.raises(ValueError, match="no rollout"):
        state.finish("promoted")


def test_rates_differences_and_the_verdict():
    r = rate(7, 10, 0.95)
    assert r["low"] < 0.7 < r["high"] and 0 < r["low"] and r["high"] < 1
    assert rate(0, 0, 0.95)["rate"] is None
    clear = difference(rate(300, 1000, 0.95), rate(450, 1000, 0.95))
    assert clear["significant"] and clear["low"] > 0
    assert not difference(rate(3, 10, 0.95), rate(5, 10, 0.95))["significant"]
    counts = {"control": {"answers": 1000, "up": 300, "down": 700, "refused": 100, "railed": 5, "latencies": [10.0, 20.0]},
              "candidate": {"answers": 1000, "up": 450, "down": 550, "refused": 90, "railed": 5, "latencies": [12.0]}}
    figures = readout(counts, 0.95)
    assert figures["significant"] and figures["verdict"].startswith("significant: the candidate is better")
    assert figures["arms"]["control"]["latency_ms"] == {"p50": 10.0, "p95": 20.0}
    assert readout({}, 0.95)["verdict"].startswith("not yet")
