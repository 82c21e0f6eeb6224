"""The scorecard writers: self-contained, escaped, complete HTML and a faithful Markdown table."""

from __future__ import annotations

import copy
import re
from collections import Counter
from html.parser import HTMLParser

import pytest

from eval.report import CONTEXT_CHARS, write_report
from eval.summary_markdown import NO_JUDGE, render_markdown

VARIANTS = ["base", "rag", "rag+lora"]
QUESTIONS = [  # golden order, deliberately not alphabetical
    ("k-002", "What is the torque for the wing bolt?", "35 Nm, per section 4.2.", True),
    ("k-001", "Who approved the 2019 budget?", "The board, in March.", True),
    ("k-009", "What is the CEO's shoe size?", None, False),
]
SCRIPT = "<script>alert(1)</script>"


def _summary() -> dict:
    return {
        "variants": {
            "base": {"token_f1": 0.2, "context_recall": None, "false_refusal_rate": 0.05},
            "rag": {"token_f1": 0.358, "context_recall": 0.8, "false_refusal_rate": 0.10},
            "rag+lora": {"token_f1": 0.31, "context_recall": 0.75, "false_refusal_rate": 0.02},
        },
        "intervals": {
            "base": {"token_f1": [0.15, 0.25]},
            "rag": {"token_f1": [0.31, 0.4], "context_recall": [0.7, 0.9]},
            "rag+lora": {"token_f1": [0.27, 0.35]},
        },
        "counts": {v: {"answerable": 2, "unanswerable": 1} for v in VARIANTS},
        "metrics": {
            "token_f1": {"label": "Token F1", "description": "SQuAD token overlap", "higher_is_better": True,
                         "applies_to": "answerable"},
            "context_recall": {"label": "Context recall", "description": "reference covered by contexts",
                               "higher_is_better": True, "applies_to": "answerable"},
            "false_refusal_rate": {"label": "False refusals", "description": "refused an answerable question",
                                   "higher_is_better": False, "applies_to": "answerable"},
        },
        "run": {
            "golden": "golden/kestrel.jsonl", "started": "2025-06-01T10:00:00+00:00", "duration_s": 754.2,
            "judge": None, "model": "gemma3-270m", "mode": "in-process", "ragtune_version": "0.1.0",
            "variants": {"base": {"adapter": "base", "retrieval": False},
                         "rag": {"adapter": "base", "retrieval": True},
                         "rag+lora": {"adapter": "assistant@v2", "retrieval": True}},
            "timing": {v: {"p50_ms": 4000.0 + i * 500, "p95_ms": 9000.0 + i * 500} for i, v in enumerate(VARIANTS)},
        },
        "gates": [{"rule": "rag+lora.token_f1>=0.3", "passed": True, "value": 0.31},
                  {"rule": "rag.false_refusal_rate<=0.05", "passed": False, "value": 0.10}],
    }


def _rows() -> list[dict]:
    rows = []
    for qid, question, reference, answerable in QUESTIONS:
        for variant in VARIANTS:
            retrieval = variant != "base"
            answer = f"{variant} says: see https://example.com/{qid} [1]"
            if (qid, variant) == ("k-001", "rag"):
                answer = f"Sure! {SCRIPT} **bold** markdown"
            rows.append({
                "variant": variant, "id": qid, "question": question, "reference": reference,
                "answerable": answerable, "answer": answer, "refused": not answerable and variant != "base",
                "finish_reason": "stop",
                "citations": [{"number": 1, "document": "manual.pdf", "page": 29}] if retrieval else [],
                "contexts": [{"number": n, "document": "manual.pdf", "page": 29, "page_end": 30,
                              "heading": "4.2 Bolts", "text": f"chunk {n} of {qid} " + "x" * (2000 if n == 2 else 10)}
                             for n in (1, 2)] if retrieval else [],
                "metrics": {"token_f1": 0.4 if answerable else None,
                            "context_recall": 1.0 if retrieval and answerable else None,
                            "refused_correctly": None if answerable else float(variant != "base")},
                "latency_ms": 5321.0, "adapter": "base" if variant != "rag+lora" else "assistant@v2",
                "guardrails": [],
            })
    return rows


