"""`ragtune eval`: golden questions → every variant answers → RAGAS scores → scorecard, as a recipe.

setup (golden rows, variants, answerer, scorer) → run (answer each variant, score each answer)
→ summarise (means with bootstrap intervals, latency percentiles, gates) → save to one run
directory: results.jsonl / results.csv (per question), summary.json, summary.md, scorecard.html
and config.yaml (the resolved settings and what was asked).
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from eval import gates as G
from eval.answerers import Answerer
from eval.golden import GoldenRow
from eval.metrics import CATALOGUE, Scorer
from eval.stats import mean_ci, paired_delta
from eval.variants import Variant

# progress(variant name, total) -> advance(n): the CLI draws a bar per variant.
Progress = Callable[[str, int], Callable[[int], None]]


@dataclass
class EvalRun:
    out_dir: Path
    summary: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def gates_passed(self) -> bool:
        return all(g["passed"] for g in self.summary.get("gates", []))


class EvalJob:
    def __init__(self, answerer: Answerer, scorer: Scorer, variants: list[Variant], golden: list[GoldenRow],
                 judge: str | None, seed: int = 0):
        self.answerer, self.scorer, self.variants, self.golden = answerer, scorer, variants, golden
        self.judge, self.seed = judge, seed

    def run(self, out_dir: Path, config: dict[str, Any], progress: Progress, rules: list[str] = ()) -> EvalRun:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        started, wall = datetime.now(timezone.utc), time.monotonic()
        rows: list[dict[str, Any]] = []
        for variant in self.variants:
            answers = self.answerer.answer(variant, self.golden, progress(variant.name, len(self.golden)))
            for question, answer in zip(self.golden, answers):
                metrics = self.scorer.score(question, answer, variant.retrieval)
                rows.append({"variant": variant.name, "id": question.id, "question": question.question,
                             "reference": question.reference, "answerable": question.answerable, **answer,
                             "metrics": metrics})
        order = {q.id: n for n, q in enumerate(self.golden)}
        rows.sort(key=lambda r: order[r["id"]])  # golden order, variants within (the sort is stable)
        summary = self.summarise(rows, started, time.monotonic() - wall, config)
        summary["pairs"] = paired_variants(rows, [v.name for v in self.variants], self.seed)
        summary["gates"] = [g.to_dict() for g in G.check(list(rules), summary["variants"])]
        self.save(out_dir, summary, rows)
        return EvalRun(out_dir, summary, rows)

    # --- summarise ------------------------------------------------------------------------------
    def summarise(self, rows: list[dict], started: datetime, duration_s: float, config: dict) -> dict[str, Any]:
        variants: dict[str, dict] = {}
        intervals: dict[str, dict] = {}
        counts: dict[str, dict] = {}
        timing: dict[str, dict] = {}
        for variant in self.variants:
            mine = [r for r in rows if r["variant"] == variant.name]
            names = self.scorer.metric_names(variant.retrieval)
            variants[variant.name], intervals[variant.name] = {}, {}
            for name in names:
                values = [r["metrics"][name] for r in mine if r["metrics"].get(name) is not None]
                variants[variant.name][name] = float(np.mean(values)) if values else None
                ci = mean_ci(values, self.seed)
                if ci:
                    intervals[variant.name][name] = list(ci)
            counts[variant.name] = {"answerable": sum(r["answerable"] for r in mine),
                                    "unanswerable": sum(not r["answerable"] for r in mine)}
            latency = [r["latency_ms"] for r in mine if r.get("finish_reason") != "no_context"] or [0.0]
            timing[variant.name] = {"p50_ms": float(np.percentile(latency, 50)), "p95_ms": float(np.percentile(latency, 95))}
        used = [n for n in CATALOGUE if any(n in v for v in variants.values())]
        return {
            "variants": variants,
            "intervals": intervals,
            "counts": counts,
            "metrics": {n: {**asdict(CATALOGUE[n]), "requires": CATALOGUE[n].needs or None} for n in used},
            "run": {
                "golden": ", ".join(Path(g).name for g in config.get("golden") or []), "started": started.isoformat(timespec="seconds"),
                "duration_s": round(duration_s, 1), "judge": self.judge, "model": self.answerer.model,
                "mode": self.answerer.description,
                "variants": {v.name: {"adapter": v.adapter, "retrieval": v.retrieval} for v in self.variants},
                "timing": timing, "questions": len(self.golden), "ragtune_version": config.get("ragtune_version"),
                "privacy": config.get("privacy") or {},
                "latency_note": "in-process latency is a batch's wall time shared by its answers" if self.answerer.description == "in-process" else "",
            },
        }

    # --- save ---------------------------------------------------------------------------------------
    def save(self, out_dir: Path, summary: dict, rows: list[dict]) -> None:
        from eval.report import write_report
        from eval.summary_markdown import render_markdown

        with (out_dir / "results.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        write_csv(out_dir / "results.csv", rows, list(summary["metrics"]))
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        (out_dir / "summary.md").write_text(render_markdown(summary), encoding="utf-8")
        write_report(out_dir, summary, rows)


# What fine-tuning must beat: the same questions with and without the adapter.
PAIRS = (("rag", "rag+lora"), ("base", "lora"), ("base", "rag"))


def paired_variants(rows: list[dict], names: list[str], seed: int = 0) -> list[dict[str, Any]]:
    """Paired-bootstrap deltas (b - a) between variants of this run, over the questions both scored:
    the standard pairs, plus every adapter:REF variant against `rag`."""
    pairs = [p for p in PAIRS if p[0] in names and p[1] in names]
    pairs += [("rag", n) for n in names if "rag" in names and n not in ("base", "rag", "lora", "rag+lora")]
    index = {(r["variant"], r["id"]): r["metrics"] for r in rows}
    out = []
    for a, b in pairs:
        for metric in CATALOGUE:
            both = [(index[(a, i)][metric], m[metric]) for (v, i), m in index.items()
                    if v == b and (a, i) in index and m.get(metric) is not None and index[(a, i)].get(metric) is not None]
            if len(both) >= 2:
                d = paired_delta([x for x, _ in both], [y for _, y in both], seed)
                out.append({"a": a, "b": b, "metric": metric, "delta": d.delta, "low": d.low, "high": d.high,
                            "p_value": d.p_value, "n": d.n, "significant": d.significant})
    return out


def write_csv(path: Path, rows: list[dict], metrics: list[str]) -> None:
    def pages(items: list[dict]) -> str:
        return "; ".join(f"{i['document']}:{i.get('page') or ''}" for i in items)

    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", "id", "question", "answerable", "answer", "refused", "latency_ms", "citations",
                         "contexts", "guardrails", *metrics])
        for r in rows:
            writer.writerow([r["variant"], r["id"], r["question"], r["answerable"], r["answer"], r["refused"],
                             r["latency_ms"], pages(r["citations"]), pages(r["contexts"]),
                             "; ".join(map(str, r["guardrails"])), *[r["metrics"].get(m, "") for m in metrics]])


def load_run(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """summary.json and results.jsonl of an earlier run (for compare and --no-regression-vs)."""
    summary_path, results_path = Path(run_dir) / "summary.json", Path(run_dir) / "results.jsonl"
    if not summary_path.is_file() or not results_path.is_file():
        raise FileNotFoundError(f"{run_dir} is not an evaluation run (needs summary.json and results.jsonl)")
    rows = [json.loads(line) for line in results_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return json.loads(summary_path.read_text(encoding="utf-8")), rows
