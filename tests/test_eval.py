"""Scorecards: metrics on hand-made cases, golden files, gates and exit codes, compare, the
registry record, golden rows from feedback, and `--url` against a live server on the fake backend."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from assistant import assembly
from assistant.cli import app
from eval import gates
from eval.golden import GoldenError, GoldenRow, Source, load
from eval.metrics import Scorer, page_ids
from eval.stats import mean_ci, paired_delta
from eval.text_metrics import token_f1
from eval.variants import VariantError, parse_variants
from tests.api_helpers import build_home, settings_for

GOLDEN = [
    {"id": "q1", "question": "What is the hotel rate cap in Berlin?", "reference": "The hotel rate cap in Berlin is 180 EUR per night.",
     "sources": [{"document": "travel.md"}]},
    {"id": "q2", "question": "How many flights may be booked in business class?", "reference": "Business class is allowed on flights over six hours.",
     "sources": [{"document": "travel.md"}]},
    {"id": "u1", "question": "What is the parking fee at the Mars office?", "reference": None, "answerable": False, "sources": []},
]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return build_home(tmp_path_factory.mktemp("eval"))


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "golden.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in GOLDEN))
    return path


def cli(home, *args, env=None):
    return CliRunner().invoke(app, ["--home", str(home), "--profile", "test", *args], env=env)


# --- metrics ------------------------------------------------------------------------------------
def scorer():
    from ingestion.embedder import HashEmbedder

    return Scorer(HashEmbedder(64).embed)


def test_metrics_on_hand_made_cases_have_their_known_values():
    row = GoldenRow("a", "cap?", "The cap is 200 euros per night.", True, [Source("travel.pdf", 2), Source("travel.pdf", 7)])
    contexts = [{"document": "travel.pdf", "page": 1, "page_end": 2, "text": "..."},  # spans the reference page 2
                {"document": "travel.pdf", "page": 3, "page_end": 3, "text": "..."},
                {"document": "other.pdf", "page": 2, "page_end": None, "text": "..."},
                {"document": "travel.pdf", "page": 4, "page_end": 4, "text": "..."}]
    assert page_ids(contexts, row) == (["travel.pdf#2", "travel.pdf#3", "other.pdf#2", "travel.pdf#4"],
                                       ["travel.pdf#2", "travel.pdf#7"])
    exact = {"answer": "The cap is 200 euros per night.", "refused": False, "citations": [{"number": 1}], "contexts": contexts}
    scores = scorer().score(row, exact, retrieval=True)
    assert scores["token_f1"] == 1.0 and scores["rouge_l"] == pytest.approx(1.0)
    assert scores["semantic_similarity"] == pytest.approx(1.0, abs=1e-6)
    assert scores["context_recall"] == 0.5 and scores["context_precision"] == 0.25  # 1 of 2 pages; 1 of 4 chunks
    assert scores["cited_rate"] == 1.0 and scores["false_refusal_rate"] == 0.0
    # "the" and the citation are dropped: 3 shared words, precision 3/3, recall 3/6.
    assert token_f1("The cap is 200 [1]", "cap is 200 euros per night") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert token_f1("cap is 200 euros", "The cap is 200 [1] dollars") == pytest.approx(2 * 0.75 * 0.75 / 1.5)
    refused = scorer().score(row, {**exact, "answer": "The documents do not answer this question.", "refused": True,
                                   "citations": []}, retrieval=False)
    assert refused["false_refusal_rate"] == 1.0 and "context_recall" not in refused and "cited_rate" not in refused
    unanswerable = GoldenRow("u", "moon?", None, False)
    assert scorer().score(unanswerable, {**exact, "refused": True}, True) == {"refusal_accuracy": 1.0}
    assert scorer().score(unanswerable, {**exact, "refused": False}, True) == {"refusal_accuracy": 0.0}


def test_bootstrap_intervals_and_paired_deltas():
    values = [0.0, 1.0] * 50
    low, high = mean_ci(values)
    assert low < 0.5 < high and high - low < 0.25 and mean_ci([1.0]) is None
    better = paired_delta([0.2] * 40, [0.2 + 0.1 * (i % 3) for i in range(40)])
    assert better.significant and better.low > 0 and better.p_value < 0.05
    noise = paired_delta([0.5, 0.6] * 20, [0.6, 0.5] * 20)
    assert not noise.significant and noise.p_value > 0.5


def test_variants_parse_and_refuse_what_cannot_run():
    names = [(v.name, v.adapter, v.retrieval) for v in parse_variants("base,rag,lora,rag+lora,adapter:x@v2", "assistant")]
    assert names == [("base", "base", False), ("rag", "base", True), ("lora", "assistant", False),
                     ("rag+lora", "assistant", True), ("x@v2", "x@v2", True)]
    for bad, adapter in [("lora", None), ("nonsense", "a"), ("rag,rag", "a"), ("", "a")]:
        with pytest.raises(VariantError):
            parse_variants(bad, adapter)


# --- golden files -------------------------------------------------------------------------------
def test_golden_jsonl_and_csv_load_with_clear_errors(tmp_path, home, golden):
    assert [r.id for r in load(golden)] == ["q1", "q2", "u1"] and not load(golden)[2].answerable
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?", "reference": "yes"}\n{"question": "no reference?", "answerable": true}\n')
    with pytest.raises(GoldenError, match="bad.jsonl:2"):
        load(bad)
    bad.write_text('{"id": "a", "question": "x?", "reference": "y"}\n{"id": "a", "question": "z?", "reference": "w"}\n')
    with pytest.raises(GoldenError, match="duplicate id"):
        load(bad)
    csv_path = tmp_path / "golden.csv"
    csv_path.write_text("id,question,reference,answerable,sources\n"
                        "c1,What is the cap?,180 EUR,,travel.pdf:3; plans.md\n"
                        "c2,Mars parking?,,false,\n", encoding="utf-8")
    out = tmp_path / "golden.jsonl"
    result = cli(home, "golden", "import-csv", str(csv_path), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = load(out)
    assert rows[0].sources == [Source("travel.pdf", 3), Source("plans.md", None)] and not rows[1].answerable


# --- a run, its files, gates and compare -------------------------------------------------------------
def test_eval_run_writes_every_output_and_gates_set_the_exit_code(home, golden, tmp_path):
    run = tmp_path / "run"
    result = cli(home, "eval", "--golden", str(golden), "--variants", "base,rag", "--out", str(run),
                 "--fail-under", "rag.context_recall=0.5")
    assert result.exit_code == 0, result.output
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["variants"]) == {"base", "rag"}
    assert summary["variants"]["rag"]["context_recall"] == 1.0 and summary["variants"]["base"].get("context_recall") is None
    assert summary["variants"]["base"]["false_refusal_rate"] == 1.0  # the fake refuses without documents
    assert summary["run"]["judge"] is None and summary["gates"][0]["passed"]
    refusals = next(p for p in summary["pairs"] if p["metric"] == "false_refusal_rate")
    assert (refusals["a"], refusals["b"], refusals["delta"], refusals["n"]) == ("base", "rag", -1.0, 2)
    assert "Paired differences" in (run / "summary.md").read_text()
    rows = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["variant"] for r in rows} == {"base", "rag"}
    rag_q1 = next(r for r in rows if r["variant"] == "rag" and r["id"] == "q1")
    assert rag_q1["contexts"] and rag_q1["citations"][0]["document"] == "travel.md" and rag_q1["latency_ms"] >= 0
    assert (run / "results.csv").read_text().count("\n") == 7
    assert "| rag |" in (run / "summary.md").read_text() or "rag" in (run / "summary.md").read_text()
    html = (run / "scorecard.html").read_text()
    assert "<svg" in html and 'id="q-q1"' in html and "variants" in (run / "config.yaml").read_text()

    failing = cli(home, "eval", "--golden", str(golden), "--variants", "rag", "--out", str(tmp_path / "r2"),
                  "--fail-under", "token_f1=1.01", "--fail-under", "false_refusal_rate=0.0")
    assert failing.exit_code == 1 and "gate failed" in failing.output and "token_f1" in failing.output
    typo = cli(home, "eval", "--golden", str(golden), "--variants", "rag", "--fail-under", "tokenf1=0.3")
    assert typo.exit_code == 2 and "unknown metric" in typo.output
    missing = cli(home, "eval", "--golden", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())


def test_compare_finds_worse_questions_and_regression_gates_fail(home, golden, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run in (a, b):
        assert cli(home, "eval", "--golden", str(golden), "--variants", "rag", "--out", str(run)).exit_code == 0
    same = cli(home, "eval", "compare", str(a), str(b), "--json", "--fail-on-regression")
    assert same.exit_code == 0, same.output
    assert all(d["delta"] == 0 for d in json.loads(same.stdout)["deltas"])
    # Make run b worse: q1 now refused, its similarity gone.
    rows = [json.loads(line) for line in (b / "results.jsonl").read_text().splitlines()]
    for row in rows:
        if row["answerable"]:
            row.update(refused=True, answer="The documents do not answer this question.")
            row["metrics"].update(false_refusal_rate=1.0, semantic_similarity=0.0, token_f1=0.0)
    (b / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    worse = cli(home, "eval", "compare", str(a), str(b), "--json", "--fail-on-regression")
    assert worse.exit_code == 1
    body = json.loads(worse.stdout)
    assert {w["id"] for w in body["worse"]} == {"q1", "q2"}
    assert any(d["metric"] == "false_refusal_rate" and d["regressed"] for d in body["deltas"])
    gated = cli(home, "eval", "--golden", str(golden), "--variants", "rag", "--out", str(tmp_path / "c"),
                "--no-regression-vs", str(b))
    assert gated.exit_code == 0  # better than the damaged run is no regression
    assert gates.check(["rag.false_refusal_rate=0.2"], {"rag": {"false_refusal_rate": 0.5}})[0].passed is False


def test_an_adapters_scorecard_is_recorded_and_gates_promotion(tmp_path):
    from finetune.registry import AdapterRegistry

    home = build_home(tmp_path)
    settings = settings_for(home)
    registry = AdapterRegistry(settings.adapters_dir)
    for _ in range(2):
        staging = registry.staging_dir("assistant")
        (staging / "adapter_config.json").write_text("{}")
        registry.publish("assistant", staging, {"base_model": "fake"})
    golden = tmp_path / "g.jsonl"
    golden.write_text("".join(json.dumps(r) + "\n" for r in GOLDEN))
    unproven = cli(home, "adapters", "promote", "assistant@v1", "--require-scorecard")
    assert unproven.exit_code == 1 and "no scorecard" in unproven.output
    result = cli(home, "eval", "--golden", str(golden), "--variants", "rag,adapter:assistant@v1", "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    cards = registry.get("assistant@v1").metadata["eval"]
    card = next(v for k, v in cards.items() if k.startswith("scorecard:"))
    assert card["retrieval"] and card["metrics"]["context_recall"] == 1.0 and card["gates_passed"]
    assert "eval" not in registry.get("assistant@v2").metadata
    too_high = cli(home, "adapters", "promote", "assistant@v1", "--require-scorecard", "--min", "token_f1=0.99")
    assert too_high.exit_code == 1 and "token_f1" in too_high.output
    ok = cli(home, "adapters", "promote", "assistant@v1", "--require-scorecard", "--min", "context_recall=0.9")
    assert ok.exit_code == 0, ok.output
    assert registry.promoted("assistant").ref == "assistant@v1"


def test_thumbs_down_with_a_comment_becomes_a_candidate_that_needs_a_reference(home, tmp_path):
    from litestar.testing import TestClient

    from assistant.app import create_app

    application = create_app(settings_for(home), background_load=False)
    with TestClient(application) as client:
        _, key = application.state.services.db.keys.create("fb", "chat", all_collections=True)
        client.headers.update({"Authorization": f"Bearer {key}"})
        liked = client.post("/v1/chat", json={"message": "hotel rate cap in Berlin?"}).json()
        disliked = client.post("/v1/chat", json={"message": "What is the flight class rule?"}).json()
        silent = client.post("/v1/chat", json={"message": "Plans?"}).json()
        for body, rating, comment in [(liked, "up", "great"), (disliked, "down", "wrong class rule"), (silent, "down", None)]:
            response = client.post(f"/v1/messages/{body['message_id']}/feedback", json={"rating": rating, "comment": comment})
            assert response.status_code in (200, 201), response.text
    out = tmp_path / "candidates.jsonl"
    result = cli(home, "golden", "from-feedback", "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["question"] == "What is the flight class rule?"
    assert rows[0]["review"]["comment"] == "wrong class rule" and rows[0]["review"]["rejected_answer"]
    with pytest.raises(GoldenError, match="needs a reference"):
        load(out)  # no candidate is scored until a person writes its reference


def test_url_mode_scores_a_live_server_like_in_process(home, golden, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # chat + eval: the base variant asks closed-book (retrieval: false), which needs the eval scope
    _, key = assembly.database(settings_for(home)).keys.create("evaluator", ["chat", "eval"], all_collections=True)
    command = [sys.executable, "-m", "assistant.cli", "--home", str(home), "--profile", "test", "serve", "--port", str(port)]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        remote = cli(home, "eval", "--golden", str(golden), "--variants", "base,rag", "--url", url, "--api-key", key,
                     "--out", str(tmp_path / "remote"))
        assert remote.exit_code == 0, remote.output
        refused = cli(home, "eval", "--golden", str(golden), "--variants", "rag", "--url", url, "--api-key", "rt_wrong")
        assert refused.exit_code == 2 and "refused the API key" in refused.output
    finally:
        server.terminate()
        server.wait(timeout=20)
    local = cli(home, "eval", "--golden", str(golden), "--variants", "base,rag", "--out", str(tmp_path / "local"))
    assert local.exit_code == 0
    remote_summary = json.loads((tmp_path / "remote" / "summary.json").read_text())
    local_summary = json.loads((tmp_path / "local" / "summary.json").read_text())
    assert remote_summary["run"]["mode"] == f"url {url}"
    for variant in ("base", "rag"):
        for metric in ("token_f1", "false_refusal_rate", "refusal_accuracy", "context_recall"):
            assert remote_summary["variants"][variant].get(metric) == pytest.approx(local_summary["variants"][variant].get(metric))


# --- the optional judge -------------------------------------------------------------------------
def scripted_judge(responses):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from ragas.embeddings import LangchainEmbeddingsWrapper
    from ragas.llms import LangchainLLMWrapper

    from eval.judge import Judge
    from eval.metrics import _LangchainEmbeddings
    from ingestion.embedder import HashEmbedder

    llm = LangchainLLMWrapper(FakeListChatModel(responses=[*responses, *["not json"] * 60]))
    return Judge("scripted", llm, LangchainEmbeddingsWrapper(_LangchainEmbeddings(HashEmbedder(64).embed)))


@pytest.mark.parametrize("verdict", [1, 0])
def test_judged_faithfulness_follows_the_judges_verdicts_and_unparseable_output_scores_nothing(verdict):
    from ingestion.embedder import HashEmbedder

    statement = "The cap is 200 euros."
    judge = scripted_judge([json.dumps({"statements": [statement]}),
                            json.dumps({"statements": [{"statement": statement, "reason": "r", "verdict": verdict}]})])
    row = GoldenRow("a", "cap?", statement, True, [])
    answer = {"answer": statement, "refused": False, "citations": [], "contexts": [{"document": "x", "page": 1, "text": statement}]}
    scores = Scorer(HashEmbedder(64).embed, judge).score(row, answer, retrieval=True)
    assert scores["faithfulness"] == float(verdict)
    assert scores["answer_relevancy"] is None and scores["factual_correctness"] is None  # "not json": no score, not 0


def test_a_small_or_default_model_is_refused_as_a_judge(tmp_path):
    from assistant.settings import EvalSettings
    from eval.judge import JudgeError, build_judge
    from ingestion.embedder import HashEmbedder

    embed = HashEmbedder(64).embed
    assert build_judge(EvalSettings(), embed, "gemma") is None
    small = tmp_path / "small"
    small.mkdir()
    (small / "config.json").write_text(json.dumps({"vocab_size": 262144, "hidden_size": 640, "num_hidden_layers": 18}))
    for spec in ("base", "gemma", str(small), "openai:http://127.0.0.1:9/v1"):
        with pytest.raises(JudgeError):
            build_judge(EvalSettings(judge=spec), embed, "gemma")
    served = build_judge(EvalSettings(judge="openai:http://127.0.0.1:9/v1", judge_model="qwen-72b"), embed, "gemma")
    assert served.name == "qwen-72b at http://127.0.0.1:9/v1"


def test_without_variants_a_home_with_no_adapter_compares_base_and_rag(home, golden, tmp_path):
    result = cli(home, "eval", "--golden", str(golden), "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    assert set(json.loads((tmp_path / "run" / "summary.json").read_text())["variants"]) == {"base", "rag"}
