"""A/B split simulation: how many conversations the rollout readout needs to call a known better variant at 95%,
and whether hash assignment matches the configured split.

    .venv/bin/python bench/ab_split.py [--runs 200] [--share 0.1] [--control 0.60] [--candidate 0.70]

Synthetic traffic through the real code (assistant/rollout.py: Rollout.arm for assignment, readout for the
verdict): each conversation is assigned by its id, gets one rated answer with probability `--rated`, and the
vote is thumbs-up with the arm's true rate. The readout is looked at every `--look-every` conversations, as an
operator watching the page would; the first look that says "significant" in the right direction is when it was
called. The same procedure on an A/A stream (equal rates) gives the false-call rate of that peeking, the price of
looking often. Shares: 10,000 conversation ids per configured split, |observed - configured| in points.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import numpy as np  # noqa: E402

from assistant.rollout import Rollout, readout  # noqa: E402


def simulate(rng: np.random.Generator, share: float, p_control: float, p_candidate: float, rated: float,
             look_every: int, horizon: int) -> tuple[int | None, str]:
    """(conversations when the readout first called it, direction) or (None, "") within `horizon`."""
    rollout = Rollout(uuid.UUID(int=int(rng.integers(2**63))).hex[:12], "control", "candidate", share, 0.0)
    counts = {arm: {"answers": 0, "up": 0, "down": 0, "refused": 0, "railed": 0, "latencies": []}
              for arm in ("control", "candidate")}
    for n in range(1, horizon + 1):
        arm = rollout.arm(f"conversation-{n}")
        c = counts[arm]
        c["answers"] += 1
        if rng.random() < rated:
            good = rng.random() < (p_candidate if arm == "candidate" else p_control)
            c["up" if good else "down"] += 1
        if n % look_every == 0:
            figures = readout(counts, 0.95)
            if figures["significant"]:
                return n, "better" if figures["deltas"]["thumbs_up"]["delta"] > 0 else "worse"
    return None, ""


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--share", type=float, default=0.10)
    p.add_argument("--control", type=float, default=0.60, help="true thumbs-up rate of the control")
    p.add_argument("--candidate", type=float, default=0.70, help="true thumbs-up rate of the candidate (better)")
    p.add_argument("--rated", type=float, default=0.5, help="share of conversations with a vote")
    p.add_argument("--look-every", type=int, default=100)
    p.add_argument("--horizon", type=int, default=30_000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)

    shares = []
    for configured in (0.01, 0.05, 0.10, 0.25, 0.50):
        rollout = Rollout(uuid.UUID(int=int(rng.integers(2**63))).hex[:12], "control", "candidate", configured, 0.0)
        observed = sum(rollout.arm(uuid.UUID(int=int(rng.integers(2**63))).hex) == "candidate" for _ in range(10_000)) / 10_000
        shares.append((configured, observed, abs(observed - configured) * 100))

    results = {}
    for label, candidate in (("A/B", args.candidate), ("A/A", args.control)):
        called, directions = [], []
        for _ in range(args.runs):
            n, direction = simulate(rng, args.share, args.control, candidate, args.rated, args.look_every, args.horizon)
            called.append(n)
            directions.append(direction)
        hits = [n for n, d in zip(called, directions) if n is not None]
        results[label] = {
            "runs": args.runs, "called": len(hits), "called_better": directions.count("better"),
            "called_worse": directions.count("worse"),
            "median": float(np.median(hits)) if hits else None,
            "p90": float(np.percentile(hits, 90)) if hits else None,
        }

    common.console.print(common.table(
        f"assignment: 10,000 conversations per split (seed {args.seed})", ["configured", "observed", "|diff| pp"],
        [(f"{c:.0%}", f"{o:.2%}", f"{d:.2f}") for c, o, d in shares]))
    rows = [(label, f"{args.control:.2f} vs {args.control if label == 'A/A' else args.candidate:.2f}", r["runs"],
             r["called"], r["called_better"], r["called_worse"], r["median"], r["p90"]) for label, r in results.items()]
    common.console.print(common.table(
        f"conversations until the readout says 'significant' ({args.share:.0%} to the candidate, {args.rated:.0%} rated, "
        f"a look every {args.look_every}, horizon {args.horizon})",
        ["stream", "thumbs-up rates", "runs", "called", "better", "worse", "median conv.", "p90 conv."], rows))
    path = common.write_json("ab_split", {"args": vars(args), "shares": shares, "results": results,
                                           "environment": common.environment()})
    common.console.print(f"wrote {path}")
    worst = max(d for _, _, d in shares)
    return 0 if worst < 1.0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
