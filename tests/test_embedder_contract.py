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
    ],
)
def embedder(request):
    return build_embedder(EmbedderSettings(**request.param))


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
