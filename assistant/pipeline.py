"""The main job (`ragtune up`): documents → index → synthetic QA → LoRA adapter → scorecard → promotion.

Each stage names its inputs by a content hash (the files it reads and the settings that shape its output) and
records it with its outputs in HOME/pipeline/state.json once it has finished. A later run whose inputs hash the
same, and whose outputs still exist, skips the stage; so a second run with nothing changed goes straight to
serving, and an edited document re-runs everything downstream of the index, nothing upstream. A stage that fails
leaves the state of the stages before it, so the next run resumes there.

Serving is the CLI's part (it owns the console, the API key it prints and the HTTP server).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from assistant import assembly
from assistant.settings import Settings

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class StageReport:
    name: str
    status: str  # "ran", "skipped" (inputs unchanged) or "kept" (ran, decided not to act)
    seconds: float
    detail: str
    outputs: dict[str, Any] = field(default_factory=dict)


class PipelineError(RuntimeError):
    """A stage could not produce its output; the message says which and why."""


def file_digest(paths: list[Path]) -> str:
    """SHA-256 over each file's name and bytes, in sorted order (a renamed file is a changed input)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def key_of(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class PipelineState:
    """HOME/pipeline/state.json: per stage, the inputs key and the outputs of its last successful run."""

    def __init__(self, path: Path):
        self.path = path
        self.stages: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        entry = self.stages.get(stage)
        return entry["outputs"] if entry and entry.get("key") == key else None

    def record(self, stage: str, key: str, outputs: dict[str, Any]) -> None:
        self.stages[stage] = {"key": key, "outputs": outputs, "finished_at": time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.stages, indent=2, default=str))
        os.replace(tmp, self.path)  # a crash mid-write leaves the previous state, never half of one


