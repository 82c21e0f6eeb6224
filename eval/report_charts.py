"""The scorecard's charts: matplotlib figures rendered to inline SVG.

`Figure` + `savefig` instead of pyplot, so no global figure registry or backend switch leaks
into the caller (the runner may live in a process that also trains or serves).
"""

from __future__ import annotations

import html
import io
import re

import matplotlib
from matplotlib.figure import Figure

from eval.summary_markdown import direction, metric_label, metric_specs, number, variant_names

_PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
# Prolog, doctype and namespace declarations: an inline <svg> in HTML needs none of them, and
# dropping them keeps the page free of any http:// string a reviewer would have to second-guess.
_PROLOG = re.compile(r"^.*?(?=<svg)", re.S)
_XMLNS = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_SIZE = re.compile(r'\s+(width|height)="[^"]*"')


def variant_colors(names: list[str]) -> dict[str, str]:
    return {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(names)}


def _to_svg(fig: Figure, label: str, salt: str) -> str:
    buf = io.StringIO()
    # A distinct salt per chart: matplotlib derives clip-path ids from content, and two charts
    # with the same axes box would otherwise define the same id twice in one page.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = _XMLNS.sub("", _PROLOG.sub("", buf.getvalue(), count=1))
    head_end = svg.index(">")
    # Width/height dropped so CSS can scale the chart down to a phone; viewBox keeps the ratio.
    head = _SIZE.sub("", svg[:head_end]) + f' role="img" aria-label="{html.escape(label)}" class="chart"'
    return f"{head}><title>{html.escape(label)}</title>{svg[head_end + 1:]}"


def metrics_chart(summary: dict) -> str | None:
    """Small multiples: one panel per metric, one bar per variant, 95% CI as whiskers.

    Panels rather than one grouped chart: with ~10 metrics x 4 variants a single row of groups
    gets too wide to read once scaled to a laptop (let alone a phone) screen.
    """
    names = variant_names(summary)
    variants, intervals = summary.get("variants") or {}, summary.get("intervals") or {}
    specs = [
        (k, m) for k, m in metric_specs(summary)
        if any(number((variants.get(n) or {}).get(k)) is not None for n in names)
    ]
    if not names or not specs:
        return None
    colors = variant_colors(names)
    ncols = min(4, len(specs))
    nrows = -(-len(specs) // ncols)
    fig = Figure(figsize=(2.5 * ncols + 0.4, 2.3 * nrows), facecolor="white")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (key, meta) in zip(axes, specs):
        values = [number((variants.get(n) or {}).get(key)) for n in names]
        ax.bar(range(len(names)), [v or 0.0 for v in values], 0.7, color=[colors[n] for n in names])
        peak = max(v for v in values if v is not None)
        for x, (name, value) in enumerate(zip(names, values)):
            ci = (intervals.get(name) or {}).get(key)
            lo, hi = (number(ci[0]), number(ci[1])) if isinstance(ci, (list, tuple)) and len(ci) == 2 else (None, None)
            if value is None:
                ax.text(x, 0.01, "n/a", ha="center", va="bottom", fontsize=7, color="#888888")
            elif lo is not None and hi is not None:
                # An interval that misses the point (rounding) must not become a negative error length.
                ax.errorbar([x], [value], yerr=[[max(0.0, value - lo)], [max(0.0, hi - value)]], fmt="none",
                            ecolor="#333333", elinewidth=0.9, capsize=3)
                peak = max(peak, hi)
            # No CI: no whisker at all, rather than a flat one that reads as "certain".
        ax.set_title(f"{metric_label(key, meta)} {direction(meta)}".strip(), fontsize=9)
        ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 2 else 0,
                      ha="right" if len(names) > 2 else "center", fontsize=7)
        ax.set_ylim(0, 1.05 if peak <= 1.0 else peak * 1.1)
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="y", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.spines[["top", "right"]].set_visible(False)
    for ax in axes[len(specs):]:
        ax.set_visible(False)
    fig.tight_layout()
    label = "Bar charts of each metric per variant with 95% confidence intervals: " + "; ".join(
        f"{metric_label(k, m)}: " + ", ".join(
            f"{n} {v:.3f}" for n in names if (v := number((variants.get(n) or {}).get(k))) is not None)
        for k, m in specs
    )
    return _to_svg(fig, label, "metrics")


def latency_chart(timing: dict[str, dict], names: list[str]) -> str | None:
    """p50 and p95 latency per variant, in seconds."""
    shown = [n for n in names if number((timing.get(n) or {}).get("p50_ms")) is not None]
    if not shown:
        return None
    colors = variant_colors(names)
    fig = Figure(figsize=(max(4.5, 1.2 * len(shown) + 1.5), 2.8), facecolor="white")
    ax = fig.add_subplot()
    for i, name in enumerate(shown):
        p50 = number(timing[name].get("p50_ms")) or 0.0
        p95 = number(timing[name].get("p95_ms"))
        ax.bar(i - 0.18, p50 / 1000, 0.34, color=colors[name])
        if p95 is not None:
            # Same colour, hatched: the pair reads as one variant without a second legend.
            ax.bar(i + 0.18, p95 / 1000, 0.34, color=colors[name], alpha=0.55, hatch="//", edgecolor="white")
    ax.set_xticks(range(len(shown)), [f"{n}\np50 | p95" for n in shown], fontsize=8)
    ax.set_ylabel("seconds per answer", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    label = "Bar chart of answer latency per variant: " + "; ".join(
        f"{n} p50 {(number(timing[n].get('p50_ms')) or 0) / 1000:.1f} s"
        + (f", p95 {p95 / 1000:.1f} s" if (p95 := number(timing[n].get("p95_ms"))) is not None else "")
        for n in shown
    )
    return _to_svg(fig, label, "latency")
