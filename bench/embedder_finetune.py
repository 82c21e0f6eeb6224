"""Experiment: fine-tune the MiniLM embedder on a collection's own chunks, then score retrieval on golden questions.

    .venv/bin/python bench/embedder_finetune.py --home /tmp/retr-homes/before --set contoso [--epochs 1]
        [--per-chunk 2] [--out /tmp/retr-homes/minilm-ft]

No language model writes the training questions: each pseudo-query is one sentence of a chunk (the inverse
cloze task), removed from the positive so the model cannot match it word for word. The hard negative is the
base model's best chunk that lies on another page (never another chunk of the positive's page, which would
be a false negative for a page metric). Loss: sentence-transformers MultipleNegativesRankingLoss (in-batch
plus the hard negative). The golden questions are never trained on; one fixed setting is run (no search over
settings on the golden set), and both halves of the question set are reported.

The index of `--home` is read, not changed: the collection's chunks are re-embedded in memory with the tuned
model, and the hybrid retriever (BM25 + FAISS, collapse as configured) is scored with the base and the tuned
vectors on the same questions. Writes bench/results/embedder_finetune-SET.json.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import sys
import time
from pathlib import Path
from typing import Sequence

import _common as common
import numpy as np
from retrieval_ablation import SETS, first_rank, half, hit

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--home", type=Path, required=True)
    p.add_argument("--set", choices=sorted(SETS), default="contoso")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--per-chunk", type=int, default=2, help="pseudo-queries per chunk")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--out", type=Path, default=Path("/tmp/retr-homes/minilm-ft"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-triples", type=int, default=0, help="train on at most this many (0 = all)")
    p.add_argument("--train-seq-len", type=int, default=0, help="token cap while training (0 = the model's)")
    return p.parse_args(argv)


def pseudo_queries(text: str, count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(query sentence, chunk text without it) pairs; sentences of 6-40 words only."""
    sentences = [s.strip() for s in _SENTENCE.split(text.replace("\n", " ")) if s.strip()]
    usable = [i for i, s in enumerate(sentences) if 6 <= len(s.split()) <= 40]
    if len(sentences) < 2 or not usable:
        return []
    pairs = []
    for i in rng.sample(usable, min(count, len(usable))):
        rest = " ".join(s for j, s in enumerate(sentences) if j != i)
        pairs.append((sentences[i], rest))
    return pairs


