"""The dataset card: what a synthetic dataset holds, how it was filtered, and what was kept out.

Written twice: `card.json` for tools (the registry copies it into adapter metadata) and
`card.md` for people reviewing what the model will be trained on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_card(out_dir: Path, card: dict[str, Any]) -> None:
    (out_dir / "card.json").write_text(json.dumps(card, indent=2, ensure_ascii=False, default=str))
    (out_dir / "card.md").write_text(render_markdown(card))


def read_card(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def render_markdown(card: dict[str, Any]) -> str:
    lines = [
        f"# Synthetic QA dataset: collection `{card['collection']}`",
        "",
        f"- Teacher: `{card['teacher']}`",
        f"- Chunks used: {card['chunks_used']}; candidate questions: {card['candidates']}; pairs kept: {card['pairs_kept']}",
        f"- Examples: {card['examples']['train']} train, {card['examples']['val']} validation "
        f"({card['examples']['refusal_targets']} with the oracle removed and a refusal target)",
        f"- PII redacted before writing: {'yes' if card['pii_redacted'] else 'no'}",
        f"- Dataset SHA-256 (train + val): `{card['dataset_sha256']}`",
        "",
        "## Kept out",
        "",
        f"- Documents excluded from generation: {', '.join(card['excluded_documents']) or 'none'}",
        f"- Golden sets whose questions were kept out: {', '.join(card['excluded_golden_sets']) or 'none'} "
        f"({card['golden_questions_checked']} questions; never shown to the teacher)",
        f"- Golden questions with a near-duplicate among generated questions: "
        f"{card['golden_near_duplicates'].get('generated', 0)}; among kept ones: {card['golden_near_duplicates'].get('kept', 0)}",
        "",
        "## Filters (in order)",
        "",
        "| Filter | Entered | Passed | Acceptance |",
        "| --- | ---: | ---: | ---: |",
    ]
    for row in card["filters"]:
        acceptance = "-" if row["acceptance"] is None else f"{row['acceptance']:.1%}"
        lines.append(f"| {row['filter']} | {row['entered']} | {row['passed']} | {acceptance} |")
    lines += ["", "## Per document", "", "| Document | Split | Train | Val |", "| --- | --- | ---: | ---: |"]
    for name, counts in sorted(card["per_document"].items()):
        side = card["split"].get(name) or "+".join(k for k in ("train", "val") if counts[k])  # by chunk: both
        lines.append(f"| {name} | {side} | {counts['train']} | {counts['val']} |")
    lines += ["", "## Examples", ""]
    for example in card.get("samples", []):
        lines += [f"**Q:** {example['question']}", "", f"**Target:** {example['answer']}", "",
                  f"Oracle in context: {example['oracle_in_context']}; context chunks {example['context_chunk_ids']}", ""]
    return "\n".join(lines) + "\n"
