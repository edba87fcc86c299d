"""vLLM pieces that cannot run here: the GRPO recipes (train/recipes/vllm/), their twins in train/recipes/
plus TRL's vLLM fields, and the GPU check bench/served_gpu.py (skips without a GPU, self-checks on CPU).

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


# ------------------------------------------------------------------------------- bench/served_gpu.py
BENCH = Path(__file__).resolve().parents[1] / "bench" / "served_gpu.py"


def test_vllm_check_without_a_gpu_says_it_skipped():
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the check would run for real")
    proc = subprocess.run([sys.executable, str(BENCH)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("skipped: no CUDA GPU"), proc.stdout + proc.stderr


@pytest.mark.slow
def test_vllm_check_runs_on_the_cpu_with_the_test_server(tmp_path: Path):
    """--self-check: the tiny model, tests/openai_server.py in vLLM's place; the same code path."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, str(BENCH), "--self-check", "--questions", "12", "--tokens", "6", "--batch", "4",
           "--concurrency", "4", "--work", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, cwd=BENCH.parents[1], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "test server (concurrency 4):" in proc.stdout and "in-process batch 4:" in proc.stdout
    assert "records: 12/12 identical texts" in proc.stdout