def main(argv: Sequence[str] | None = None) -> int:
    from assistant import assembly
    from assistant.settings import load_settings
    from eval.stats import paired_delta
    from ingestion.vector_index import VectorIndex

    args = parse_args(argv)
    rng = random.Random(args.seed)
    _, golden_path = SETS[args.set]
    golden = common.load_golden(golden_path)
    settings = load_settings(profile="default", overrides={"home": str(args.home)}, environ={})
    retriever = assembly.retriever(settings)
    store = retriever.store
    collection = settings.default_collection
    rows = store.docstore.collection_chunks(collection)
    embed_text = {r.id: (f"{r.context}\n{r.text}" if r.context else r.text) for r in rows}
    page_of = {r.id: (r.document_id, r.page) for r in rows}
    base_model = store.embedder.model

    # --- training triples ------------------------------------------------------------------------
    started = time.perf_counter()
    triples_src = []
    for r in rows:
        for query, rest in pseudo_queries(r.text, args.per_chunk, rng):
            positive = f"{r.context}\n{rest}" if r.context else rest
            triples_src.append((query, positive, r.id))
    if args.max_triples and len(triples_src) > args.max_triples:
        triples_src = rng.sample(triples_src, args.max_triples)
    ids, base_vectors = store.docstore.vectors(collection, store.embedder.dim)
    query_vectors = store.embedder.embed([q for q, _, _ in triples_src])
    scores = query_vectors @ base_vectors.T
    from sentence_transformers import InputExample, SentenceTransformer, losses
    from torch.utils.data import DataLoader

    examples = []
    for row, (query, positive, chunk_id) in enumerate(triples_src):
        for j in np.argsort(-scores[row])[:20]:
            other = int(ids[j])
            if other != chunk_id and page_of[other] != page_of[chunk_id]:
                examples.append(InputExample(texts=[query, positive, embed_text[other]]))
                break
    mining_s = time.perf_counter() - started
    common.console.print(f"{len(examples)} training triples from {len(rows)} chunks ({mining_s:.0f} s)", style="dim")

    # --- fine-tune -------------------------------------------------------------------------------
    model = SentenceTransformer(str(store.embedder.model_dir), device="cpu", local_files_only=True)
    model.max_seq_length = args.train_seq_len or base_model.max_seq_length
    loader = DataLoader(examples, shuffle=True, batch_size=args.batch, generator=__import__("torch").Generator().manual_seed(args.seed))
    loss = losses.MultipleNegativesRankingLoss(model)
    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(args.out):  # fit() writes a checkpoints/ folder into the working directory
        model.fit(train_objectives=[(loader, loss)], epochs=args.epochs, warmup_steps=max(1, len(loader) // 10),
                  optimizer_params={"lr": args.lr}, show_progress_bar=False)
    train_s = time.perf_counter() - t
    args.out.mkdir(parents=True, exist_ok=True)
    model.max_seq_length = base_model.max_seq_length  # embed and search with the window the index uses
    model.save(str(args.out))

    # --- score base vs tuned on the golden questions ------------------------------------------------
    questions = [g["question"] for g in golden]
    results = {}
    t = time.perf_counter()
    tuned_vectors = model.encode([embed_text[int(i)] for i in ids], batch_size=32, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
    reembed_s = time.perf_counter() - t
    for name, vectors, encoder in (("base MiniLM", base_vectors, base_model), ("tuned MiniLM", tuned_vectors, model)):
        store._dense[collection] = (store.docstore.generation(collection),
                                    VectorIndex.build(ids, np.ascontiguousarray(vectors), store.embedder.dim, store.settings))
        store.embedder._model = encoder
        hits = retriever.search_many(questions, 5, mode="hybrid")
        retrieved = [[(h.document, h.page) for h in row] for row in hits]
        results[name] = {"page_ranks": [first_rank(r, g["sources"], "page") for r, g in zip(retrieved, golden)],
                         "doc_ranks": [first_rank(r, g["sources"], "doc") for r, g in zip(retrieved, golden)]}
    halves = [half(g.get("id", i)) for i, g in enumerate(golden)]
    base_hits = [hit(r) for r in results["base MiniLM"]["page_ranks"]]
    table = []
    for name, run in results.items():
        page5 = [hit(r) for r in run["page_ranks"]]
        d = paired_delta(base_hits, page5)
        run["summary"] = {"page@5": float(np.mean(page5)), "doc@5": float(np.mean([hit(r) for r in run["doc_ranks"]])),
                          "page_mrr": float(np.mean([1 / r if r else 0 for r in run["page_ranks"]])),
                          "page@5_A": float(np.mean([p for p, h in zip(page5, halves) if h == "A"])),
                          "page@5_B": float(np.mean([p for p, h in zip(page5, halves) if h == "B"])),
                          "delta": [d.delta, d.low, d.high]}
        s = run["summary"]
        table.append([name, s["page@5"], f"{d.delta:+.3f} [{d.low:+.3f}, {d.high:+.3f}]", s["page_mrr"], s["doc@5"],
                      s["page@5_A"], s["page@5_B"]])
    common.console.print(common.table(
        f"{args.set}: embedder fine-tune ({len(examples)} pseudo-query triples, {args.epochs} epoch(s), "
        f"train {train_s:.0f} s, re-embed {reembed_s:.0f} s)",
        ["embedder", "page@5", "Δ page@5 [95% CI]", "page MRR", "doc@5", "page@5 A", "page@5 B"], table))
    payload = {"benchmark": "embedder_finetune", "set": args.set, "home": str(args.home), "triples": len(examples),
               "epochs": args.epochs, "lr": args.lr, "train_seq_len": args.train_seq_len, "batch": args.batch, "train_s": round(train_s, 1),
               "reembed_s": round(reembed_s, 1), "results": results, "environment": common.environment()}
    path = common.write_json(f"embedder_finetune-{args.set}", payload)
    common.console.print(f"wrote {path}", style="dim")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
