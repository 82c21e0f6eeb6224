"""The eval scorecard: one self-contained HTML file a reviewer can open offline or attach to a PR.

No JavaScript and no external requests: charts are inline SVG, CSS is inline, the drill-down
is plain <details>. Everything that came from a model or a document goes through `_e`.
"""

from __future__ import annotations

import re
import statistics
from html import escape as _e
from pathlib import Path

from eval import report_charts
from eval.summary_markdown import (
    best_variants, direction, fmt_ci, fmt_counts, fmt_started, fmt_value, is_judge_metric, is_retrieval_metric,
    metric_label, metric_specs, missing_reason, number, run_facts, variant_names,
)

CONTEXT_CHARS = 1200  # a chunk is ~1-2k chars; a reviewer wants the gist, and 580 x 8 full chunks bloat the file
_CSS = """
*{box-sizing:border-box}body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;
margin:0 auto;padding:1rem;max-width:1400px}h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.2rem;
margin:1.8rem 0 .6rem;border-bottom:1px solid #ddd}h3{font-size:1rem;margin:0 0 .3rem}nav a{margin-right:1rem}
.facts{display:grid;grid-template-columns:max-content 1fr;gap:.15rem 1rem;margin:0}.facts dt{font-weight:600}
.facts dd{margin:0;overflow-wrap:anywhere}.warn{background:#fff4d6;border-left:4px solid #e0a800;padding:.4rem .7rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;font-size:.9rem}th,td{border:1px solid #ddd;padding:.3rem .5rem;
text-align:left;vertical-align:top}thead th{background:#f4f4f6}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
td.best{background:#dff3e3;font-weight:700}.ci{color:#666;font-weight:400}.na{color:#999}.pass{color:#17792f;font-weight:700}
.fail{color:#b3261e;font-weight:700}svg.chart{max-width:100%;height:auto;display:block}figure.latency svg.chart{max-width:560px}figure{margin:0 0 1rem}
details.q{border:1px solid #ddd;border-radius:6px;margin:.4rem 0}details.q>summary{cursor:pointer;padding:.45rem .6rem;
background:#f8f8fa}.qid{font-family:ui-monospace,monospace;color:#555;margin-right:.4rem}.keys{display:block;
font-size:.85rem;color:#444}.qbody{padding:.6rem}.grid{display:grid;grid-template-columns:repeat(var(--n),minmax(17rem,1fr));
gap:.6rem;overflow-x:auto}.v{border:1px solid #e3e3e3;border-radius:5px;padding:.5rem;min-width:0}
.answer{white-space:pre-wrap;overflow-wrap:anywhere;background:#fafafa;padding:.4rem;border-radius:4px;margin:.3rem 0}
.badge{display:inline-block;font-size:.75rem;padding:0 .35rem;border-radius:3px;background:#eee;margin-left:.3rem}
.badge.bad{background:#fde2e0;color:#8c1d18}.mt{font-size:.85rem}.mt td,.mt th{padding:.1rem .35rem}
.small{font-size:.85rem;color:#444}ul.ctxs{list-style:none;padding:0;margin:.3rem 0}ul.ctxs li{margin:.4rem 0}
blockquote{margin:.2rem 0 0;padding:.3rem .5rem;border-left:3px solid #ccc;white-space:pre-wrap;font-size:.85rem;
overflow-wrap:anywhere;background:#fcfcfc}li.cited>blockquote{border-left-color:#4c72b0}
"""


def write_report(run_dir: Path, summary: dict, rows: list[dict]) -> Path:
    """Write run_dir/scorecard.html and return its path."""
    path = Path(run_dir) / "scorecard.html"
    path.write_text(render_html(summary, rows), encoding="utf-8")
    return path


def render_html(summary: dict, rows: list[dict]) -> str:
    run = summary.get("run") or {}
    names = variant_names(summary)
    names += [n for n in dict.fromkeys(str(r.get("variant")) for r in rows) if n not in names]
    title = f"ragtune scorecard — {Path(str(run.get('golden') or 'eval')).name} — {fmt_started(run.get('started'))}"
    # Without a judge the banner below says so; a second copy in the facts list is noise.
    facts = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in run_facts(summary)
                    if k != "Judge" or run.get("judge"))
    judge_note = "" if run.get("judge") else (
        '<p class="warn" role="note"><strong>No LLM judge configured:</strong> faithfulness/relevancy/factual '
        "correctness not scored.</p>")
    gates = summary.get("gates") or []
    sections = ["results", "charts"] + (["gates"] if gates else []) + ["questions"]
    nav = "".join(f'<a href="#{s}">{s.capitalize()}</a>' for s in sections)
    return "".join([
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{_e(title)}</title>'
        f"<style>{_CSS}</style></head><body><header><h1>{_e(title)}</h1><dl class=\"facts\">{facts}</dl>{judge_note}"
        f'<nav aria-label="Sections">{nav}</nav></header><main>',
        _results(summary, names, rows),
        _charts(summary, names, rows),
        _gates(gates) if gates else "",
        _questions(summary, names, rows),
        "</main></body></html>\n",
    ])


