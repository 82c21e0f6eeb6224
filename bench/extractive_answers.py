"""How good an extractive answer from the served passages would be, next to the answers a scorecard served.

    .venv/bin/python bench/extractive_answers.py SCORECARD_DIR [--variant rag] [--sentences 2,3,4]

Reads a scorecard's results.jsonl (the reference and the served answer of each question), rebuilds the passages the
model was shown with `ChatService.prepare` on the scorecard's collections (with page expansion: the best hit's whole
page; a scorecard's `contexts` hold only the retrieved chunk behind each citation), and scores, on the same
answerable questions, answers built without a model: the k sentences of the served passages
closest to the question (`finetune.extractive_target`, the `synth.answer_target: extract` target), the same with
the served answer's first sentence in front (the base model's restatement of the question, then the page's own
sentences), the whole passage text, the first 3 sentences, and the 3 sentences with the best token F1 against the
reference (an upper bound no answerer can use). Token F1 and semantic similarity are the scorecard's (SQuAD F1; cosine of ragtune's
embedder, as RAGAS computes it), each with a paired-bootstrap 95% interval against the served answers. It says what
an adapter trained on such targets could reach on those pages, and why the target was chosen (issue 18).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from assistant import assembly  # noqa: E402
from assistant.chat_service import ChatRequest  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from eval.stats import paired_delta  # noqa: E402
from eval.text_metrics import token_f1  # noqa: E402
from finetune import qa_filters as F  # noqa: E402
from finetune.extractive_target import extract_answer, prose_sentences  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scorecard", type=Path)
    ap.add_argument("--variant", default="rag")
    ap.add_argument("--sentences", default="2,3,4")
    args = ap.parse_args()
    settings = load_settings()
    config = yaml.safe_load((args.scorecard / "config.yaml").read_text()) or {}
    collections = (config.get("settings") or {}).get("eval", {}).get("collections") or None  # as the scorecard searched
    retriever = assembly.retriever(settings)
    service = assembly.chat_service(settings, retriever, assembly.generator(settings))
    embed = retriever.store.embedder.embed
    rows = [json.loads(line) for line in (args.scorecard / "results.jsonl").open()]
    rows = [r for r in rows if r["variant"] == args.variant and r["answerable"] and r["contexts"]]
    ks = [int(k) for k in args.sentences.split(",")]
    names = ["served", *(f"top{k}" for k in ks), *(f"opener + top{k}" for k in ks), "first3", "whole passage",
             "best3 by F1 (bound)"]
    f1 = {n: [] for n in names}
    sim = {n: [] for n in names}
    for n, r in enumerate(rows, 1):
        text = "\n".join(service.prepare(ChatRequest(r["question"], collections=collections)).contexts)
        found = prose_sentences(text)
        vectors = np.asarray(embed([r["question"], r["reference"], *found]), dtype=np.float32)
        q, ref, sv = vectors[0], vectors[1], vectors[2:]
        opener = next(iter(F.sentences(re.sub(r"\[\d+\]", "", r["answer"]).split("\n")[0])), "")
        by_f1 = sorted(np.argsort([-token_f1(s, r["reference"]) for s in found])[:3]) if found else []
        tops = {k: extract_answer(q, found, sv, k) for k in ks}
        answers = {"served": r["answer"], **{f"top{k}": tops[k] for k in ks},
                   **{f"opener + top{k}": f"{opener} {tops[k]}" if opener not in tops[k] else tops[k] for k in ks},
                   "first3": " ".join(found[:3]), "whole passage": text,
                   "best3 by F1 (bound)": " ".join(found[i] for i in by_f1)}
        cosines = F.cosine_rows(np.asarray(embed([a or " " for a in answers.values()]), dtype=np.float32), ref[None])
        for (name, answer), cosine in zip(answers.items(), cosines[:, 0]):
            f1[name].append(token_f1(answer, r["reference"]))
            sim[name].append(float(cosine) if answer else 0.0)
        if n % 20 == 0:
            print(f"  {n}/{len(rows)} questions", file=sys.stderr)
    print(f"{args.scorecard} · variant {args.variant} · {len(rows)} answerable questions")
    print(f"{'answer':22s} {'token F1':>9s} {'Δ vs served [95%]':>26s} {'similarity':>11s} {'Δ vs served [95%]':>26s}")
    for name in names:
        df, ds = paired_delta(f1["served"], f1[name]), paired_delta(sim["served"], sim[name])
        print(f"{name:22s} {np.mean(f1[name]):9.3f} {df.delta:+8.3f} [{df.low:+.3f}, {df.high:+.3f}] "
              f"{np.mean(sim[name]):11.3f} {ds.delta:+8.3f} [{ds.low:+.3f}, {ds.high:+.3f}]")


if __name__ == "__main__":
    main()
