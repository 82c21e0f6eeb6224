"""Retrieval ablation: hybrid page hit@5, doc hit@5 and MRR per setting, with paired-bootstrap deltas.

    .venv/bin/python bench/retrieval_ablation.py --set contoso --home /tmp/retr-homes/ctx --tag ctx \
        [--chunking page_boundaries=true ...] [--variant NAME:key=value,key=value ...] \
        [--against bench/results/retrieval_ablation-base.json:NAME]

One home = one index (the chunking settings); it is ingested once and reused. Each `--variant` is a
set of `retrieval.*` overrides searched on that index; the first variant (or `--against`, a variant of
an earlier run on another index) is the reference of the paired deltas. `--set contoso` scores the 120
answerable Contoso dev questions; `--set kestrel` the 70 answerable Kestrel questions (a gold source
without a page, as in Markdown and HTML, matches its whole document).

So settings are chosen on one half and checked on the other, every table also shows page hit@5 on the
halves A and B (a fixed split by the SHA-1 of each question id). Writes
bench/results/retrieval_ablation-TAG.json (per-question ranks of every variant, for later --against).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import _common as common

SETS = {
    "contoso": (common.CONTOSO_DOCS, common.CONTOSO_GOLDEN),
    "kestrel": (common.PROJECT / "samples" / "kestrel" / "docs",
                common.PROJECT / "samples" / "kestrel" / "golden" / "answerable.jsonl"),
}
K = 5


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", choices=sorted(SETS), default="contoso")
    p.add_argument("--home", type=Path, required=True, help="ragtune home for this index (ingested if needed)")
    p.add_argument("--tag", required=True, help="names the results file")
    p.add_argument("--chunking", action="append", default=[], help="chunking.KEY=VALUE for this index")
    p.add_argument("--variant", action="append", default=[], help="NAME:key=value,... retrieval overrides")
    p.add_argument("--against", help="RESULTS.json:VARIANT of an earlier run: the reference of the deltas")
    return p.parse_args(argv)


def _value(text: str) -> Any:
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_pairs(text: str) -> dict[str, Any]:
    return {k.strip(): _value(v.strip()) for k, v in (p.split("=", 1) for p in text.split(",") if p.strip())}


def half(question_id: str) -> str:
    return "A" if hashlib.sha1(str(question_id).encode()).digest()[0] % 2 == 0 else "B"


def first_rank(retrieved: list[tuple[str, int | None]], gold: list[dict], level: str) -> int | None:
    """1-based rank of the first hit on the gold document (doc) or gold page (page; a gold source without a
    page matches its whole document)."""
    for rank, (document, page) in enumerate(retrieved, start=1):
        for g in gold:
            if document != g["document"]:
                continue
            if level == "doc" or g.get("page") is None or (page is not None and int(page) == int(g["page"])):
                return rank
    return None


def hit(rank: int | None, k: int = K) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def ingest(settings, docs: Path) -> dict[str, Any]:
    from assistant import assembly

    job = assembly.ingest_job(settings)
    report = job.run([docs])
    job.store.close()
    if report.exit_code() != 0:
        for f in report.files:
            if f.status == "failed":
                common.console.print(f"[red]ingest failed[/red] {f.path}: {f.reason}")
        sys.exit(f"error: ingest did not complete (exit code {report.exit_code()})")
    pages = sum(f.pages or 0 for f in report.files if f.status in {"added", "updated"})
    return {"counts": report.counts(), "chunks": report.chunks, "pages_parsed": pages, "seconds": round(report.seconds, 1),
            "pages_per_s": round(pages / report.seconds, 3) if pages and report.seconds else None}


def main(argv: Sequence[str] | None = None) -> int:
    from assistant.settings import load_settings
    from eval.stats import mean_ci, paired_delta

    args = parse_args(argv)
    docs, golden_path = SETS[args.set]
    if not docs.exists() or not golden_path.exists():
        sys.exit(f"error: {docs} or {golden_path} is missing (BENCH_SHARED_DATA points at the shared data)")
    golden = common.load_golden(golden_path)
    chunking = {k: v for item in args.chunking for k, v in parse_pairs(item).items()}
    base = {"home": str(args.home), "chunking": chunking}
    settings = load_settings(profile="default", overrides=base, environ={})
    if settings.embedder.mode == "fake":
        sys.exit("error: this benchmark needs the real embedder")
    ingest_info = ingest(settings, docs)
    common.console.print(f"ingest: {ingest_info}", style="dim")

    variants = [v.split(":", 1) if ":" in v else (v, "") for v in (args.variant or ["default:"])]
    runs: dict[str, dict[str, Any]] = {}
    questions = [g["question"] for g in golden]
    from assistant import assembly

    for name, pairs in variants:
        s = load_settings(profile="default", overrides={**base, "retrieval": parse_pairs(pairs)}, environ={})
        retriever = assembly.retriever(s)
        t = time.perf_counter()
        rows = retriever.search_many(questions, K, mode="hybrid")
        ms = 1000 * (time.perf_counter() - t) / len(questions)
        retrieved = [[(h.document, h.page) for h in row] for row in rows]
        runs[name] = {"retrieval": parse_pairs(pairs), "ms_per_query": round(ms, 1),
                      "page_ranks": [first_rank(r, g["sources"], "page") for r, g in zip(retrieved, golden)],
                      "doc_ranks": [first_rank(r, g["sources"], "doc") for r, g in zip(retrieved, golden)]}
        retriever.store.close()

    ref_name, ref_ranks = variants[0][0], runs[variants[0][0]]["page_ranks"]
    if args.against:
        path, _, variant = args.against.rpartition(":")
        ref_name = f"{Path(path).stem.removeprefix('retrieval_ablation-')}:{variant}"
        ref_ranks = json.loads(Path(path).read_text())["variants"][variant]["page_ranks"]
    halves = [half(g.get("id", i)) for i, g in enumerate(golden)]
    table_rows = []
    for name, run in runs.items():
        page5 = [hit(r) for r in run["page_ranks"]]
        low, high = mean_ci(page5) or (0.0, 0.0)
        delta = paired_delta([hit(r) for r in ref_ranks], page5)
        summary = {
            "page@1": sum(hit(r, 1) for r in run["page_ranks"]) / len(golden),
            "page@5": sum(page5) / len(golden), "page@5_ci": [low, high],
            "page_mrr": sum(1 / r for r in run["page_ranks"] if r) / len(golden),
            "doc@5": sum(hit(r) for r in run["doc_ranks"]) / len(golden),
            "page@5_A": _mean([p for p, h in zip(page5, halves) if h == "A"]),
            "page@5_B": _mean([p for p, h in zip(page5, halves) if h == "B"]),
            "delta_vs": ref_name, "delta": [delta.delta, delta.low, delta.high],
        }
        run["summary"] = summary
        table_rows.append([name, f"{summary['page@5']:.3f} [{low:.3f}, {high:.3f}]",
                           f"{delta.delta:+.3f} [{delta.low:+.3f}, {delta.high:+.3f}]", summary["page@1"],
                           summary["page_mrr"], summary["doc@5"], summary["page@5_A"], summary["page@5_B"],
                           run["ms_per_query"]])
    common.console.print(common.table(
        f"{args.set}: {len(golden)} questions, index {args.tag} ({chunking or 'default chunking'}); "
        f"halves A {halves.count('A')} / B {halves.count('B')}; deltas vs {ref_name}",
        ["variant", "page@5 [95% CI]", "Δ page@5 [95% CI]", "page@1", "page MRR", "doc@5", "page@5 A", "page@5 B",
         "ms/q"], table_rows))
    payload = {"benchmark": "retrieval_ablation", "set": args.set, "questions": len(golden), "tag": args.tag,
               "home": str(args.home), "chunking": settings.chunking.model_dump(), "ingest": ingest_info,
               "halves": halves, "variants": runs, "environment": common.environment()}
    path = common.write_json(f"retrieval_ablation-{args.set}-{args.tag}", payload)
    common.console.print(f"wrote {path}", style="dim")
    return 0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


if __name__ == "__main__":
    sys.exit(main())