def _title(text: object) -> str:
    return f' title="{_e(str(text))}"' if text else ""


def _timing(summary: dict, rows: list[dict]) -> dict[str, dict]:
    """The runner's p50/p95; failing that, computed from the rows so the chart is not lost."""
    timing = (summary.get("run") or {}).get("timing")
    if timing:
        return timing
    latencies: dict[str, list[float]] = {}
    for row in rows:
        if (ms := number(row.get("latency_ms"))) is not None:
            latencies.setdefault(str(row.get("variant")), []).append(ms)
    return {
        name: {"p50_ms": statistics.median(v), "p95_ms": statistics.quantiles(v, n=20)[-1] if len(v) > 1 else v[0]}
        for name, v in latencies.items()
    }


def _results(summary: dict, names: list[str], rows: list[dict]) -> str:
    specs = metric_specs(summary)
    variants, intervals = summary.get("variants") or {}, summary.get("intervals") or {}
    head = "".join(
        f'<th scope="col"{_title(m.get("description"))}>{_e(metric_label(k, m))} {direction(m)}</th>' for k, m in specs)
    body = []
    for name in [n for n in names if n in variants]:
        cells = []
        for key, meta in specs:
            value = number((variants[name] or {}).get(key))
            attrs = f'data-variant="{_e(name)}" data-metric="{_e(key)}"'
            if value is None:
                cells.append(f'<td class="num na" {attrs} title="{_e(missing_reason(summary, name, key, meta))}">—</td>')
                continue
            best = name in best_variants(summary, key, meta)
            ci = fmt_ci((intervals.get(name) or {}).get(key))
            klass, hint = ("num best", ' title="best"') if best else ("num", "")
            ci_html = f' <span class="ci">{ci}</span>' if ci else ""
            cells.append(f'<td class="{klass}" {attrs}{hint}>{fmt_value(value)}{ci_html}</td>')
        body.append(f'<tr><th scope="row">{_e(name)}</th>{"".join(cells)}</tr>')
    legend = "".join(f"<dt>{_e(metric_label(k, m))} {direction(m)}</dt><dd>{_e(str(m.get('description') or ''))}"
                     f"{_e(' (' + str(m['applies_to']) + ' questions)') if m.get('applies_to') else ''}</dd>"
                     for k, m in specs)
    table = (f'<div class="scroll"><table><caption class="small">Mean per variant with 95% bootstrap CI; best per metric '
             f'highlighted; ↑ higher is better, ↓ lower is better.</caption><thead><tr><th scope="col">Variant</th>{head}'
             f'</tr></thead><tbody>{"".join(body)}</tbody></table></div>') if body else "<p>No results.</p>"
    return (f'<section id="results"><h2>Results</h2>{table}<details><summary>What the metrics mean</summary>'
            f'<dl class="small">{legend}</dl></details>{_variant_table(summary, names, rows)}</section>')


def _variant_table(summary: dict, names: list[str], rows: list[dict]) -> str:
    configs = (summary.get("run") or {}).get("variants") or {}
    counts, timing = summary.get("counts") or {}, _timing(summary, rows)
    trs = []
    for name in names:
        config, t = configs.get(name) or {}, timing.get(name) or {}
        lat = [f"{v / 1000:.1f} s" if (v := number(t.get(p))) is not None else "—" for p in ("p50_ms", "p95_ms")]
        retrieval = {True: "yes", False: "no"}.get(config.get("retrieval"), "—")
        trs.append(f'<tr><th scope="row">{_e(name)}</th><td>{_e(str(config.get("adapter") or "—"))}</td><td>{retrieval}</td>'
                   f'<td>{_e(fmt_counts(counts.get(name)))}</td><td class="num">{lat[0]}</td><td class="num">{lat[1]}</td></tr>')
    return ('<h3>Variants</h3><div class="scroll"><table><thead><tr><th scope="col">Variant</th><th scope="col">Adapter</th>'
            '<th scope="col">Retrieval</th><th scope="col">Questions</th><th scope="col">p50 latency</th>'
            f'<th scope="col">p95 latency</th></tr></thead><tbody>{"".join(trs)}</tbody></table></div>')


