"""Which golden questions name something the documents never contain (chat.refuse_unknown_names).

    .venv/bin/python bench/unknown_names.py [--contoso-home DIR] [--kestrel-home DIR] [--candidates CANDIDATES.jsonl]

With each kind of `chat.refuse_unknown_names` (`codes`, the default; `names`), for the Contoso dev set (answerable
+ unanswerable) and the Kestrel golden set, each in its own home (ingested there first when the home holds no
collection; default under /tmp/ragtune-bench/), counts the questions
`Retriever.unknown_names` flags, which the chat refuses without generating: an answerable one flagged is a false
refusal the rule adds, an unanswerable one flagged a refusal it adds (the gate or the grounding rail may have refused
it anyway: a scorecard with the setting off and on says which). `--candidates` also counts a synthetic dataset's
candidate questions (`synth`'s candidates.jsonl, written from the collection's own chunks: each flagged one is a
question about those documents that the rule would refuse). Prints every flagged question and one table; writes
bench/results/unknown_names.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Sequence

import _common as common

KESTREL = common.PROJECT / "samples" / "kestrel"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contoso-home", type=Path, default=common.CACHE_ROOT / "unknown-names-contoso")
    p.add_argument("--kestrel-home", type=Path, default=common.CACHE_ROOT / "unknown-names-kestrel")
    p.add_argument("--candidates", type=Path, help="a synth candidates.jsonl of the Contoso collection")
    return p.parse_args(argv)


def retriever_of(home: Path, docs: Path, collection: str):
    from assistant import assembly
    from assistant.settings import load_settings

    settings = load_settings(profile="default", overrides={"home": str(home)}, environ={})
    fresh = not (settings.index_dir / "docstore.sqlite").exists()
    if fresh or collection not in assembly.retriever(settings).store.docstore.collections():
        common.console.print(f"ingesting {docs} into {home} ...", style="dim")
        assembly.ingest_job(settings).run([docs], collection)
    return assembly.retriever(settings)


def flagged(retriever, collection: str, questions: list[str], kinds: str) -> tuple[list[tuple[str, list[str]]], float]:
    started = time.perf_counter()
    found = [(q, retriever.unknown_names(q, [collection], kinds)) for q in questions]
    ms = 1000 * (time.perf_counter() - started) / max(1, len(questions))
    return [(q, names) for q, names in found if names], ms


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    common.require_contoso()
    golden = common.CONTOSO / "golden"
    sets = [
        ("contoso", retriever_of(args.contoso_home, common.CONTOSO_DOCS, "contoso"),
         {"answerable": golden / "answerable.dev.jsonl", "unanswerable": golden / "unanswerable.dev.jsonl"}),
        ("kestrel", retriever_of(args.kestrel_home, KESTREL / "docs", "kestrel"),
         {"answerable": KESTREL / "golden" / "answerable.jsonl", "unanswerable": KESTREL / "golden" / "unanswerable.jsonl"}),
    ]
    rows, payload = [], {"benchmark": "unknown_names", "sets": {}, "environment": common.environment()}
    for collection, retriever, files in sets:
        sources = [(kind, [g["question"] for g in common.load_golden(path)]) for kind, path in files.items()]
        if collection == "contoso" and args.candidates:
            sources.append(("synthetic (from its chunks)", [json.loads(line)["question"] for line in
                                                            args.candidates.read_text().splitlines() if line.strip()]))
        for kind, questions in sources:
            row = [collection, kind]
            for kinds in ("codes", "names"):  # chat.refuse_unknown_names: the default, and the wider option
                hits, ms = flagged(retriever, collection, questions, kinds)
                for question, names in hits:
                    common.console.print(f"{collection} {kind} ({kinds}): {names} | {question}", markup=False)
                row.append(f"{len(hits)} of {len(questions)}")
                payload["sets"][f"{collection}/{kind}/{kinds}"] = {
                    "flagged": [{"question": q, "names": n} for q, n in hits], "questions": len(questions),
                    "ms_per_question": ms}
            rows.append([*row, round(ms, 2)])
        retriever.store.close()
    common.console.print(common.table("Questions naming what the documents never contain (refused without generating)",
                                      ["set", "questions", "flagged: codes", "flagged: names", "ms / question"],
                                      rows, left=2))
    path = common.write_json("unknown_names", payload)
    common.console.print(f"wrote {path}", style="dim")
    return 0


if __name__ == "__main__":
    sys.exit(main())
