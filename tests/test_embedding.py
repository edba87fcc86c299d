"""The offline all-MiniLM-L6-v2 embedder: loading, caching, normalisation, pairwise cosine, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from judo import embedding
from judo.embedding import DIM, EmbeddingError, cosine, embed, get_embedder, model_path, process_device


@pytest.fixture(scope="module")
def model():
    return get_embedder("cpu")


def test_model_ships_in_the_package_and_loads_once_per_device(model):
    assert (Path(model_path()) / "config.json").is_file()
    assert get_embedder("cpu") is model
    assert str(model.device) == "cpu"


def test_process_device_is_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch):
    import torch

    monkeypatch.setenv("LOCAL_RANK", "3")
    assert process_device() == ("cuda:3" if torch.cuda.is_available() else "cpu")


def test_embeddings_are_normalised_and_duplicates_identical(model):
    texts = ["a scratch on the cap", "the bottle is intact", "a scratch on the cap"]
    vectors = embed(texts, embedder=model)
    assert vectors.shape == (3, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert embed([], embedder=model).shape == (0, DIM)


def test_cosine_separates_paraphrases_from_unrelated_text(model):
    sims = cosine(
        [
            "The bottle cap has a deep scratch near the rim.",
            "The bottle cap has a deep scratch near the rim.",
        ],
        ["A scratch is visible on the edge of the bottle cap.", "Stock markets fell sharply today."],
        embedder=model,
    )
    assert sims.shape == (2,)
    assert sims[0] > 0.7 and sims[1] < 0.3
    same = cosine(["identical text"], ["identical text"], embedder=model)
    assert same[0] == pytest.approx(1.0, abs=1e-5)


def test_batching_does_not_change_the_embeddings(model):
    """Texts of very different lengths share padded batches; each must embed as it does alone."""
    texts = [f"defect {i} " * (1 + 7 * (i % 5)) for i in range(40)]
    assert embedding.batch_size(model) == embedding.CPU_BATCH_SIZE < len(texts)
    batched = embed(texts, embedder=model)
    alone = np.stack([embed([text], embedder=model)[0] for text in texts])
    np.testing.assert_allclose(batched, alone, atol=2e-5)


def test_batch_size_follows_the_device():
    class On:
        def __init__(self, device):
            self.device = device

    import torch

    assert embedding.batch_size(On(torch.device("cuda", 1))) == embedding.GPU_BATCH_SIZE
    assert embedding.batch_size(On("cuda:0")) == embedding.GPU_BATCH_SIZE
    assert embedding.batch_size(On(torch.device("cpu"))) == embedding.CPU_BATCH_SIZE
    assert embedding.batch_size(object()) == embedding.CPU_BATCH_SIZE


def test_default_embedder_is_the_process_model(model, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(embedding, "process_device", lambda: "cpu")
    np.testing.assert_array_equal(embed(["x"]), embed(["x"], embedder=model))


class ScaledEmbedder:
    """Returns unnormalised vectors, ignoring normalize_embeddings: embed() must still normalise."""

    def encode(self, sentences, **kwargs):
        return np.array([[3.0 * (i + 1), 4.0 * (i + 1)] for i, _ in enumerate(sentences)])


class BrokenEmbedder:
    def encode(self, sentences, **kwargs):
        return np.zeros((len(sentences) + 1, 4))


def test_injected_embedders_are_normalised_and_checked():
    vectors = embed(["a", "b"], embedder=ScaledEmbedder())
    np.testing.assert_allclose(vectors, [[0.6, 0.8], [0.6, 0.8]], atol=1e-6)
    with pytest.raises(EmbeddingError, match="returned shape"):
        embed(["a"], embedder=BrokenEmbedder())


def test_bad_input_is_refused(model):
    with pytest.raises(TypeError, match="list of strings"):
        embed("a single string", embedder=model)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string"):
        embed(["ok", None], embedder=model)
    with pytest.raises(ValueError, match="equal length"):
        cosine(["a", "b"], ["a"], embedder=model)