def _charts(summary: dict, names: list[str], rows: list[dict]) -> str:
    figures = []
    if svg := report_charts.metrics_chart(summary):
        figures.append(f"<figure>{svg}<figcaption class=\"small\">Metrics per variant; whiskers are 95% "
                       "bootstrap confidence intervals.</figcaption></figure>")
    if svg := report_charts.latency_chart(_timing(summary, rows), names):
        figures.append(f"<figure class=\"latency\">{svg}<figcaption class=\"small\">Answer latency per variant: p50 (solid) and "
                       "p95 (hatched).</figcaption></figure>")
    return f'<section id="charts"><h2>Charts</h2>{"".join(figures) or "<p>Nothing to chart.</p>"}</section>'


def _gates(gates: list[dict]) -> str:
    failed = sum(1 for g in gates if not g.get("passed"))
    verdict = (f'<p class="pass">All {len(gates)} gates passed.</p>' if not failed
               else f'<p class="fail">{failed} of {len(gates)} gates failed.</p>')
    trs = "".join(
        f'<tr><td><code>{_e(str(g.get("rule", "?")))}</code></td><td class="num">{fmt_value(g.get("value"))}</td>'
        f'<td class="{"pass" if g.get("passed") else "fail"}">{"pass" if g.get("passed") else "FAIL"}</td></tr>'
        for g in gates)
    return (f'<section id="gates"><h2>Gates</h2>{verdict}<div class="scroll"><table><thead><tr><th scope="col">Rule</th>'
            f'<th scope="col">Value</th><th scope="col">Result</th></tr></thead><tbody>{trs}</tbody></table></div></section>')


def _questions(summary: dict, names: list[str], rows: list[dict]) -> str:
    by_question: dict[str, dict[str, dict]] = {}
    duplicates = 0
    for row in rows:  # rows arrive in golden order; dict insertion keeps it
        cell = by_question.setdefault(str(row.get("id")), {})
        if str(row.get("variant")) in cell:
            duplicates += 1
            continue
        cell[str(row.get("variant"))] = row
    specs = dict(metric_specs(summary))
    key_metric = next((k for k, m in specs.items() if m.get("applies_to") in (None, "answerable", "all")
                       and any(number((r.get("metrics") or {}).get(k)) is not None for r in rows)), None)
    used_ids: set[str] = set()
    blocks = [_question(qid, cells, names, specs, key_metric, summary, used_ids) for qid, cells in by_question.items()]
    note = f'<p class="warn">{duplicates} duplicate (question, variant) rows ignored.</p>' if duplicates else ""
    return (f'<section id="questions"><h2>Questions ({len(by_question)})</h2>{note}'
            f'<p class="small">Click a question to compare the variants side by side.</p>{"".join(blocks)}</section>')


def _anchor(qid: str, used: set[str]) -> str:
    base = "q-" + re.sub(r"[^A-Za-z0-9_.:-]+", "-", qid)
    anchor, n = base, 1
    while anchor in used:  # two ids that sanitise alike must still get distinct anchors
        n += 1
        anchor = f"{base}-{n}"
    used.add(anchor)
    return anchor


def _question(qid: str, cells: dict[str, dict], names: list[str], specs: dict[str, dict], key_metric: str | None,
              summary: dict, used: set[str]) -> str:
    first = next(iter(cells.values()))
    answerable = first.get("answerable", True) is not False
    # Every variant gets a column, present or not, so columns line up from one question to the next.
    keys = []
    for name in names:
        row = cells.get(name)
        if row is None:
            keys.append(f"{_e(name)} no result")
        elif not answerable:
            keys.append(f"{_e(name)} {'refused ✓' if row.get('refused') else 'answered ✗'}")
        else:
            value = number((row.get("metrics") or {}).get(key_metric)) if key_metric else None
            keys.append(f"{_e(name)} {fmt_value(value)}{' (refused)' if row.get('refused') else ''}")
    label = "" if not answerable or not key_metric else f"{_e(metric_label(key_metric, specs[key_metric]))}: "
    tag = "" if answerable else '<span class="badge">unanswerable</span>'
    reference = first.get("reference")
    ref_html = (f'<div class="answer">{_e(str(reference))}</div>' if reference
                else '<p class="small">No reference answer (the documents do not answer this question; '
                     'the right response is a refusal).</p>' if not answerable else '<p class="small">No reference answer.</p>')
    grid = "".join(_variant_cell(n, cells[n], specs, summary, answerable) if n in cells else
                   f'<section class="v"><h3>{_e(n)}</h3><p class="small">No result for this question.</p></section>'
                   for n in names)
    return (f'<details class="q" id="{_anchor(qid, used)}"><summary><span class="qid">{_e(qid)}</span>'
            f'{_e(str(first.get("question") or ""))}{tag}<span class="keys">{label}{" · ".join(keys)}</span></summary>'
            f'<div class="qbody"><h3>Reference</h3>{ref_html}<div class="grid" style="--n:{max(1, len(names))}">'
            f"{grid}</div></div></details>")


