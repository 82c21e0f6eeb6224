"""`ragtune up`: every stage runs on a fresh home, a second run skips them all by content hash, a changed
document re-runs what follows ingestion, bad inputs are clear errors, the promotion rule, the quickstart key.

Fake embedder and answering model (test profile); the fine-tune trains a tiny random Gemma for a few steps."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from assistant import assembly
from assistant.cli import app
from assistant.cli.pipeline import QUICKSTART_KEY, quickstart_key
from tests.api_helpers import settings_for
from tests.conftest import SAMPLES
from tests.test_runtime_contract import tiny_model_dir

runner = CliRunner()
DOCS = ("leave_policy.md", "remote_work_policy.md", "it_password_reset_mfa.md", "onboarding_guide.md")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("up")
    docs = root / "docs"
    docs.mkdir()
    for name in DOCS:
        shutil.copy(SAMPLES / "docs" / name, docs / name)
    base, _ = tiny_model_dir(root / "tiny")
    recipe = root / "recipe.yaml"
    recipe.write_text("base: lora-cpu\ntarget_modules: [q_proj, v_proj]\nrank: 4\nalpha: 8\nepochs: 1\n"
                      "max_train_examples: 6\nmax_val_examples: 2\nmax_seq_tokens: 512\ncheckpoint_every_steps: 100\n")
    config = root / "ragtune.yaml"
    config.write_text(json.dumps({
        "generator": {"model": str(base), "context_window_tokens": 512},
        "synth": {"min_relevance": 0.0},  # the fake embedder's cosine is not semantic
        "pipeline": {"documents": str(docs), "collection": "handbook", "recipe": str(recipe), "eval_limit": 3,
                     "synth_max_chunks": 12,
                     "golden": [str(SAMPLES / "golden" / "answerable.jsonl"), str(SAMPLES / "golden" / "unanswerable.jsonl")]},
    }))
    return root, config


def up(root, config, *args):
    return runner.invoke(app, ["--home", str(root / "home"), "--profile", "test", "--config", str(config), "up",
                               "--no-serve", *args])


def stages(output: str) -> dict[str, str]:
    """stage -> status, from the summary table."""
    found = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("┃", "│").split("│") if c.strip()]
        if len(cells) >= 2 and cells[0] in ("ingest", "synth", "finetune", "eval", "promote"):
            found[cells[0]] = cells[1]
    return found


def test_first_run_runs_every_stage_then_a_rerun_skips_them_and_a_changed_document_reruns_the_rest(project):
    root, config = project
    first = up(root, config)
    assert first.exit_code == 0, first.stderr
    assert stages(first.stderr) == {"ingest": "ran", "synth": "ran", "finetune": "ran", "eval": "ran",
                                    "promote": stages(first.stderr)["promote"]}
    state = json.loads((root / "home" / "pipeline" / "state.json").read_text())
    assert set(state) == {"ingest", "synth", "finetune", "eval"}
    run_dir = state["eval"]["outputs"]["run_dir"]
    summary = json.loads((root / "home" / "evals" / run_dir.rsplit("/", 1)[-1] / "summary.json").read_text())
    assert set(summary["variants"]) == {"rag", "rag+lora"} and summary["run"]["questions"] == 6
    assert "scorecard.html" in first.stderr
    ref = state["finetune"]["outputs"]["ref"]
    registry = assembly.adapter_registry(settings_for(root / "home"))
    assert registry.get(ref).metadata["dataset"]["train_examples"] > 0
    promoted = registry.promoted("assistant")
    assert (stages(first.stderr)["promote"] == "ran") == (promoted is not None and promoted.ref == ref)
    gate = registry.get(ref).metadata["gate"][-1]  # the decision and its reasoning are stored either way
    assert gate["baseline"] == "rag" and gate["candidate"] == ref and gate["checks"][0]["detail"] in first.stderr
    assert {c["name"] for c in gate["checks"]} == {"metric", "refusal_accuracy", "false_refusals", "canary"}
    assert "not run" not in gate["reason"]  # the canary attacked both variants
    assert gate["promote"] == (promoted is not None and promoted.ref == ref)

    second = up(root, config)
    assert second.exit_code == 0, second.stderr
    assert [stages(second.stderr)[s] for s in ("ingest", "synth", "finetune", "eval")] == ["skipped"] * 4

    with (root / "docs" / "leave_policy.md").open("a", encoding="utf-8") as handle:
        handle.write("\nSabbatical requests are reviewed by the People Team every quarter.\n")
    third = up(root, config)
    assert third.exit_code == 0, third.stderr
    assert [stages(third.stderr)[s] for s in ("ingest", "synth", "finetune", "eval")] == ["ran"] * 4
    assert json.loads((root / "home" / "pipeline" / "state.json").read_text())["finetune"]["outputs"]["ref"] != ref


def test_missing_documents_or_golden_set_are_clear_errors(tmp_path):
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "--profile", "test", "up", "--no-serve",
                                 "--docs", str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "no document directory" in result.stderr
    (tmp_path / "docs").mkdir()
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "--profile", "test", "up", "--no-serve",
                                 "--docs", str(tmp_path / "docs"), "--golden", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 1 and "golden set not found" in result.stderr and "missing.jsonl" in result.stderr


def test_an_empty_document_directory_stops_at_ingest_with_a_reason(tmp_path):
    (tmp_path / "docs").mkdir()
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), "--profile", "test", "up", "--no-serve",
                                 "--docs", str(tmp_path / "docs")])
    assert result.exit_code == 1 and "nothing could be indexed" in result.stderr
    assert not (tmp_path / "home" / "pipeline" / "state.json").exists()


def test_each_quickstart_key_revokes_the_previous_one(tmp_path):
    settings = settings_for(tmp_path / "home")
    first, second = quickstart_key(settings), quickstart_key(settings)
    keys = assembly.database(settings).keys
    assert keys.authenticate(first) is None and keys.authenticate(second).name == QUICKSTART_KEY
    assert keys.authenticate(second).scopes == ("chat",)


def test_the_main_jobs_scorecard_searches_the_collection_it_serves_at_the_served_cap(settings):
    from assistant.pipeline import Pipeline

    scoring = Pipeline(settings)._scoring_settings()
    assert scoring.eval.collections == [settings.pipeline.collection]
    # The served cap; answers decoded together (eval.batch_size > 1) keep the served tokens (test_runtime_real.py: decode_together against stream).
    assert scoring.eval.max_new_tokens == 0 and scoring.eval.batch_size == settings.eval.batch_size


def test_a_log_gets_a_line_per_tenth_of_each_phase_of_a_stage():
    from assistant.cli.pipeline import log_line

    logged: dict = {}
    lines = [log_line(logged, "synth", done, 20) for done in range(1, 21)]
    assert [x for x in lines if x] == [f"synth: {n}/20" for n in (1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20)]
    # the self-distilled answers of the same stage: a new total, logged again from its start
    assert log_line(logged, "synth", 1, 600) == "synth: 1/600" and log_line(logged, "synth", 2, 600) is None
    assert log_line(logged, "eval rag", 0, 0) == "eval rag: 0/?"
