"""Session fixtures: the tiny model and the synthetic MMAD root are built once per test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The inspection log (judo.inspection_log) of every app a test serves goes to a throwaway folder.
os.environ.setdefault("JUDO_DATA_DIR", tempfile.mkdtemp(prefix="judo-test-data-"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL checkpoint (own tokenizer, processor), built offline once."""
    from judo.synthetic.tiny_model import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny") / "tiny-qwen2.5-vl", seed=0)


@pytest.fixture(scope="session")
def mmad_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic dataset in MMAD's exact on-disk layout."""
    from judo.synthetic import make_mmad_root

    return make_mmad_root(tmp_path_factory.mktemp("mmad") / "MMAD", seed=0)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests leave files worth looking at (screenshots, plots): kept after the run."""
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path
