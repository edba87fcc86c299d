"""What a portable Qwen2.5-VL checkpoint folder looks like: the files and class names of Qwen's own."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoImageProcessor, AutoProcessor, AutoTokenizer

# The values Qwen/Qwen2.5-VL-7B-Instruct's own config files record.
STOCK_NAMES = {
    "processor_class": {"Qwen2_5_VLProcessor"},
    "image_processor_type": {"Qwen2VLImageProcessor"},
    "tokenizer_class": {"Qwen2Tokenizer", "Qwen2TokenizerFast"},
    "model_type": {"qwen2_5_vl", "qwen2_5_vl_text", "qwen2_5_vl_vision"},
}
STOCK_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "chat_template.json",
)


def _names(value, found: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in STOCK_NAMES and isinstance(item, str):
                found.append((key, item))
            _names(item, found)
    elif isinstance(value, list):
        for item in value:
            _names(item, found)


def assert_stock_layout(folder: Path) -> None:
    """Every config names only stock classes, in Qwen's file layout, and stock loaders resolve them."""
    for name in STOCK_FILES:
        assert (folder / name).is_file(), f"{folder} lacks {name}"
    assert not (folder / "processor_config.json").exists(), "transformers-5-only processor_config.json"
    for path in folder.glob("*.json"):
        found: list[tuple[str, str]] = []
        _names(json.loads(path.read_text(encoding="utf-8")), found)
        for key, value in found:
            assert value in STOCK_NAMES[key], f"{path.name}: {key} {value!r} is not a stock name"
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["Qwen2_5_VLForConditionalGeneration"]
    assert AutoTokenizer.from_pretrained(folder).convert_tokens_to_ids("<|image_pad|>") is not None
    assert AutoImageProcessor.from_pretrained(folder).merge_size == 2
    try:  # stock AutoProcessor: loads, or (no torchvision here) stops only at the video processor it wants
        AutoProcessor.from_pretrained(folder)
    except ImportError as exc:
        assert "Torchvision" in str(exc), exc
