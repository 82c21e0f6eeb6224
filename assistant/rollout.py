"""A staged rollout: a share of traffic answers with a candidate adapter version; figures per arm decide.

State lives in HOME/rollout.json (written atomically: a crash mid-write leaves the previous state), so every
worker of one home reads the same split and a restart keeps it. Assignment is a hash, not a coin: the unit is
the conversation when there is one (every turn of a conversation answers with one arm) and the API key when
there is none (OpenAI-compatible and ticket requests of one key stay on one arm). SHA-256 of "rollout id:unit"
read as a number in [0, 1) is below `share` for the candidate arm: uniform, stateless and the same in every worker.

The arms name adapters as the generator knows them: `NAME@vN` resident in the local runtime (every registry
version is loaded), or model names an OpenAI-compatible server serves (generator.adapters).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from scipy.stats import binomtest


@dataclass(frozen=True)
class Rollout:
    id: str
    control: str  # adapter answering the rest of the traffic ("base" for none)
    candidate: str
    share: float  # of conversations (or keys) sent to the candidate, 0 < share < 1
    started_at: float
    started_by: str = ""

    def arm(self, unit: str) -> str:
        """"candidate" or "control" for a conversation id or key id: sticky, since it is a hash of the unit."""
        digest = hashlib.sha256(f"{self.id}:{unit}".encode()).digest()
        return "candidate" if int.from_bytes(digest[:8], "big") / 2**64 < self.share else "control"

    def adapter(self, arm: str) -> str:
        return self.candidate if arm == "candidate" else self.control

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RolloutState:
    """HOME/rollout.json: the active rollout (or none) and the finished ones, newest last."""

    def __init__(self, path: Path):
        self.path = path
        self._cache: tuple[float, dict[str, Any]] | None = None

    def _read(self) -> dict[str, Any]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            return {"active": None, "history": []}
        if self._cache is None or self._cache[0] != mtime:  # re-read only when another worker changed it
            self._cache = (mtime, json.loads(self.path.read_text(encoding="utf-8")))
        return self._cache[1]

    def active(self) -> Rollout | None:
        found = self._read().get("active")
        return Rollout(**found) if found else None

    def history(self) -> list[dict[str, Any]]:
        return list(self._read().get("history", []))

    def start(self, control: str, candidate: str, share: float, by: str = "") -> Rollout:
        if not 0 < share < 1:
            raise ValueError(f"share must be between 0 and 1 (exclusive), got {share}")
        if control == candidate:
            raise ValueError(f"the candidate {candidate!r} is what already serves")
        if self.active() is not None:
            raise ValueError("a rollout is already running: promote or stop it first")
        rollout = Rollout(uuid.uuid4().hex[:12], control, candidate, share, time.time(), by)
        self._write({"active": rollout.to_dict(), "history": self.history()})
        return rollout

    def finish(self, outcome: str, figures: dict[str, Any] | None = None) -> Rollout:
        """End the active rollout ("promoted" or "stopped"), keeping its last figures in the history."""
        rollout = self.active()
        if rollout is None:
            raise ValueError("no rollout is running")
        entry = {**rollout.to_dict(), "outcome": outcome, "ended_at": time.time(), "figures": figures}
        self._write({"active": None, "history": [*self.history(), entry]})
        return rollout

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)
        self._cache = None


# --- the readout -----------------------------------------------------------------------------------
def rate(successes: int, n: int, level: float) -> dict[str, Any]:
    """A proportion with its Wilson interval (scipy): honest at small n and near 0 or 1, unlike the normal one."""
    if n == 0:
        return {"rate": None, "low": None, "high": None, "n": 0}
    ci = binomtest(successes, n).proportion_ci(level, method="wilson")
    return {"rate": successes / n, "low": float(ci.low), "high": float(ci.high), "n": n}


def difference(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """b - a with Newcombe's hybrid score interval (method 10), built from the two Wilson intervals.

    Hand-rolled (six lines) because scipy has no interval for a difference of proportions and statsmodels, which
    has one, is not otherwise needed. "significant" = the interval excludes zero."""
    if not a["n"] or not b["n"]:
        return {"delta": None, "low": None, "high": None, "significant": False}
    d = b["rate"] - a["rate"]
    low = d - math.sqrt((b["rate"] - b["low"]) ** 2 + (a["high"] - a["rate"]) ** 2)
    high = d + math.sqrt((b["high"] - b["rate"]) ** 2 + (a["rate"] - a["low"]) ** 2)
    return {"delta": d, "low": low, "high": high, "significant": low > 0 or high < 0}


FIRST_LOOK = 20  # rated answers in the smaller arm before the first look counts


def sequential_level(level: float, smaller_arm: int) -> float:
    """The level a look at `smaller_arm` rated answers is tested at, so that looking again and again keeps the
    overall false-call rate near 1 - level.

    An operator refreshes the page until it says "significant": at a fixed 95%, looking every 100 conversations,
    bench/ab_split.py saw 14 of 20 streams with no difference called within 30,000 conversations (11 of 100 with
    this spending: the grid counts fewer looks than a refreshing operator takes). Looks are counted on a doubling
    grid of the smaller arm's rated answers (20, 40, 80, ...) and look k spends alpha / ((k + 1)(k + 2)) of the
    error (the shares sum to alpha): few looks, since the grid doubles, so the price in conversations is small.
    Hand-rolled: no maintained library here offers sequential testing for two proportions."""
    alpha = 1 - level
    k = max(0, int(math.log2(max(smaller_arm, 1) / FIRST_LOOK))) if smaller_arm >= FIRST_LOOK else 0
    return 1 - alpha / ((k + 1) * (k + 2))


def readout(counts: dict[str, dict[str, Any]], level: float) -> dict[str, Any]:
    """Per arm: thumbs-up rate (of rated answers), refusal rate, rail-action rate (of answers), latency p50/p95;
    then candidate minus control for each rate, and a verdict on the thumbs-up rate at the sequential level."""
    rated = [(counts.get(a) or {}).get("up", 0) + (counts.get(a) or {}).get("down", 0) for a in ("control", "candidate")]
    level = sequential_level(level, min(rated))
    arms: dict[str, Any] = {}
    for arm in ("control", "candidate"):
        c = counts.get(arm) or {}
        answers, latencies = c.get("answers", 0), sorted(c.get("latencies", []))
        arms[arm] = {
            "answers": answers,
            "thumbs_up": rate(c.get("up", 0), c.get("up", 0) + c.get("down", 0), level),
            "refusals": rate(c.get("refused", 0), answers, level),
            "rail_actions": rate(c.get("railed", 0), answers, level),
            "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        }
    deltas = {m: difference(arms["control"][m], arms["candidate"][m]) for m in ("thumbs_up", "refusals", "rail_actions")}
    up = deltas["thumbs_up"]
    if min(rated) < FIRST_LOOK:
        up["significant"] = False
        verdict = f"not yet: fewer than {FIRST_LOOK} rated answers in an arm"
    elif up["significant"]:
        verdict = "significant: the candidate is " + ("better" if up["delta"] > 0 else "worse") + " on thumbs-up rate"
    else:
        verdict = "not yet: the thumbs-up interval still contains zero"
    return {"level": level, "arms": arms, "deltas": deltas, "verdict": verdict, "significant": up["significant"]}


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    index = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))  # nearest rank
    return round(values[index], 1)
