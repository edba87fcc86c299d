"""bench/gpu_7b.py is only worth its GPU time if it runs first time: its every part, on the tiny model
and the CPU (the same code path, with the tiny recipes for the training part)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_benchmark_runs_every_part_on_the_tiny_model(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(REPO / "bench" / "gpu_7b.py"),
        "--size",
        "tiny",
        "--device",
        "cpu",
        "--tokens",
        "8",
        "--batch",
        "2",
        "--steps",
        "1",
        "--recipes",
        "tiny",
        "--work",
        str(tmp_path),
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "serve float32: load" in out and "tokens/s" in out
    assert "eval batch   1:" in out and "eval batch   2:" in out and "eval batch 2 vs 1:" in out
    for stage in ("stage1", "stage3"):
        assert f"train {stage} (tiny recipe): 1 steps" in out, out
    assert "FAILED" not in out and "built the random tiny checkpoint" in out

    # one part per command (a GPU command must stay under 10 minutes): the checkpoint is built once
    again = subprocess.run(
        [*cmd[: cmd.index("--tokens")], "--parts", "serve", "--work", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0 and "serve float32" in again.stdout
    assert "built the random" not in again.stdout


def test_gpu_benchmark_without_a_gpu_says_it_skipped() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_7b.py"), "--parts", "serve"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "skipped: no CUDA GPU visible" in proc.stdout
