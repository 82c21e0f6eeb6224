"""A naive 40-line RAG next to ragtune's answer half, and an ablation of the answer half, on the SAME questions.

    .venv/bin/python bench/naive_rag.py [--home DIR] [--limit 30] [--cap 128] [--variants naive,served,...]
        [--lengths 48,80,128] [--tag naive_rag] [--batch 8] [--adapter DIR]

The naive baseline: page text (pypdf) in 800-character windows, MiniLM, a flat FAISS inner-product
index, the top 3 windows in a plain prompt, greedy decoding, the same Gemma 3 270M. ragtune's rows use
its own index of the Contoso PDFs (ingested into --home if missing) and change ONE thing each against
`served` (the prompt /v1/chat renders):

    served        ChatService.prepare: hybrid top k=8, the best hit's whole page (chat.expand_pages: 1), instruction
                  + numbered header
    chunks        the same hits packed as chunks, best first, instead of the page (chat.expand_pages: 0)
    top3          the packed chunks, only the best 3 in the prompt (context size)
    best_last     the packed chunks in reverse order, the best next to the question (context order)
    plain_prompt  the packed chunks in the naive prompt's wording, no headers (prompt wording)
    naive         the naive baseline above
    oracle        the ladder's top rung: only the chunks of the golden answer's page(s), in the served format,
                  whatever retrieval found (if this is no better than served, the model, not retrieval, saturates)
    oracle_first  the golden page's chunks as [1].., then served's other passages up to the same count (RAFT's
                  oracle + distractors)
    top1_page     every chunk of the best hit's page as its own passage, nothing else (served merges them)
    top2_pages    every chunk of the best two hits' pages

--adapter DIR runs every variant a second time through that LoRA adapter (rows named VARIANT+lora), so the
ladder shows what the adapter adds at each rung. Decoding is as served: the same stop sequences,
`generator.stop_repeated_lines` and the answer starting on the cue's line (inline_start).

Answer length is ablated without decoding again: greedy decoding's first L tokens do not depend on
the cap, so each answer is generated once at --cap and cut at every L in --lengths (re-tokenised).
Questions run round-robin over the variants, so an interrupted run still compares every variant on
the same questions. Scores per answer: token F1 (SQuAD) and cosine similarity of MiniLM embeddings
of answer and reference (what RAGAS' semantic similarity computes), cited ([n]) and refused; deltas
against `served` at the cap are paired-bootstrap intervals (eval/stats.py). Writes
bench/results/TAG.jsonl (one line per answer, as it goes) and TAG.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import _common as common
import numpy as np
import retrieval_quality

NAIVE_PROMPT = "Answer the question based on the context below.\n\nContext:\n{context}\n\nQuestion: {question}\nAnswer:"
VARIANTS = ("served", "chunks", "naive", "top3", "best_last", "plain_prompt", "oracle", "oracle_first", "top1_page", "top2_pages")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", type=Path, default=Path("/tmp/ragtune-bench/naive-rag-contoso"), help="ragtune home with the Contoso index")
    p.add_argument("--limit", type=int, default=30, help="answerable Contoso dev questions (0 = all 120)")
    p.add_argument("--cap", type=int, default=128, help="new tokens generated per answer (then cut at each --lengths)")
    p.add_argument("--lengths", default="48,80,128", help="answer lengths scored, in tokens (each <= --cap)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    p.add_argument("--models", type=Path, default=Path(".pytest_cache/d/ragtune-models"),
                   help="converted checkpoints (generator.cache_dir; the tests' cache by default: no reconversion)")
    p.add_argument("--from-jsonl", type=Path, help="summarise an earlier (or interrupted) run's TAG.jsonl; no generation")
    p.add_argument("--tag", default="naive_rag", help="name of the result files in bench/results/")
    p.add_argument("--batch", type=int, default=1, help="questions per padded batch (1 = stream each answer)")
    p.add_argument("--adapter", type=Path, help="a LoRA adapter directory: each variant also runs through it (VARIANT+lora)")
    return p.parse_args(argv)


class NaiveIndex:
    """The baseline's retrieval: 800-character page windows, MiniLM, flat FAISS (inner product), top 3."""

    def __init__(self, embed_model):
        import faiss

        self.chunks = retrieval_quality.naive_chunks(common.contoso_pdfs())
        self.model = embed_model
        vectors = embed_model.encode([c[2] for c in self.chunks], batch_size=32, normalize_embeddings=True)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    def prompt(self, question: str, k: int = 3) -> tuple[str, list[tuple[str, int]]]:
        query = self.model.encode([question], normalize_embeddings=True).astype(np.float32)
        _, ids = self.index.search(query, k)
        picked = [self.chunks[i] for i in ids[0] if i >= 0]
        context = "\n\n".join(text.strip() for _, _, text in picked)
        return NAIVE_PROMPT.format(context=context, question=question), [(d, p) for d, p, _ in picked]


