"""The adapter registry: versions, promote/rollback/delete, and the server's default adapter."""

import asyncio
import json

import pytest

from assistant import assembly
from assistant.chat_service import ChatRequest, ChatService
from assistant.inference_queue import InferenceQueue
from finetune.registry import AdapterRegistry, RegistryError, parse_ref


def publish(registry, name="assistant", loss=1.0):
    staging = registry.staging_dir(name)
    (staging / "adapter_config.json").write_text("{}")
    return registry.publish(name, staging, {"training": {"best_val_loss": loss}})


def test_versions_are_numbered_and_staging_is_invisible(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    assert [publish(registry).version for _ in range(3)] == ["v1", "v2", "v3"]
    registry.staging_dir("assistant")  # an interrupted run
    assert [v.ref for v in registry.list()] == ["assistant@v1", "assistant@v2", "assistant@v3"]
    meta = json.loads((tmp_path / "adapters/assistant/v2/metadata.json").read_text())
    assert meta["name"] == "assistant" and meta["version"] == "v2" and "created_at" in meta


def test_get_promote_rollback_delete(tmp_path):
    registry = AdapterRegistry(tmp_path)
    for _ in range(3):
        publish(registry)
    assert registry.get("assistant").version == "v3"  # nothing promoted: newest
    registry.promote("assistant@v1")
    assert registry.get("assistant").version == "v1" and registry.promoted("assistant").version == "v1"
    registry.promote("assistant@v2")
    assert registry.rollback("assistant").version == "v1"
    assert registry.get("assistant").promoted and registry.get("assistant").version == "v1"
    with pytest.raises(RegistryError, match="no earlier promoted"):
        registry.rollback("assistant")
    with pytest.raises(RegistryError, match="is promoted"):
        registry.delete("assistant@v1")
    registry.delete("assistant@v3")
    assert [v.version for v in registry.versions("assistant")] == ["v1", "v2"]
    registry.delete("assistant@v1", force=True)
    assert registry.promoted("assistant") is None


def test_bad_refs_and_unknown_names_are_clear_errors(tmp_path):
    registry = AdapterRegistry(tmp_path)
    publish(registry)
    for ref, message in [("../x", "invalid adapter name"), ("assistant@3", "invalid adapter version"),
                         ("nope", "no adapter named 'nope'"), ("assistant@v9", "has no version v9")]:
        with pytest.raises(RegistryError, match=message):
            registry.get(ref)
    with pytest.raises(RegistryError, match="NAME@vN"):
        registry.delete("assistant")
    assert parse_ref("a@v2") == ("a", "v2")


def test_publish_refuses_a_directory_without_an_adapter(tmp_path):
    registry = AdapterRegistry(tmp_path)
    with pytest.raises(RegistryError, match="adapter_config.json"):
        registry.publish("assistant", registry.staging_dir("assistant"), {})


def test_server_answers_with_the_promoted_adapter_by_default(settings, small_corpus):
    assembly.ingest_job(settings).run([small_corpus])
    registry = assembly.adapter_registry(settings)
    publish(registry)
    publish(registry)
    registry.promote("assistant@v1")
    generator = assembly.generator(settings)
    assert set(generator.adapters()) == {"assistant", "assistant@v1", "assistant@v2"}
    service = ChatService(assembly.retriever(settings), generator, InferenceQueue(), settings.chat,
                          settings.generator, assembly.default_adapter(settings, generator))
    default = asyncio.run(service.answer(ChatRequest("hotel rate in Berlin?")))
    assert default.adapter == "assistant" and default.text.startswith("(assistant) ")
    base = asyncio.run(service.answer(ChatRequest("hotel rate in Berlin?", adapter="base")))
    assert base.adapter is None and not base.text.startswith("(")
    named = asyncio.run(service.answer(ChatRequest("hotel rate in Berlin?", adapter="assistant@v2")))
    assert named.text.startswith("(assistant@v2) ")


def test_no_promoted_version_means_the_base_model(settings):
    publish(assembly.adapter_registry(settings))
    generator = assembly.generator(settings)
    assert generator.adapters() == ["assistant@v1"]
    assert assembly.default_adapter(settings, generator) is None