class _Page(HTMLParser):
    """Records structure: tag balance, attributes, and which question block each variant cell sits in."""

    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "source", "area", "base"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, dict]] = []
        self.errors: list[str] = []
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str]] = []
        self.cells: Counter[tuple[str, str]] = Counter()
        self.best: list[tuple[str, str]] = []
        self.titled_dash: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags[tag] += 1
        self.attrs += [(tag, k, v) for k, v in a.items()]
        if "data-variant" in a:
            question = next((s[1]["id"] for s in reversed(self.stack) if s[1].get("id", "").startswith("q-")), None)
            if question:
                self.cells[(question, a["data-variant"])] += 1
            elif "best" in a.get("class", "").split():
                self.best.append((a["data-variant"], a["data-metric"]))
            elif "na" in a.get("class", "").split():
                self.titled_dash.append((a["data-variant"], a.get("title", "")))
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        self.tags[tag] += 1
        self.attrs += [(tag, k, v or "") for k, v in attrs]

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1][0] if self.stack else 'nothing'}")
            return
        self.stack.pop()


@pytest.fixture
def page(tmp_path) -> tuple[str, _Page]:
    path = write_report(tmp_path, _summary(), _rows())
    assert path == tmp_path / "scorecard.html"
    text = path.read_text(encoding="utf-8")
    parser = _Page()
    parser.feed(text)
    parser.close()
    return text, parser


def test_html_is_well_formed_and_accessible(page) -> None:
    text, p = page
    assert p.errors == [] and [t for t, _ in p.stack] == [], (p.errors, p.stack)
    assert text.startswith("<!DOCTYPE html>") and '<html lang="en">' in text and '<meta charset="utf-8">' in text
    assert p.tags["title"] >= 1 and p.tags["details"] >= len(QUESTIONS)
    assert ("th", "scope", "col") in p.attrs and ("th", "scope", "row") in p.attrs
    assert "overflow-x:auto" in text


def test_charts_are_inline_labelled_svg(page) -> None:
    text, p = page
    assert p.tags["svg"] == 2  # metrics and latency
    labels = [v for t, k, v in p.attrs if t == "svg" and k == "aria-label"]
    assert len(labels) == 2 and "Token F1" in labels[0] and "latency" in labels[1]
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text


def test_no_external_requests_or_scripts(page) -> None:
    text, p = page
    assert p.tags["script"] == 0 and p.tags["link"] == 0 and p.tags["img"] == 0
    for tag, key, value in p.attrs:
        assert "http" not in value.lower(), (tag, key, value)
    assert "@import" not in text and "url(http" not in text
    # The only http text is the model's own (escaped) answer text.
    assert text.count("https://example.com") == sum(1 for r in _rows() if "example.com" in r["answer"])


def test_model_output_is_escaped(page) -> None:
    text, _ = page
    assert SCRIPT not in text and "<script" not in text.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_every_question_variant_appears_once_in_golden_order(page) -> None:
    text, p = page
    expected = {(f"q-{qid}", v) for qid, *_ in QUESTIONS for v in VARIANTS}
    assert set(p.cells) == expected and set(p.cells.values()) == {1}
    positions = [text.index(f'id="q-{qid}"') for qid, *_ in QUESTIONS]
    assert positions == sorted(positions)


def test_table_shows_ci_best_and_missing_reason(page) -> None:
    text, p = page
    assert "0.358 <span class=\"ci\">[0.31, 0.40]</span>" in text
    # Higher-is-better picks rag; lower-is-better picks rag+lora, not the largest value.
    assert sorted(p.best) == [("rag", "context_recall"), ("rag", "token_f1"), ("rag+lora", "false_refusal_rate")]
    assert p.titled_dash == [("base", "not applicable: this variant retrieves no context")]


def test_judge_line_and_gates(page) -> None:
    text, _ = page
    assert "No LLM judge configured:</strong> faithfulness/relevancy/factual correctness not scored" in text
    assert "All 2 gates passed" not in text and "1 of 2 gates failed" in text
    assert "rag.false_refusal_rate&lt;=0.05" in text