def page_docs(chunks, pages: Sequence[tuple[str, int | None]], fits=lambda docs: True) -> list:
    """Every chunk on each (document, page) in `pages`, page by page in that order, in reading order within a
    page, while `fits(docs)` (the prompt's room)."""
    from assistant import prompt

    docs: list = []
    for document, page in pages:
        on_page = [c for c in chunks if c.document == document and (page is None or (c.page or 0) <= page <= (c.page_end or c.page or 0))]
        for c in sorted(on_page, key=lambda c: c.ord):
            doc = prompt.PromptDoc(c.document, c.page, c.heading, c.text)
            if doc in docs:
                continue
            if not fits([*docs, doc]):
                return docs
            docs.append(doc)
    return docs


def ragtune_prompts(service, question: str, chunks=(), sources: Sequence[dict] = ()) -> dict[str, tuple[str, list[tuple[str, Any]]]]:
    """The served prompt and the one-change variants built from the same retrieved, packed passages."""
    from assistant import prompt
    from assistant.chat_service import ChatRequest

    def fits(docs) -> bool:  # the served prompt's room: the window less the answer's cap
        room = service.generator.context_window - service.generation.max_new_tokens
        return service.generator.count_tokens(prompt.render(docs, question)) < room

    served = service.prepare(ChatRequest(question))
    by_chunk = copy.copy(service)  # the ablations below change one thing against the packed chunks
    by_chunk.chat = service.chat.model_copy(update={"expand_pages": 0})
    prepared = by_chunk.prepare(ChatRequest(question))
    extra = {}
    oracle = page_docs(chunks, [(s["document"], s.get("page")) for s in sources], fits) if chunks else []
    if oracle:  # the oracle rungs do not depend on the retrieval gate
        extra["oracle"] = (prompt.render(oracle, question), [(d.document, d.page) for d in oracle])
    if prepared.prompt_text is None or served.prompt_text is None:  # the gate refuses: every ragtune variant alike
        return extra
    if chunks:  # page expansion: whole pages of the best hits instead of their chunks
        ranked = list(dict.fromkeys((s.document, s.page) for s in prepared.sources))
        for n in (1, 2):
            expanded = page_docs(chunks, ranked[:n], fits)
            extra[f"top{n}_page{'s' if n > 1 else ''}"] = (prompt.render(expanded, question), [(d.document, d.page) for d in expanded])
    docs = [prompt.PromptDoc(s.document, s.page, s.heading, text) for s, text in zip(prepared.sources, prepared.contexts)]
    pages = [(s.document, s.page) for s in prepared.sources]
    plain = "\n\n".join(d.text.strip() for d in docs)
    if oracle:
        gold = {(d.document, d.page) for d in oracle}
        mixed = (oracle + [d for d in docs if (d.document, d.page) not in gold])[: max(len(docs), len(oracle))]
        extra["oracle_first"] = (prompt.render(mixed, question), [(d.document, d.page) for d in mixed])
    return {**extra,
        "served": (served.prompt_text, [(s.document, s.page) for s in served.sources]),
        "chunks": (prepared.prompt_text, pages),
        "top3": (prompt.render(docs[:3], question), pages[:3]),
        "best_last": (prompt.render(docs[::-1], question), pages[::-1]),
        "plain_prompt": (NAIVE_PROMPT.format(context=plain, question=question), pages),
    }


