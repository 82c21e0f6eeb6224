"""`ragtune review ...` and `ragtune rollout ...`: the same services as the admin API, from a terminal."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from assistant import assembly
from assistant.cli import app
from tests.api_helpers import settings_for

runner = CliRunner()


def _run(home, *args):
    return runner.invoke(app, ["--home", str(home), "--profile", "test", *args])


def add_version(home, version, gate=None):
    path = home / "adapters" / "assistant" / f"v{version}"
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    meta = {"name": "assistant", "version": f"v{version}", "eval": {}, **({"gate": [gate]} if gate else {})}
    (path / "metadata.json").write_text(json.dumps(meta))


def test_review_list_accept_reject_and_export(tmp_path):
    home = tmp_path / "home"
    db = assembly.database(settings_for(home))
    first = db.reviews.add("thumbs_down", "m1", "How many vacation days?", "I can't find that.", comment="handbook says 25")
    second = db.reviews.add("rail_replaced", "m2", "Who is the CEO?", "I can't find that.")
    listed = _run(home, "review", "list", "--json")
    assert listed.exit_code == 0 and {i["id"] for i in json.loads(listed.stdout)["items"]} == {first.id, second.id}
    accepted = _run(home, "review", "accept", first.id, "--reference", "25 days a year.", "--source", "handbook.pdf:4",
                    "--training", "--note", "section 4")
    assert accepted.exit_code == 0 and "golden set v1" in accepted.stderr
    again = _run(home, "review", "reject", first.id)
    assert again.exit_code == 2 and "already accepted" in again.stderr
    assert _run(home, "review", "accept", second.id).exit_code == 2  # answerable without a reference
    assert _run(home, "review", "accept", second.id, "--unanswerable").exit_code == 0
    out = tmp_path / "reviewed.jsonl"
    assert _run(home, "review", "export", "--out", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["sources"] == [{"document": "handbook.pdf", "page": 4}] and rows[1]["answerable"] is False
    assert rows[0]["provenance"]["why"] == "section 4" and rows[0]["provenance"]["by"].startswith("cli:")
    assert _run(home, "review", "show", "nope").exit_code == 2


def test_rollout_needs_a_passing_gate_then_starts_reports_and_stops(tmp_path):
    home = tmp_path / "home"
    add_version(home, 1)
    add_version(home, 2, gate={"promote": False, "reason": "refuse: metric delta does not lie above 0"})
    add_version(home, 3, gate={"promote": True, "reason": "promote"})
    assembly.adapter_registry(settings_for(home)).promote("assistant@v1")
    refused = _run(home, "rollout", "start", "assistant@v2")
    assert refused.exit_code == 2 and "refused" in refused.stderr
    assert _run(home, "rollout", "start", "assistant@v9").exit_code == 2
    started = _run(home, "rollout", "start", "assistant@v3", "--share", "0.1")
    assert started.exit_code == 0 and "10% of conversations answer with assistant@v3" in started.stderr
    status = json.loads(_run(home, "rollout", "status").stdout)
    assert status["rollout"]["control"] == "assistant@v1" and status["readout"]["verdict"].startswith("not yet")
    assert _run(home, "rollout", "start", "assistant@v3").exit_code == 2  # one at a time
    assert _run(home, "rollout", "stop").exit_code == 0
    assert json.loads(_run(home, "rollout", "status").stdout)["rollout"] is None


def test_finetune_promote_goes_through_the_gate(tmp_path):
    """The fake backend prefixes adapter answers with the adapter's name: no better than base+RAG, so refused."""
    from tests.api_helpers import build_home
    from tests.test_finetune import dataset
    from tests.test_loop_e2e import GOLDEN
    from tests.test_runtime_contract import tiny_model_dir

    home = build_home(tmp_path)
    base, _ = tiny_model_dir(tmp_path / "tiny")
    golden = tmp_path / "golden.jsonl"
    golden.write_text("".join(json.dumps({"id": f"g{i}", "question": q, "reference": r}) + "\n"
                              for i, (q, r, _) in enumerate(GOLDEN)))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("base: lora-cpu\ntarget_modules: [q_proj, v_proj]\nrank: 4\nalpha: 8\nepochs: 1\n"
                      "max_train_examples: 2\nmax_val_examples: 1\nmax_seq_tokens: 512\n")
    config = tmp_path / "ragtune.yaml"
    config.write_text(json.dumps({"generator": {"model": str(base), "context_window_tokens": 512}}))
    result = runner.invoke(app, ["--home", str(home), "--profile", "test", "--config", str(config), "finetune",
                                 "--data", str(dataset(tmp_path)), "--recipe", str(recipe), "--promote",
                                 "--golden", str(golden), "--eval-limit", "4"])
    assert result.exit_code == 5, result.stderr
    assert "not promoted" in result.stderr and "security canary" in result.stderr
    registry = assembly.adapter_registry(settings_for(home))
    assert registry.promoted("assistant") is None
    assert registry.get("assistant@v1").metadata["gate"][-1]["baseline"] == "rag"