def test_contexts_truncated_and_citations_marked(page) -> None:
    text, _ = page
    assert "x" * CONTEXT_CHARS not in text and "x…" in text
    assert text.count('<span class="badge">cited</span>') == 2 * 3  # context 1 in 2 retrieval variants x 3 questions


def test_sparse_summary_still_renders(tmp_path) -> None:
    summary = {"variants": {"base": {"token_f1": None}}}
    path = write_report(tmp_path, summary, [])
    text = path.read_text(encoding="utf-8")
    assert "Nothing to chart." in text and "<svg" not in text and "No LLM judge configured" in text
    assert render_markdown(summary).startswith("# ragtune eval scorecard")


def test_large_run_renders_every_row(tmp_path) -> None:
    template = _rows()[1]  # a retrieval variant: 8 contexts per row as in a real run
    template["contexts"] = [dict(template["contexts"][1], number=n) for n in range(1, 9)]
    rows = []
    for i in range(145):
        for v in VARIANTS + ["lora"]:
            row = copy.deepcopy(template)
            row.update(id=f"q{i:03d}", variant=v)
            rows.append(row)
    text = write_report(tmp_path, _summary(), rows).read_text(encoding="utf-8")
    assert len(re.findall(r'<details class="q" id="q-q\d{3}"', text)) == 145
    assert text.count("data-variant=") == 580 + 3 * 3  # drill-down cells + the results table's cells


def test_markdown_table_and_facts() -> None:
    md = render_markdown(_summary())
    lines = md.splitlines()
    results = [line for line in lines if line.startswith("| `")][:3]
    assert [line.split("|")[1].strip() for line in results] == ["`base`", "`rag`", "`rag+lora`"]
    assert "**0.358 [0.31, 0.40]**" in results[1] and "**0.020**" in results[2]
    assert "— |" in results[0]  # base has no context recall
    assert f"**{NO_JUDGE}**" in md and "`golden/kestrel.jsonl`" in md and "12 min 34 s" in md
    assert "❌ FAIL" in md and "✅ pass" in md and "1 of 2 failed" in md


def test_named_judge_replaces_the_warning(tmp_path) -> None:
    summary = _summary()
    summary["run"]["judge"] = "qwen2.5-7b-instruct"
    summary["metrics"]["faithfulness"] = {"label": "Faithfulness", "higher_is_better": True}
    summary["variants"]["base"]["faithfulness"] = None
    summary["variants"]["rag"]["faithfulness"] = 0.9
    text = write_report(tmp_path, summary, _rows()).read_text(encoding="utf-8")
    assert "No LLM judge configured" not in text and "LLM judge: qwen2.5-7b-instruct" in text
    assert "LLM judge: qwen2.5-7b-instruct" in render_markdown(summary) and NO_JUDGE not in render_markdown(summary)
    # With a judge, a missing judge score is not blamed on the judge.
    assert 'data-metric="faithfulness" title="not applicable: this variant retrieves no context"' not in text
    assert 'data-variant="base" data-metric="faithfulness" title="not scored for this variant"' in text


def test_duplicate_rows_are_shown_once_and_reported(tmp_path) -> None:
    rows = _rows()
    rows.append(dict(rows[0], answer="a retried duplicate"))
    text = write_report(tmp_path, _summary(), rows).read_text(encoding="utf-8")
    p = _Page()
    p.feed(text)
    assert set(p.cells.values()) == {1} and len(p.cells) == len(QUESTIONS) * len(VARIANTS)
    assert "1 duplicate (question, variant) rows ignored" in text and "a retried duplicate" not in text


def test_missing_variant_gets_a_placeholder_column(tmp_path) -> None:
    rows = [r for r in _rows() if (r["id"], r["variant"]) != ("k-001", "rag+lora")]
    text = write_report(tmp_path, _summary(), rows).read_text(encoding="utf-8")
    block = text[text.index('id="q-k-001"'):text.index('id="q-k-009"')]
    assert block.count("data-variant=") == 2 and "No result for this question." in block and "rag+lora no result" in block
