"""PII redactor recall and precision on the shared synthetic PII set, and its false positives on benign text.

    .venv/bin/python bench/pii_recall.py [--show N]

Scores finetune.pii.PiiRedactor on ../shared/data/security/pii_synth_v2.dev.json (1,500 sentences with
17 labelled entity types, of which 8 map to redactor kinds; US driver's licences count as national_id).
A gold span is found when a predicted span of its kind overlaps it; "exact" needs the same boundaries;
"hidden" counts a gold span covered by a redaction of any kind (what matters for privacy). Every entity
in a sentence is labelled, so a prediction that overlaps no gold span of its kind is a false positive:
"on other label" when it hits an entity of another type (a phone pattern on a ZIP code), "unlabelled"
when it hits plain text. Three detectors: rules only, rules + the hashed name tagger (what the fake embedder
gets), rules + the contextual MiniLM name tagger gated by the hashed one (what the real embedder gets). The benign sets (banking77 support queries, NotInject prompts) hold no PII, so
every redaction there is a false positive; reported per 1000 characters. The Contoso HR PDFs (policy prose,
unlabelled) are scanned the same way: they do hold contact details (the plan's hotline numbers and mailboxes),
so their count is an upper bound on false positives in HR text; --show lists the hits to review. --show N
prints N misses and N false positives per kind. Writes bench/results/pii_recall.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from typing import Any, Sequence

import _common as common

from finetune.pii import KINDS, PiiRedactor
from guardrails.pii_data import split, template
from guardrails.pii_rail import PiiMasker
from guardrails.train_pii_context import encoder_from_package

SECURITY = common.SHARED_DATA / "security"
PII_SET = SECURITY / "pii_synth_v2.dev.json"
GOLD_KIND = {
    "EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "CREDIT_CARD": "card", "US_SSN": "national_id",
    "US_DRIVER_LICENSE": "national_id", "IBAN_CODE": "iban", "IP_ADDRESS": "ip", "PERSON": "person",
    "STREET_ADDRESS": "address",
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--show", type=int, default=0, help="print this many misses and false positives per kind")
    return p.parse_args(argv)


def load_benign() -> dict[str, list[str]]:
    sets: dict[str, list[str]] = {}
    path = SECURITY / "banking77_benign.dev.jsonl"
    if path.exists():
        sets["banking77"] = [json.loads(line)["prompt"] for line in path.open(encoding="utf-8") if line.strip()]
    for name in ("notinject_one", "notinject_two"):
        path = SECURITY / f"{name}.dev.json"
        if path.exists():
            sets[name] = [row["prompt"] for row in json.loads(path.read_text(encoding="utf-8"))]
    if common.CONTOSO_GOLDEN.exists():
        sets["contoso questions"] = [row["question"] for row in common.load_golden()]
    return sets


def load_hr_prose() -> dict[str, list[str]]:
    if not common.CONTOSO_DOCS.exists():
        return {}
    from pypdf import PdfReader

    pages = [page.extract_text() or "" for pdf in common.contoso_pdfs() for page in PdfReader(pdf).pages]
    return {"contoso-hr pages": pages}


def overlaps(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    return a_start < b_end and b_start < a_end


def score_labelled(redactor: PiiRedactor, rows: list[dict[str, Any]], show: int) -> tuple[dict[str, dict], float]:
    stats = {kind: Counter() for kind in KINDS}
    misses, false_pos = defaultdict(list), defaultdict(list)
    started = time.perf_counter()
    predictions = [redactor.find(row["full_text"]) for row in rows]
    seconds = time.perf_counter() - started
    for row, spans in zip(rows, predictions):
        text = row["full_text"]
        gold = [(GOLD_KIND.get(g["entity_type"]), g["start_position"], g["end_position"]) for g in row["spans"]]
        for kind, start, end in gold:
            if kind is None:
                continue
            same = [s for s in spans if s.kind == kind and overlaps(s.start, s.end, start, end)]
            stats[kind]["gold"] += 1
            stats[kind]["found"] += bool(same)
            stats[kind]["exact"] += any(s.start == start and s.end == end for s in same)
            covered = sum(1 for i in range(start, end) if any(s.start <= i < s.end for s in spans))
            stats[kind]["hidden"] += covered == end - start
            if not same:
                misses[kind].append(text[start:end])
        for span in spans:
            stats[span.kind]["predicted"] += 1
            if any(kind == span.kind and overlaps(span.start, span.end, s, e) for kind, s, e in gold):
                stats[span.kind]["correct"] += 1
            elif any(overlaps(span.start, span.end, s, e) for _, s, e in gold):
                stats[span.kind]["on_other"] += 1
                false_pos[span.kind].append(f"{span.text!r} in a {labels_at(row, span)} span")
            else:
                stats[span.kind]["unlabelled"] += 1
                false_pos[span.kind].append(f"{span.text!r} in {text[max(0, span.start - 30):span.end + 30]!r}")
    if show:
        for kind in KINDS:
            for title, items in (("missed", misses[kind]), ("false positive", false_pos[kind])):
                for item in items[:show]:
                    shown = repr(item) if title == "missed" else item
                    common.console.print(f"[dim]{kind} {title}:[/dim] {shown}", highlight=False)
    return stats, seconds


def labels_at(row: dict[str, Any], span) -> str:
    return "/".join(sorted({g["entity_type"] for g in row["spans"]
                            if overlaps(span.start, span.end, g["start_position"], g["end_position"])}))


def ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def summary(stats: dict[str, Counter]) -> dict[str, float | None]:
    """Overall recall over the mapped kinds, and the structured kinds' lowest recall."""
    gold = sum(stats[k]["gold"] for k in KINDS)
    found = sum(stats[k]["found"] for k in KINDS)
    structured = [ratio(stats[k]["found"], stats[k]["gold"]) for k in KINDS if k != "person" and stats[k]["gold"]]
    return {"overall_recall": ratio(found, gold), "structured_min_recall": min(structured) if structured else None}