def _row_reason(key: str, meta: dict, row: dict, summary: dict, answerable: bool) -> str:
    if is_judge_metric(key, meta) and not (summary.get("run") or {}).get("judge"):
        return "not scored: no LLM judge configured"
    if is_retrieval_metric(key, meta) and not row.get("contexts"):
        return "not applicable: no retrieved context"
    if not answerable:
        return "not applicable: unanswerable question"
    if "refus" in key or meta.get("applies_to") == "unanswerable":
        return "applies to unanswerable questions only"
    return "not scored for this question"


def _variant_cell(name: str, row: dict, specs: dict[str, dict], summary: dict, answerable: bool) -> str:
    metrics = row.get("metrics") or {}
    ordered = [k for k in specs if k in metrics] + [k for k in metrics if k not in specs]
    mrows = []
    for key in ordered:
        meta = specs.get(key, {})
        value = number(metrics[key])
        td = (f'<td class="num">{fmt_value(value)}</td>' if value is not None else
              f'<td class="num na" title="{_e(_row_reason(key, meta, row, summary, answerable))}">—</td>')
        mrows.append(f'<tr><th scope="row">{_e(metric_label(key, meta))}</th>{td}</tr>')
    badges = "".join([
        '<span class="badge">refused</span>' if row.get("refused") else "",
        '<span class="badge bad">truncated</span>' if row.get("finish_reason") == "length" else "",
        *(f'<span class="badge bad">{_e(str(g))}</span>' for g in row.get("guardrails") or []),
    ])
    latency = number(row.get("latency_ms"))
    facts = " · ".join(filter(None, [
        f"adapter {_e(str(row['adapter']))}" if row.get("adapter") else "",
        f"{latency / 1000:.1f} s" if latency is not None else "",
        f"finish: {_e(str(row['finish_reason']))}" if row.get("finish_reason") else "",
    ]))
    contexts = row.get("contexts") or []
    numbers = {c.get("number") for c in contexts}
    cited = {c.get("number") for c in row.get("citations") or []}
    dangling = ' <span class="badge bad">not among retrieved</span>'
    cites = "".join(
        f'<li>[{_e(str(c.get("number", "?")))}] {_source(c)}{"" if c.get("number") in numbers else dangling}</li>'
        for c in row.get("citations") or [])
    cites_html = f'<p class="small">Citations:</p><ul class="small">{cites}</ul>' if cites else ""
    return (f'<section class="v" data-variant="{_e(name)}"><h3>{_e(name)}{badges}</h3><p class="small">{facts}</p>'
            f'<div class="answer">{_e(str(row.get("answer") or ""))}</div>'
            f'<table class="mt"><tbody>{"".join(mrows)}</tbody></table>'
            f"{cites_html}"
            f"{_contexts(contexts, cited) if contexts else ''}</section>")


def _source(c: dict) -> str:
    page, end = c.get("page"), c.get("page_end")
    pages = "" if page is None else f" p. {page}" + (f"–{end}" if end not in (None, page) else "")
    return _e(f"{c.get('document') or '?'}{pages}")


def _contexts(contexts: list[dict], cited: set) -> str:
    items = []
    for c in contexts:
        text = str(c.get("text") or "")
        if len(text) > CONTEXT_CHARS:
            text = text[:CONTEXT_CHARS].rstrip() + "…"
        heading = f" · {_e(str(c['heading']))}" if c.get("heading") else ""
        is_cited = c.get("number") in cited
        li, badge = ('<li class="cited">', ' <span class="badge">cited</span>') if is_cited else ("<li>", "")
        items.append(f'{li}<span class="small">[{_e(str(c.get("number", "?")))}] {_source(c)}{heading}{badge}</span>'
                     f"<blockquote>{_e(text)}</blockquote></li>")
    n_cited = sum(1 for c in contexts if c.get("number") in cited)
    return (f'<details class="small"><summary>{len(contexts)} retrieved passages ({n_cited} cited)</summary>'
            f'<ul class="ctxs">{"".join(items)}</ul></details>')