def served_request(service, text: str, cap: int, adapter: str | None):
    """What /v1/chat would ask the model for this prompt (ChatService.generation_request: stop sequences, loop stop,
    first token on the cue's line, temperature), with the bench's prompt, cap and adapter."""
    from assistant.chat_service import ChatRequest, Prepared

    request = service.generation_request(ChatRequest(""), Prepared("", [], text, 0.0))
    return dataclasses.replace(request, max_new_tokens=cap, adapter=adapter)


def generate_block(service, tokenizer, texts: Sequence[str | None], cap: int,
                   adapter: str | None) -> list[tuple[str, list[int], float]]:
    """Answers for one block of prompts (None = the retrieval gate refused): streamed one at a time for a block of
    one, else as one padded greedy batch (the scorecard's path; padding can flip a near tie)."""
    from assistant import prompt
    from assistant.runtime.batching import generate_many

    live = [i for i, text in enumerate(texts) if text is not None]
    out: list[tuple[str, list[int], float]] = [(prompt.REFUSAL, [], 0.0)] * len(texts)
    started = time.monotonic()
    requests = [served_request(service, texts[i], cap, adapter) for i in live]
    if len(texts) == 1:
        done = [("".join(service.generator.stream(r, threading.Event())), None) for r in requests]
    else:
        done = generate_many(service.generator, requests, batch_size=len(requests))
    seconds = (time.monotonic() - started) / max(1, len(live))  # per answer, amortised over the batch
    for i, (text, _stats) in zip(live, done):
        answer = text.strip()
        out[i] = (answer, tokenizer(answer, add_special_tokens=False)["input_ids"], seconds)
    return out


def score(answer: str, reference: str, embed) -> dict[str, Any]:
    from assistant import prompt
    from eval.text_metrics import token_f1

    vectors = embed([answer or " ", reference])
    return {"token_f1": token_f1(answer, reference), "similarity": float(np.dot(vectors[0], vectors[1])),
            "cited": bool(prompt.cited_numbers(answer, 20)), "refused": prompt.is_refusal(answer), "empty": not answer}