def latencies(masker: PiiMasker, texts: list[str]) -> dict[str, float]:
    """Per-message time of the whole PII/secret rail (PiiMasker.find), one message at a time (pure Python: one
    core). Wall time includes waiting for the CPU when the machine is busy; CPU time (this thread's) does not."""
    masker.find("warm-up: Dr. Ana Lee, ana@example.com")
    wall, cpu = [], []
    for text in texts:
        started, started_cpu = time.perf_counter(), time.thread_time()
        masker.find(text)
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    def pick(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"n": len(texts), "p50_ms": pick(wall, 0.5), "p95_ms": pick(wall, 0.95), "max_ms": 1000 * max(wall),
            "cpu_p50_ms": pick(cpu, 0.5), "cpu_p95_ms": pick(cpu, 0.95), "mean_chars": sum(map(len, texts)) / len(texts),
            "load_average_1m": os.getloadavg()[0]}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not PII_SET.exists():
        raise SystemExit(f"error: {PII_SET} is missing; this benchmark needs ../shared/data/security beside the project")
    rows = json.loads(PII_SET.read_text(encoding="utf-8"))
    train_rows, held_rows = split(rows)
    encoder = encoder_from_package()
    rules, before, after = PiiRedactor(name_model=None), PiiRedactor(), PiiRedactor(encoder=encoder)
    held_rules, _ = score_labelled(rules, held_rows, 0)
    held_before, _ = score_labelled(before, held_rows, 0)
    held_after, seconds = score_labelled(after, held_rows, args.show)
    all_after, _ = score_labelled(after, rows, 0)
    chars = sum(len(row["full_text"]) for row in held_rows)

    labelled = []
    for kind in KINDS:
        r, b, a = held_rules[kind], held_before[kind], held_after[kind]
        labelled.append([kind, a["gold"], ratio(r["found"], r["gold"]), ratio(b["found"], b["gold"]),
                         ratio(a["found"], a["gold"]), ratio(a["exact"], a["gold"]), ratio(a["hidden"], a["gold"]),
                         ratio(r["correct"], r["predicted"]), ratio(b["correct"], b["predicted"]),
                         ratio(a["correct"], a["predicted"]), a["on_other"],
                         a["unlabelled"], ratio(all_after[kind]["found"], all_after[kind]["gold"])])
    sr, sb, sa, sall = summary(held_rules), summary(held_before), summary(held_after), summary(all_after)
    labelled.append(["overall", sum(held_after[k]["gold"] for k in KINDS), sr["overall_recall"], sb["overall_recall"],
                     sa["overall_recall"], "", "", "", "", "", "", "", sall["overall_recall"]])
    templates = len({template(r) for r in held_rows})
    common.console.print(common.table(
        f"PII detector on the HELD-OUT split of {PII_SET.name}: {len(held_rows)} of {len(rows)} sentences, "
        f"{templates} whole templates the name tagger was neither trained nor calibrated on "
        f"(guardrails/pii_data.split); {1e6 * seconds / chars:.2f} ms per 1000 chars. rules = no name model, "
        "hashed = rules + hashed name tagger (the fake embedder's), ctx = rules + contextual MiniLM tagger gated by "
        "the hashed one (the real embedder's; exact/hidden/FP columns are ctx's); last column: ctx on all rows, "
        "training templates included (optimistic)",
        ["kind", "gold", "recall rules", "recall hashed", "recall ctx", "exact", "hidden", "precision rules",
         "precision hashed", "precision ctx", "FP on other label", "FP unlabelled", "recall all rows"], labelled))

    benign_rows, benign_payload = [], {}
    for name, texts in {**load_benign(), **load_hr_prose()}.items():
        per_kind: Counter = Counter()
        examples = []
        before_total = sum(len(before.find(text)) for text in texts)
        for text in texts:
            for span in after.find(text):
                per_kind[span.kind] += 1
                examples.append(f"{span.kind}: {span.text!r} in {text[max(0, span.start - 50):span.end + 30]!r}")
        size = sum(len(t) for t in texts)
        total = sum(per_kind.values())
        benign_rows.append([name, len(texts), size, before_total, total, 1000 * total / size,
                            ", ".join(f"{k} {n}" for k, n in per_kind.most_common()) or "-"])
        benign_payload[name] = {"texts": len(texts), "chars": size, "redactions_before": before_total,
                                "redactions": total, "per_kind": dict(per_kind), "examples": examples}
        for example in examples[:args.show]:
            common.console.print(f"[dim]{name} redaction:[/dim] {example}", highlight=False)
    if benign_rows:
        common.console.print(common.table("Redactions on benign text (banking77, NotInject, Contoso questions: no "
                                          "PII, so all false; contoso-hr pages: policy prose with real contact details)",
                                          ["set", "texts", "chars", "hashed", "ctx", "ctx per 1000 chars",
                                           "ctx by kind"], benign_rows))

    chat = [t for name, texts in load_benign().items() for t in texts] + [r["full_text"] for r in held_rows]
    lat = {"rules only": latencies(PiiMasker(name_model=None), chat), "rules + hashed": latencies(PiiMasker(), chat),
           "rules + ctx (gated)": latencies(PiiMasker(encoder=encoder), chat)}
    common.console.print(common.table(
        f"PII/secret rail latency per chat message (PiiMasker.find; banking77, NotInject, Contoso questions and "
        f"held-out sentences, {len(chat)} messages, mean {lat['rules only']['mean_chars']:.0f} chars; target <= 10 ms p95)",
        ["detector", "wall p50 ms", "wall p95 ms", "wall max ms", "CPU p50 ms", "CPU p95 ms", "load avg"],
        [[name, v["p50_ms"], v["p95_ms"], v["max_ms"], v["cpu_p50_ms"], v["cpu_p95_ms"], v["load_average_1m"]]
         for name, v in lat.items()]))
    path = common.write_json("pii_recall", {
        "environment": common.environment(), "split": {"rows": len(rows), "held_out_rows": len(held_rows),
                                                       "held_out_templates": templates},
        "held_out": {"rules": {k: dict(held_rules[k]) for k in KINDS}, "before": {k: dict(held_before[k]) for k in KINDS},
                     "after": {k: dict(held_after[k]) for k in KINDS}, "summary_rules": sr,
                     "summary_before": sb, "summary_after": sa, "before_is": "rules + hashed tagger",
                     "after_is": "rules + contextual tagger (gated)"},
        "all_rows_after": {k: dict(all_after[k]) for k in KINDS}, "all_rows_summary": sall,
        "labelled_seconds": seconds, "labelled_chars": chars, "benign": benign_payload, "latency": lat})
    common.console.print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
