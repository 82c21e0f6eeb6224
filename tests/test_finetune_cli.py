"""`ragtune synth`, `ragtune finetune` and `ragtune adapters`: exit codes, clear errors, registry commands."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from assistant.cli import app
from finetune.registry import AdapterRegistry
from tests.conftest import SAMPLES

runner = CliRunner()


def _run(home, *args):
    return runner.invoke(app, ["--home", str(home), "--profile", "test", *args])


def test_synth_writes_a_dataset_and_reports_filters(tmp_path):
    home = tmp_path / "home"
    assert _run(home, "ingest", str(SAMPLES / "docs")).exit_code == 0
    out = tmp_path / "ds"
    result = _run(home, "synth", "--teacher", "fake", "--max-chunks", "40", "--out", str(out),
                  "--exclude-golden", str(SAMPLES / "golden" / "answerable.jsonl"))
    assert result.exit_code == 0, result.stderr
    assert "round_trip" in result.stderr and "card.md" in result.stderr
    card = json.loads((out / "card.json").read_text())
    assert card["chunks_used"] == 40 and card["excluded_golden_sets"]
    assert (out / "train.jsonl").read_text().strip()


def test_synth_without_an_index_and_finetune_without_data_are_clear_errors(tmp_path):
    result = _run(tmp_path / "home", "synth", "--teacher", "fake")
    assert result.exit_code == 2 and "error" in result.stderr
    result = _run(tmp_path / "home", "finetune", "--data", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "missing" in result.stderr
    result = _run(tmp_path / "home", "finetune", "--data", str(tmp_path), "--recipe", "nope")
    assert result.exit_code == 2 and "no recipe" in result.stderr


def test_adapters_commands(tmp_path):
    home = tmp_path / "home"
    registry = AdapterRegistry(home / "adapters")
    for _ in range(2):
        staging = registry.staging_dir("assistant")
        (staging / "adapter_config.json").write_text("{}")
        registry.publish("assistant", staging, {"dataset": {"train_examples": 3}})
    assert _run(home, "adapters", "promote", "assistant@v1").exit_code == 0
    assert _run(home, "adapters", "promote", "assistant@v2").exit_code == 0
    listed = json.loads(_run(home, "adapters", "list", "--json").stdout)
    assert [(r["ref"], r["promoted"]) for r in listed] == [("assistant@v1", False), ("assistant@v2", True)]
    assert "assistant@v2" in _run(home, "adapters", "list").stderr
    assert json.loads(_run(home, "adapters", "show", "assistant").stdout)["version"] == "v2"
    assert "assistant@v1 is promoted" in _run(home, "adapters", "rollback", "assistant").stderr
    refused = _run(home, "adapters", "delete", "assistant@v1")
    assert refused.exit_code == 2 and "is promoted" in refused.stderr
    assert _run(home, "adapters", "delete", "assistant@v2").exit_code == 0
    missing = _run(home, "adapters", "show", "nope")
    assert missing.exit_code == 2 and "no adapter named" in missing.stderr