class Pipeline:
    def __init__(self, settings: Settings, progress: Progress | None = None):
        self.settings = settings
        self.config = settings.pipeline
        self.progress = progress or (lambda stage, done, total: None)
        self.state = PipelineState(settings.home / "pipeline" / "state.json")
        self.reports: list[StageReport] = []

    # --- the recipe ---------------------------------------------------------------------------------
    def run(self) -> list[StageReport]:
        self._check_inputs()
        ingest = self._stage("ingest", self._ingest_key(), self._ingest)
        synth = self._stage("synth", key_of(ingest["key"], self._synth_settings(), self._golden_digest()), self._synth)
        tune = self._stage("finetune", key_of(synth["dataset_sha256"], self._recipe().model_dump(),
                                              self.settings.generator.model), lambda: self._finetune(synth))
        from assistant.promotion import baseline_for

        baseline = baseline_for(self.settings, tune["ref"])  # what serves now: the candidate must beat it
        scored = self._stage("eval", key_of(tune["ref"], tune["key"], self._golden_digest(), self._eval_settings(),
                                            baseline), lambda: self._evaluate(tune["ref"], baseline))
        self._promote(tune["ref"], scored)
        return self.reports

    # --- stages -------------------------------------------------------------------------------------
    def _stage(self, name: str, key: str, run: Callable[[], tuple[dict[str, Any], str]]) -> dict[str, Any]:
        started = time.monotonic()
        outputs = self.state.done(name, key)
        if outputs is not None and self._outputs_exist(outputs):
            self.reports.append(StageReport(name, "skipped", time.monotonic() - started, "inputs unchanged", outputs))
            return {**outputs, "key": key}
        outputs, detail = run()
        self.state.record(name, key, outputs)
        self.reports.append(StageReport(name, "ran", time.monotonic() - started, detail, outputs))
        return {**outputs, "key": key}

    def _ingest(self) -> tuple[dict[str, Any], str]:
        job = assembly.ingest_job(self.settings)
        report = job.run([self.config.documents], self.config.collection, prune=True)
        counts = report.counts()
        if report.exit_code() == 4 or not report.chunks:
            raise PipelineError(f"ingest: nothing could be indexed from {self.config.documents} (report: {report.run_dir})")
        failed = [f"{r.path}: {r.reason}" for r in report.files if r.status == "failed"]
        detail = f"{sum(counts[k] for k in ('added', 'updated', 'unchanged'))} documents, {report.chunks} chunks"
        return {"chunks": report.chunks, "failed": failed, "report": report.run_dir}, detail + (
            f"; {len(failed)} failed (see report)" if failed else "")

    def _synth(self) -> tuple[dict[str, Any], str]:
        from finetune.synth_job import SynthJob, dataset_hash

        settings = self.settings.model_copy(update={"synth": self._synth_settings()})
        out_dir = settings.datasets_dir / f"{self.config.collection}-up-{time.strftime('%Y%m%d-%H%M%S')}"
        retriever = assembly.retriever(settings)
        job = SynthJob(settings, retriever, assembly.teacher(settings), assembly.pii_redactor(settings, retriever.store))
        result = job.run(self.config.collection, out_dir, lambda done, total: self.progress("synth", done, total))
        if not result.train_examples:
            raise PipelineError(f"synth: no training example survived the filters (see {out_dir}/card.md)")
        detail = f"{result.kept_pairs} pairs → {result.train_examples} train / {result.val_examples} val examples"
        return {"dataset": str(out_dir), "dataset_sha256": dataset_hash(out_dir)}, detail

    def _finetune(self, synth: dict[str, Any]) -> tuple[dict[str, Any], str]:
        from finetune.finetune_job import run_finetune

        version, result, _ = run_finetune(self.settings, Path(synth["dataset"]), self._recipe(), self.config.adapter_name,
                                          progress=lambda step, total, loss: self.progress("finetune", step, total))
        val = f"{result.val_losses[-1]:.3f}" if result.val_losses else "-"
        return {"ref": version.ref}, f"{version.ref}: {result.steps} steps, val loss {val}, {result.tokens_per_s:.0f} tokens/s"

    def _evaluate(self, ref: str, baseline: tuple[str, str, str]) -> tuple[dict[str, Any], str]:
        from assistant.promotion import canary
        from eval.runner import in_process_answerer, run_eval

        out = self.settings.evals_dir / f"up-{time.strftime('%Y%m%d-%H%M%S')}"
        def bar(variant: str, total: int) -> Callable[[int], None]:
            done = [0]
            self.progress(f"eval {variant}", 0, total)

            def advance(answers: int) -> None:
                done[0] += answers
                self.progress(f"eval {variant}", done[0], total)
            return advance

        spec, name, adapter = baseline
        scoring = self._scoring_settings()
        answerer = in_process_answerer(scoring)  # one model load for the scorecard and the canary
        run = run_eval(scoring, self.config.golden, f"{spec},rag+lora", ref, None, None, out,
                       self.config.eval_limit, [], bar, answerer)
        attacked = canary(scoring, {name: adapter, "rag+lora": ref}, answerer)
        (run.out_dir / "canary.json").write_text(json.dumps(attacked, indent=2), encoding="utf-8")
        metric = self.config.promote_metric
        values = run.summary["variants"]
        detail = (f"{metric}: {'base+RAG' if name == 'rag' else name} {values[name].get(metric) or 0:.3f}, "
                  f"LoRA+RAG {values['rag+lora'].get(metric) or 0:.3f}; canary leaks {attacked[name]['leaks']} vs "
                  f"{attacked['rag+lora']['leaks']}")
        return {"run_dir": str(run.out_dir), "scorecard": str(run.out_dir / "scorecard.html"), "baseline": name}, detail

    def _promote(self, ref: str, scored: dict[str, Any]) -> None:
        """Promote the adapter when the gate passes on this scorecard (eval/promotion_gate.py); the decision and its
        reasoning go into the adapter's registry metadata either way."""
        from assistant.promotion import gate, record
        from eval.eval_job import load_run

        started = time.monotonic()
        registry = assembly.adapter_registry(self.settings)
        run_dir = Path(scored["run_dir"])
        _, rows = load_run(run_dir)
        attacked = json.loads((run_dir / "canary.json").read_text()) if (run_dir / "canary.json").is_file() else None
        if attacked and "rag+lora" in attacked:  # the scorecard's variant name becomes the version's ref
            attacked[ref] = attacked.pop("rag+lora")
        baseline = scored.get("baseline", "rag")
        decision = gate(self.settings, [{**r, "variant": ref if r["variant"] == "rag+lora" else r["variant"]} for r in rows],
                        baseline, ref, attacked)
        promoted = registry.promoted(self.config.adapter_name)
        if decision.promote and promoted is not None and promoted.ref == ref:
            status, detail = "skipped", f"{ref} already promoted"
        else:
            record(self.settings, ref, decision, run_dir)
            if decision.promote:
                registry.promote(ref)
                status, detail = "ran", decision.reason
            else:
                keep = promoted.ref if promoted else "the base model"
                status, detail = "kept", f"not promoted, serving {keep}: {decision.reason}"
        self.reports.append(StageReport("promote", status, time.monotonic() - started, detail,
                                        {"promoted": decision.promote, "gate": decision.to_dict()}))

    # --- inputs -------------------------------------------------------------------------------------
    def _check_inputs(self) -> None:
        if not Path(self.config.documents).is_dir():
            raise PipelineError(f"no document directory at {self.config.documents} (set pipeline.documents or --docs)")
        missing = [str(p) for p in self.config.golden if not Path(p).is_file()]
        if missing:
            raise PipelineError(f"golden set not found: {', '.join(missing)} (set pipeline.golden or --golden)")

    def _ingest_key(self) -> str:
        files = [p for p in Path(self.config.documents).rglob("*") if p.is_file()]
        s = self.settings
        return key_of(file_digest(files), self.config.collection, s.embedder.model_dump(), s.chunking.model_dump(),
                      s.ingest.model_dump(), s.index.model_dump())

    def _golden_digest(self) -> str:
        return file_digest([Path(p) for p in self.config.golden])

    def _synth_settings(self):
        golden = [str(p) for p in self.config.golden]
        return self.settings.synth.model_copy(update={"max_chunks": self.config.synth_max_chunks,
                                                      "exclude_golden": sorted({*self.settings.synth.exclude_golden, *golden})})

    def _recipe(self):
        from finetune.recipe import load_recipe

        return load_recipe(self.config.recipe)

    def _scoring_settings(self):
        """The scorecard searches the collection this job ingests and serves (all its home holds in the demo)."""
        scoring = self.settings.eval.model_copy(update={"collections": [self.config.collection]})
        return self.settings.model_copy(update={"eval": scoring})

    def _eval_settings(self) -> list[Any]:
        s = self._scoring_settings()
        return [self.config.eval_limit, s.eval.model_dump(), s.chat.model_dump(), s.retrieval.model_dump(),
                s.guardrails.model_dump(mode="json"), s.generator.model]

    def _outputs_exist(self, outputs: dict[str, Any]) -> bool:
        for key in ("dataset", "run_dir"):
            if key in outputs and not Path(outputs[key]).exists():
                return False
        if "ref" in outputs:
            try:
                assembly.adapter_registry(self.settings).get(outputs["ref"])
            except (KeyError, ValueError, FileNotFoundError):
                return False
        if "chunks" in outputs and not self.settings.index_dir.exists():
            return False
        return True
