"""Trial for the harmful rail's encoder: one fine-tune on two thirds of the non-JailbreakBench rows, thresholds
calibrated on the last third's benign rows (train_harmful.calibrate), then the last third and every JailbreakBench
row scored two ways: the whole message, and the whole message or its worst sentence (harmful_encoder.message_scores,
as served).

    .venv/bin/python bench/harmful_encoder_trial.py [--without-second-batch] [--epochs 2]

Folds are the CRC-32 of each row's group modulo 3, so a run with and without the second batch of tasks
(guardrails/harmful_kinds.py, dropped by --without-second-batch) holds out the same old rows: a paired comparison.
About 5 minutes on 2 cores. Not a shipped model (the recipe, guardrails/train_harmful_encoder.py, ships one).
Writes bench/results/harmful_encoder_trial[-without-second-batch].json.
"""

from __future__ import annotations

import argparse
import os
import time
import zlib
from typing import Sequence

import _common as common
import numpy as np


def second_batch_keys() -> set[tuple[str, str]]:
    from guardrails.harmful_data import gibberish_suffix
    from guardrails.harmful_kinds import second_batch_rows

    return {(r["text"], r["group"]) for r in second_batch_rows(0, gibberish_suffix)}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--without-second-batch", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.settings import EmbedderSettings
    from guardrails.harmful import parts
    from guardrails.harmful_encoder import message_scores
    from guardrails.train_harmful import calibrate, decide, load_dataset, rates
    from guardrails.train_harmful_encoder import fine_tune
    from guardrails.tuned_encoder import probabilities_of
    from ingestion.embedder import build_embedder

    # setup: rows, readable parts, the split
    embedder = build_embedder(EmbedderSettings())
    rows = load_dataset(0)
    if args.without_second_batch:
        drop = second_batch_keys()
        rows = [r for r in rows if (r["text"], r["group"]) not in drop]
    texts = [part.readable for part in parts([r["text"] for r in rows])]
    labels = np.array([r["label"] for r in rows])
    kinds = np.array([r["kind"] for r in rows])
    jbb = np.char.startswith(kinds.astype(str), "jbb-")
    fold = np.array([zlib.crc32(r["group"].encode()) % 3 for r in rows])
    train, test = np.nonzero(~jbb & (fold != 0))[0], np.nonzero(jbb | (fold == 0))[0]

    # run: one fine-tune, two scorings
    started = time.perf_counter()
    model, tokenizer, weight, bias = fine_tune(embedder.model_dir, [texts[i] for i in train], labels[train],
                                               args.epochs, args.max_tokens, 0, progress="trial")

    def score(batch):
        return probabilities_of(model, tokenizer, batch, args.max_tokens, weight, bias)

    chosen = [texts[i] for i in test]
    scorings = {"whole": score(chosen), "worst sentence": message_scores(score, chosen)}
    seconds = time.perf_counter() - started

    # save: rates per kind at each scoring's own calibrated thresholds
    calibration = ~jbb[test]
    table, out = [], {}
    for name, scores in scorings.items():
        t_in, t_out = calibrate(scores[calibration], kinds[test][calibration])
        out[name] = {"thresholds": [t_in, t_out], "rates": rates(kinds[test], decide(scores, kinds[test], t_in, t_out))}
    for kind in sorted(set(kinds[test])):
        table.append([kind, *(f"{out[n]['rates'][kind]['rate']:.3f}" for n in scorings),
                      str(out["whole"]["rates"][kind]["n"])])
    table.append(["thresholds in", *(f"{out[n]['thresholds'][0]:.3f}" for n in scorings), "-"])
    common.console.print(common.table("Harmful encoder trial (JailbreakBench rows never trained on)",
                                      ["kind", *scorings, "n"], table, left=1))
    name = "harmful_encoder_trial" + ("-without-second-batch" if args.without_second_batch else "")
    path = common.write_json(name, {"environment": common.environment(), "seconds": round(seconds, 1),
                                    "rows": len(rows), "results": out})
    common.console.print(f"{len(rows)} rows, {seconds:.0f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
