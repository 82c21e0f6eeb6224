"""One evaluation run from settings: golden rows → answerer (in process or --url) → EvalJob → registry record.

Shared by `ragtune eval` and the main job (`ragtune up`); the caller draws the progress.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

from assistant import assembly
from assistant.settings import Settings

Bar = Callable[[str, int], Callable[[int], None]]  # (variant, questions) -> advance(answers)


def run_eval(settings: Settings, golden: Sequence[Path], spec: str | None, adapter: str | None, url: str | None,
             api_key: str | None, out: Path | None, limit: int, rules: Sequence[str], bar: Bar, answerer=None):
    """The run's EvalRun; `spec` the variants (None: all four with an adapter, else base,rag); `bar(variant, total)`
    starts a progress display and returns the function that advances it by a number of answers. `answerer`: an
    in-process answerer to reuse (the promotion gate attacks the same loaded model with its canary)."""
    from eval import golden as golden_sets
    from eval.answerers import RemoteAnswerer
    from eval.eval_job import EvalJob
    from eval.gates import parse_rule
    from eval.judge import build_judge
    from eval.metrics import Scorer
    from eval.variants import parse_variants

    for rule in rules:
        parse_rule(rule)  # a typo in a gate fails before an hour of generation, not after
    rows = []
    for path in golden:
        loaded = golden_sets.load(path)
        rows += loaded[:limit] if limit else loaded
    if url:
        if not api_key:
            raise ValueError("--url needs an API key (--api-key or RAGTUNE_API_KEY)")
        answerer = RemoteAnswerer(url, api_key, settings.eval.concurrency, settings.eval.request_timeout_s,
                                  settings.eval.max_new_tokens)
        default = adapter or "assistant"
        embedder = assembly.embedder(settings)
    else:
        answerer = answerer or in_process_answerer(settings)
        default = adapter or answerer.service.default_adapter
        embedder = answerer.service.retriever.store.embedder  # scoring shares the retriever's model: loaded once
    variants = parse_variants(spec or ("base,rag,lora,rag+lora" if default else "base,rag"), default)
    judge = build_judge(settings.eval, embedder.embed, settings.generator.model)
    job = EvalJob(answerer, Scorer(embedder.embed, judge), variants, rows, judge.name if judge else None, settings.eval.seed)
    out_dir = out or settings.evals_dir / time.strftime("%Y%m%d-%H%M%S")
    config = {"golden": [str(p) for p in golden], "variants": [v.to_dict() for v in variants], "url": url,
              "limit": limit, "gates": list(rules), "ragtune_version": _version(), "settings": settings.model_dump(mode="json")}
    config["privacy"] = privacy_of(settings, variants) if not url else {}
    run = job.run(out_dir, config, bar, rules)
    if not url:
        record_in_registry(settings, run, variants)
    return run


def in_process_answerer(settings: Settings):
    """Answers with this process's own model, retriever and rails (the chat service every entry point uses)."""
    from eval.answerers import InProcessAnswerer

    retriever = assembly.retriever(settings)
    generator = assembly.generator(settings)
    service = assembly.chat_service(settings, retriever, generator)
    return InProcessAnswerer(service, retriever.store.docstore, settings.eval.batch_size, settings.eval.max_new_tokens,
                             settings.eval.collections)


def privacy_of(settings: Settings, variants) -> dict:
    """variant -> the DP guarantee its adapter was trained with (ε spent, δ), for the scorecard's header."""
    registry = assembly.adapter_registry(settings)
    found = {}
    for variant in variants:
        if variant.adapter == "base":
            continue
        try:
            privacy = registry.get(variant.adapter).metadata.get("privacy")
        except (ValueError, KeyError):  # a model name a remote server serves, not a registry version
            continue
        if privacy:
            found[variant.name] = privacy
    return found


def record_in_registry(settings: Settings, run, variants) -> None:
    """Each adapter's scores go into its version's metadata, where `adapters promote --require-scorecard` reads them."""
    registry = assembly.adapter_registry(settings)
    for variant in variants:
        if variant.adapter == "base":
            continue
        version = registry.get(variant.adapter) if "@" in variant.adapter else registry.promoted(variant.adapter)
        if version is None:
            continue
        previous = version.metadata.get("eval") or {}
        registry.update_metadata(version.ref, eval={**previous, f"scorecard:{run.out_dir.name}:{variant.name}": {
            "run_dir": str(run.out_dir), "golden": run.summary["run"]["golden"], "retrieval": variant.retrieval,
            "metrics": run.summary["variants"][variant.name], "gates_passed": run.gates_passed,
            "at": run.summary["run"]["started"]}})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragtune")
    except PackageNotFoundError:
        return os.environ.get("RAGTUNE_VERSION", "unknown")
