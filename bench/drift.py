"""Drift watch bench: false alarms over a stable in-domain stream, detection delay after a shift of domain.

    .venv/bin/python bench/drift.py [--runs 20] [--stable 400] [--window 50] [--alpha 0.01]

Real MiniLM embeddings, the real DriftWatch (assistant/drift.py). Per run, Contoso HR's dev questions (120
answerable + 25 unanswerable, ../shared) are shuffled and split in half: one half is the reference (what the
adapter was trained and scored on), the other feeds a stable stream of `--stable` questions drawn from it. Then
the stream shifts to another domain: banking77 customer-support questions (a far shift) or the Kestrel sample's
golden questions (a near shift: another company's HR and IT handbook). Reported: alarms raised on the stable
stream (runs with any, and the share of stable questions under alert), and questions from the shift to the
first alert (median and worst over runs; "missed" when 300 shifted questions raise none).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402
import numpy as np  # noqa: E402

from assistant.drift import DriftWatch  # noqa: E402
from ingestion.embedder import SentenceTransformerEmbedder  # noqa: E402

BANKING = common.SHARED_DATA / "security" / "banking77_benign.dev.jsonl"
KESTREL = common.PROJECT / "samples" / "kestrel" / "golden"
SHIFTED = 300


def questions(path: Path, field: str = "question") -> list[str]:
    return [json.loads(line)[field] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--stable", type=int, default=400, help="in-domain questions before the shift")
    p.add_argument("--window", type=int, default=50)
    p.add_argument("--alpha", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    common.require_contoso()
    contoso = questions(common.CONTOSO_GOLDEN) + questions(common.CONTOSO / "golden" / "unanswerable.dev.jsonl")
    shifts = {"banking77 (far)": questions(BANKING, "prompt"),
              "Kestrel HR/IT (near)": [q for f in sorted(KESTREL.glob("*.jsonl")) for q in questions(f)]}
    embedder = SentenceTransformerEmbedder(common.model_dir())
    texts = sorted({*contoso, *(q for qs in shifts.values() for q in qs)})
    vectors = dict(zip(texts, embedder.embed(texts)))
    lookup = lambda batch: np.stack([vectors[t] for t in batch])  # noqa: E731 - embeddings computed once above
    rng = np.random.default_rng(args.seed)
    rows, raw = [], {}
    for label, shifted_pool in shifts.items():
        false_runs, alert_share, delays, missed = 0, [], [], 0
        for _ in range(args.runs):
            order = rng.permutation(len(contoso))
            reference = [contoso[i] for i in order[: len(order) // 2]]
            held_out = [contoso[i] for i in order[len(order) // 2:]]
            watch = DriftWatch(lookup, reference, args.window, args.alpha)
            stable = [watch.observe("c", held_out[i], None, False, False)["alert"]
                      for i in rng.integers(0, len(held_out), args.stable)]
            false_runs += any(stable)
            alert_share.append(float(np.mean(stable)))
            delay = None
            for n, i in enumerate(rng.permutation(len(shifted_pool))[:SHIFTED], start=1):
                if watch.observe("c", shifted_pool[i], None, False, False)["alert"]:
                    delay = n
                    break
            if delay is None:
                missed += 1
            else:
                delays.append(delay)
        raw[label] = {"false_alarm_runs": false_runs, "stable_alert_share": float(np.mean(alert_share)),
                      "delays": delays, "missed": missed}
        rows.append((label, args.runs, false_runs, f"{np.mean(alert_share):.2%}",
                     float(np.median(delays)) if delays else None, max(delays) if delays else None, missed))
    common.console.print(common.table(
        f"drift watch: window {args.window}, alpha {args.alpha}, {args.stable} stable questions then a shift "
        f"(reference: half of Contoso dev, {len(contoso) // 2} questions)",
        ["shift", "runs", "runs with a false alarm", "stable questions under alert", "delay median", "delay max",
         "missed"], rows))
    path = common.write_json("drift", {"args": vars(args), "results": raw, "environment": common.environment()})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
