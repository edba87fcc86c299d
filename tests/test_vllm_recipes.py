"""The vLLM GRPO recipes (train/recipes/vllm/) are their twins in train/recipes/ plus TRL's vLLM fields.

vLLM itself is not installed here (it brings its own torch), so the recipes are checked against TRL's
own `GRPOConfig`: every field exists, the values parse into it, and nothing but generation differs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

RECIPES = Path(__file__).resolve().parents[1] / "train" / "recipes"
VLLM_RECIPES = sorted((RECIPES / "vllm").glob("*.yaml"))


def test_there_is_a_vllm_recipe_for_each_paper_grpo_stage():
    assert {p.stem for p in VLLM_RECIPES} == {"stage3", "base_grpo"}


@pytest.mark.parametrize("path", VLLM_RECIPES, ids=lambda p: p.stem)
def test_vllm_recipe_is_its_twin_plus_colocated_vllm(path: Path):
    from trl import GRPOConfig

    recipe = yaml.safe_load(path.read_text())
    twin = yaml.safe_load((RECIPES / path.name).read_text())
    added = {k: v for k, v in recipe.items() if k not in twin}
    assert all(k == "use_vllm" or k.startswith("vllm_") for k in added), added
    assert {k: recipe[k] for k in twin} == twin  # data, rewards, batch, schedule, output folder: unchanged
    assert added["use_vllm"] is True and added["vllm_mode"] == "colocate"
    known = {f.name for f in dataclasses.fields(GRPOConfig)}
    assert set(added) <= known, set(added) - known
    config = GRPOConfig(
        output_dir="unused", report_to="none", bf16=False, use_cpu=True, **added
    )  # TRL takes them
    assert config.use_vllm and config.vllm_mode == "colocate" and config.vllm_enable_sleep_mode
    # the context must hold the prompt (two 448x448 images = 2 x 256 tokens, ~300 text) and the completion
    assert config.vllm_max_model_length >= 2 * 256 + 300 + twin["max_completion_length"]
    assert 0 < config.vllm_gpu_memory_utilization < 0.5  # the training states need the rest of the GPU