def main(argv: Sequence[str] | None = None) -> int:
    from sentence_transformers import SentenceTransformer

    from assistant import assembly, prompt
    from assistant.settings import load_settings
    from eval.stats import mean_ci, paired_delta

    args = parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    names = variants + ([f"{v}+lora" for v in variants] if args.adapter else [])
    lengths = sorted({min(int(n), args.cap) for n in args.lengths.split(",")} | {args.cap})
    if args.from_jsonl:
        rows = [json.loads(line) for line in args.from_jsonl.read_text().splitlines() if line.strip()]
        done = {r["id"] for r in rows if r["variant"] == names[-1] and r["length"] == args.cap}
        rows = [r for r in rows if r["id"] in done]  # questions every variant answered
        report(args, summarise(rows, names, lengths, args.cap, mean_ci, paired_delta), len(done))
        return 0
    common.require_contoso()
    settings = load_settings(profile="default", overrides={"home": str(args.home), "generator": {"cache_dir": str(args.models)}})
    retriever = common.contoso_retriever(settings)
    generator = assembly.generator(settings)
    if args.adapter:
        generator.load_adapter("bench", str(args.adapter))
    from transformers import AutoTokenizer

    from assistant.runtime.checkpoint import resolve_model_dir

    # The checkpoint's own tokenizer cuts answers to each length, whichever backend decodes.
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir(settings.generator.model, args.models))
    service = assembly.chat_service(settings, retriever, generator)
    model = SentenceTransformer(str(common.model_dir()), device="cpu", local_files_only=True)
    embed = lambda texts: model.encode(texts, normalize_embeddings=True)  # noqa: E731
    naive = NaiveIndex(model) if "naive" in variants else None
    pages = {"oracle", "oracle_first", "top1_page", "top2_pages"}
    chunks = retriever.store.docstore.collection_chunks("contoso") if pages & set(variants) else []
    runs = [(v, v, None) for v in variants] + ([(f"{v}+lora", v, "bench") for v in variants] if args.adapter else [])
    golden = common.load_golden()
    golden = golden[: args.limit] if args.limit else golden
    common.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    with (common.RESULTS_DIR / f"{args.tag}.jsonl").open("w", encoding="utf-8") as log:
        # Blocks of --batch questions, every variant per block: an interrupted run still compares them all.
        for start in range(0, len(golden), args.batch):
            block = golden[start : start + args.batch]
            prompts = [ragtune_prompts(service, row["question"], chunks, row.get("sources") or []) for row in block]
            for row, made in zip(block, prompts):
                if naive is not None:
                    made["naive"] = naive.prompt(row["question"])
            for variant, source, adapter in runs:
                answers = generate_block(service, tokenizer, [made.get(source, (None,))[0] for made in prompts],
                                         args.cap, adapter)
                for row, made, (answer, tokens, seconds) in zip(block, prompts, answers):
                    for length in lengths:
                        cut = tokenizer.decode(tokens[:length], skip_special_tokens=True).strip() if tokens else answer
                        out = {"id": row["id"], "variant": variant, "length": length, "answer": cut,
                               "seconds": round(seconds, 1), "tokens": len(tokens), "pages": made.get(source, ("", []))[1],
                               **score(cut, row["reference"], embed)}
                        rows.append(out)
                        log.write(json.dumps(out, default=str) + "\n")
                log.flush()
            common.console.print(f"  {start + len(block)}/{len(golden)} {block[-1]['id']}", style="dim")
    report(args, summarise(rows, names, lengths, args.cap, mean_ci, paired_delta), len(golden))
    return 0


def report(args: argparse.Namespace, summary: list[dict[str, Any]], questions: int) -> None:
    table = common.table(f"Naive RAG vs ragtune's answer half, {questions} Contoso dev questions (delta vs served@{args.cap})",
                         ["variant", "len", "F1", "sim", "cited", "dF1 [95%]", "dsim [95%]"], [
        (s["variant"], s["length"], f"{s['token_f1']:.3f}", f"{s['similarity']:.3f}", f"{s['cited']:.2f}",
         f"{s['d_token_f1']:+.3f} [{s['d_token_f1_ci'][0]:+.3f}, {s['d_token_f1_ci'][1]:+.3f}]",
         f"{s['d_similarity']:+.3f} [{s['d_similarity_ci'][0]:+.3f}, {s['d_similarity_ci'][1]:+.3f}]") for s in summary])
    common.console.print(table)
    common.write_json(args.tag, {"environment": common.environment(), "args": {k: str(v) for k, v in vars(args).items()},
                                 "questions": questions, "rows": summary})


def summarise(rows, variants, lengths, cap, mean_ci, paired_delta) -> list[dict[str, Any]]:
    base = {r["id"]: r for r in rows if r["variant"] == "served" and r["length"] == cap}
    out = []
    for variant in variants:
        for length in lengths:
            mine = [r for r in rows if r["variant"] == variant and r["length"] == length and r["id"] in base]
            if not mine:
                continue
            entry: dict[str, Any] = {"variant": variant, "length": length, "n": len(mine)}
            for metric in ("token_f1", "similarity", "cited", "refused", "empty"):
                entry[metric] = float(np.mean([float(r[metric]) for r in mine]))
            for metric in ("token_f1", "similarity"):
                d = paired_delta([base[r["id"]][metric] for r in mine], [r[metric] for r in mine])
                entry[f"d_{metric}"], entry[f"d_{metric}_ci"] = d.delta, [d.low, d.high]
            entry["token_f1_ci"] = mean_ci([r["token_f1"] for r in mine])
            out.append(entry)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
