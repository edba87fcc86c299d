"""The training scripts, run for real on CPU with the tiny Qwen2.5-VL: stage 1 -> 2 -> 3, Base GRPO,
resume from a checkpoint (and from a kill), one stage under DeepSpeed ZeRO-3, GRPO on two processes,
LoRA stages, the launch script for real; plus checks of the full-size recipes.

Every run is a subprocess of the real script with a tiny recipe (train/recipes/tiny/), exactly as a
user would start it; the data comes from the real builders and the fake HTTP teacher.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from judo.data.cli import main as data_main
from judo.data.datasets import load_grpo_dataset, load_sft_dataset
from judo.models import load_model, load_processor
from judo.rewards import REWARDS
from tests.checkpoint_layout import assert_stock_layout
from tests.teacher_server import TeacherServer
from tests.test_data_builders import teacher_args, teacher_reply

REPO = Path(__file__).resolve().parents[1]
TRAIN = REPO / "train"
RECIPES = TRAIN / "recipes"
FULL_RECIPES = sorted(RECIPES.glob("*.yaml"))
NODE_GPUS = 4  # the paper's node: the full recipes' batch arithmetic assumes it


@pytest.fixture(scope="module")
def data(mmad_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("train-data")
    with TeacherServer(reply=teacher_reply) as server:
        assert (
            data_main(
                [
                    "stage1",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(out / "stage1"),
                    "--limit",
                    "4",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        assert (
            data_main(
                [
                    "stage2",
                    "--mmad",
                    str(mmad_root),
                    "--out",
                    str(out / "stage2"),
                    "--count",
                    "2",
                    "--limit",
                    "2",
                    *teacher_args(server),
                ]
            )
            == 0
        )
        assert (
            data_main(
                [
                    "stage3",
                    "--mmad",
                    str(mmad_root),
                    "--stage1",
                    str(out / "stage1"),
                    "--out",
                    str(out / "stage3"),
                    "--limit",
                    "4",
                    *teacher_args(server),
                ]
            )
            == 0
        )
    return {name: out / name for name in ("stage1", "stage2", "stage3")}


def run(
    script: str, recipe: str, *args: str, launcher: list[str] | None = None, env: dict[str, str] | None = None
) -> str:
    """Run a training script like a user would; return its output, or fail showing the end of it."""
    cmd = [*(launcher or [sys.executable]), str(TRAIN / script), "--config", str(RECIPES / recipe), *args]
    # PYTHONPATH: recipes may name own rewards by module path (tests.letter_rewards:...)
    env = {
        **os.environ,
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "2",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        **(env or {}),
    }
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{output[-4000:]}"
    return output


def changed_tensors(before: Path, after: Path) -> int:
    a, b = load_file(before / "model.safetensors"), load_file(after / "model.safetensors")
    return sum(not torch.equal(a[k], b[k]) for k in a if k in b)


def assert_checkpoint(folder: Path) -> None:
    """A finished stage: full weights + processor + done marker, loadable by judo.models."""
    for name in ("model.safetensors", "config.json", "judo_training.json"):
        assert (folder / name).is_file(), f"{folder} lacks {name}"
    assert_stock_layout(folder)
    model = load_model(folder)
    processor = load_processor(folder)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert processor.image_processor is not None and not model.training


def assert_serves_in_the_app_engine(folder: Path) -> None:
    """The trained checkpoint answers a request through the app's Qwen engine (streamed updates)."""
    from judo.engines.base import InspectionRequest
    from judo.engines.qwen import QwenEngine
    from judo.generation import decoding

    engine = QwenEngine("judo", "JUDO", load_model(folder), load_processor(folder), defaults=decoding(6))
    picture = Image.new("RGB", (64, 64), (120, 120, 120))
    updates = list(
        engine.run(
            InspectionRequest(
                picture, picture, "Is there any defect in the object?", {"A": "Yes.", "B": "No."}
            )
        )
    )
    assert updates and updates[-1].done and updates[-1].error is None


@pytest.mark.slow
def test_stage1_resume_then_stage2_then_stage3(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    out1, out2, out3 = tmp_path / "judo-stage1", tmp_path / "judo-stage2", tmp_path / "judo-stage3"
    common1 = [
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(data["stage1"]),
        "--output_dir",
        str(out1),
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
    ]
    run("sft.py", "tiny/stage1.yaml", *common1, "--max_steps", "1")
    assert (out1 / "checkpoint-1").is_dir()
    (out1 / "judo_training.json").unlink()  # as if the run had stopped after its first checkpoint
    resumed = run("sft.py", "tiny/stage1.yaml", *common1, "--max_steps", "2")
    assert "resuming from" in resumed and "checkpoint-1" in resumed
    assert (out1 / "checkpoint-2").is_dir()
    assert_checkpoint(out1)
    assert changed_tensors(tiny_model_dir, out1) > 0

    run(
        "sft.py",
        "tiny/stage2.yaml",
        "--model_name_or_path",
        str(out1),
        "--data_dir",
        str(data["stage2"]),
        "--output_dir",
        str(out2),
    )
    assert_checkpoint(out2)
    assert changed_tensors(out1, out2) > 0

    log = run(
        "grpo.py",
        "tiny/stage3.yaml",
        "--model_name_or_path",
        str(out2),
        "--data_dir",
        str(data["stage3"]),
        "--output_dir",
        str(out3),
    )
    assert_checkpoint(out3)
    assert_serves_in_the_app_engine(out3)
    for name in ("domain_reward", "seg_reward", "choice_reward", "format_reward", "structure_reward"):
        assert f"rewards/{name}/mean" in log  # every reward was called on real completions


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_complete_checkpoint(
    tiny_model_dir: Path, data: dict, tmp_path: Path
) -> None:
    """kill -9 during training, plus a newer checkpoint cut off while being written (the Trainer writes
    trainer_state.json last): the rerun passes over the broken one and goes on from the last complete."""
    out = tmp_path / "killed"
    args = [
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(data["stage1"]),
        "--output_dir",
        str(out),
        "--save_strategy",
        "steps",
        "--save_steps",
        "1",
    ]
    cmd = [
        sys.executable,
        str(TRAIN / "sft.py"),
        "--config",
        str(RECIPES / "tiny/stage1.yaml"),
        *args,
        "--max_steps",
        "1000",
    ]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not (out / "checkpoint-2" / "trainer_state.json").is_file():
            assert proc.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint-2 within 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    complete = [
        int(p.name.split("-")[1]) for p in out.glob("checkpoint-*") if (p / "trainer_state.json").is_file()
    ]
    newest = max(complete)
    partial = out / f"checkpoint-{newest + 5}"  # as if the kill had landed while this one was written
    partial.mkdir(exist_ok=True)
    shutil.copy(out / f"checkpoint-{newest}" / "model.safetensors", partial)

    log = run("sft.py", "tiny/stage1.yaml", *args, "--max_steps", str(newest + 2))
    assert f"skipping {partial}: incomplete" in log
    assert f"resuming from {out / f'checkpoint-{newest}'}" in log
    assert_checkpoint(out)
    state = json.loads((out / f"checkpoint-{newest + 2}" / "trainer_state.json").read_text())
    assert state["global_step"] == newest + 2


@pytest.mark.slow
def test_stage1_under_deepspeed_zero3(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    out = tmp_path / "zero3"
    run(
        "sft.py",
        "tiny/stage1.yaml",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(data["stage1"]),
        "--output_dir",
        str(out),
        "--max_steps",
        "1",
        launcher=[
            str(Path(sys.executable).parent / "accelerate"),
            "launch",
            "--config_file",
            str(TRAIN / "accelerate_zero3.yaml"),
        ],
    )
    assert_checkpoint(out)
    done = json.loads((out / "judo_training.json").read_text())  # from the trainer's own DeepSpeed engine
    assert (done["deepspeed"], done["zero_stage"], done["world_size"]) == (True, 3, 1)
    assert changed_tensors(tiny_model_dir, out) > 0  # ZeRO-3 gathered the full, trained weights on save


@pytest.mark.slow
def test_grpo_on_two_processes_moves_the_weights(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    """The paper's launch route (torch.distributed.run, one process per device) with 2 CPU processes
    (gloo; DeepSpeed needs a GPU to see more than one process). Every rank generates, scores its own
    completions and syncs gradients; an own reward that varies on random text gives GRPO advantages, so
    the saved weights must differ from the start."""
    out = tmp_path / "grpo-2proc"
    log = run(
        "grpo.py",
        "tiny/stage3.yaml",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(data["stage3"]),
        "--output_dir",
        str(out),
        "--reward_funcs",
        "tests.letter_rewards:letter_share_reward",
        "format_reward",
        "--reward_weights",
        "1.0",
        "1.0",
        launcher=[sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"],
        env={"OMP_NUM_THREADS": "1"},
    )
    assert "rewards/letter_share_reward/mean" in log and "rewards/format_reward/mean" in log
    assert_checkpoint(out)
    assert json.loads((out / "judo_training.json").read_text())["processes"] == 2
    assert changed_tensors(tiny_model_dir, out) > 0
    entries = [json.loads(line) for line in (out / "judo_log.jsonl").read_text().splitlines()]
    steps = [e for e in entries if "loss" in e]  # written by rank 0 only: one line per logged step
    assert [e["step"] for e in steps] == [1, 2] and "rewards/letter_share_reward/mean" in steps[0]
    assert any("train_runtime" in e for e in entries)


@pytest.mark.slow
def test_lora_stage_merges_into_a_plain_checkpoint(tiny_model_dir: Path, data: dict, tmp_path: Path) -> None:
    """The workstation route: LoRA adapters trained, then folded into a full checkpoint the next stage
    and the app load like any other (4-bit QLoRA itself needs CUDA; LoRA and the merge do not)."""
    out = tmp_path / "lora"
    run(
        "sft.py",
        "tiny/stage1.yaml",
        "--model_name_or_path",
        str(tiny_model_dir),
        "--data_dir",
        str(data["stage1"]),
        "--output_dir",
        str(out),
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
    )
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert not (out / "adapter_model.safetensors").exists()
    assert_checkpoint(out)
    base, merged = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(merged) == set(base)  # no lora_A / base_layer names left behind
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all("q_proj" in k or "v_proj" in k for k in changed)
    assert json.loads((out / "judo_training.json").read_text())["lora_merged"] is True

    # the workstation chain goes on from the merged folder: GRPO with adapters (the reference model is
    # the same weights with the adapters switched off), merged again
    out3 = tmp_path / "lora-grpo"
    run(
        "grpo.py",
        "tiny/stage3.yaml",
        "--model_name_or_path",
        str(out),
        "--data_dir",
        str(data["stage3"]),
        "--output_dir",
        str(out3),
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--lora_target_modules",
        "q_proj",
        "v_proj",
        "--reward_funcs",
        "tests.letter_rewards:letter_share_reward",
        "format_reward",
        "--reward_weights",
        "1",
        "1",
    )
    assert_checkpoint(out3)
    stage1, stage3 = load_file(out / "model.safetensors"), load_file(out3 / "model.safetensors")
    assert {k for k in stage1 if not torch.equal(stage1[k], stage3[k])}


def test_training_data_loads_as_trl_expects(data: dict) -> None:
    sft = load_sft_dataset(data["stage1"])
    assert len(sft) == 4 and sft[0]["completion"][0]["content"][0]["text"].startswith("<seg>")
    grpo = load_grpo_dataset(data["stage3"])
    assert len(grpo) == 4 and all(grpo[i]["answer"] in "ABCDE" for i in range(4))


def test_a_missing_previous_stage_is_a_clear_error(data: dict, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        str(TRAIN / "sft.py"),
        "--config",
        str(RECIPES / "tiny/stage2.yaml"),
        "--model_name_or_path",
        str(tmp_path / "outputs" / "judo-stage1"),
        "--data_dir",
        str(data["stage2"]),
        "--output_dir",
        str(tmp_path / "o"),
    ]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "train the previous stage first" in proc.stderr


# --------------------------------------------------------------------------------------- recipes


def _fields() -> dict[str, set[str]]:
    import dataclasses

    from trl import GRPOConfig, ModelConfig, SFTConfig

    sys.path.insert(0, str(TRAIN))
    try:
        from common import JudoArguments
    finally:
        sys.path.remove(str(TRAIN))
    names = lambda *classes: {f.name for c in classes for f in dataclasses.fields(c)}  # noqa: E731
    return {
        "sft.py": names(SFTConfig, ModelConfig, JudoArguments),
        "grpo.py": names(GRPOConfig, ModelConfig, JudoArguments),
    }


def _script(recipe: dict) -> str:
    return "grpo.py" if "reward_funcs" in recipe else "sft.py"


@pytest.mark.parametrize(
    "path",
    FULL_RECIPES
    + sorted((RECIPES / "workstation").glob("*.yaml"))
    + sorted((RECIPES / "tiny").glob("*.yaml")),
    ids=lambda p: p.parent.name + "/" + p.stem,
)
def test_recipe_fields_exist_and_grpo_batches_add_up(path: Path) -> None:
    recipe = yaml.safe_load(path.read_text())
    unknown = set(recipe) - _fields()[_script(recipe)]
    assert not unknown, f"{path.name}: fields no trainer knows: {unknown}"
    if "max_length" in recipe:
        assert recipe["max_length"] is None  # a length cap would cut image tokens
    if _script(recipe) == "sft.py":
        return
    assert set(recipe["reward_funcs"]) <= set(REWARDS)
    assert len(recipe["reward_weights"]) == len(recipe["reward_funcs"])
    assert "beta" in recipe and "loss_type" in recipe  # TRL 1.16 changed both defaults
    gpus = NODE_GPUS if recipe.get("deepspeed") else 1
    completions = recipe["per_device_train_batch_size"] * gpus * recipe.get("gradient_accumulation_steps", 1)
    assert completions % recipe["num_generations"] == 0
    if path.parent == RECIPES:  # the paper's setting: 8 prompts x 16 generations per optimizer step
        assert recipe["num_generations"] == 16 and completions == 8 * 16 and recipe["num_train_epochs"] == 14


def test_full_recipes_chain_stages_and_match_the_paper() -> None:
    r = {p.stem: yaml.safe_load(p.read_text()) for p in FULL_RECIPES}
    assert r["stage2"]["model_name_or_path"] == r["stage1"]["output_dir"] == "outputs/judo-stage1"
    assert r["stage3"]["model_name_or_path"] == r["stage2"]["output_dir"]
    assert (
        r["stage3"]["output_dir"] == "outputs/judo-stage3"
        and r["base_grpo"]["output_dir"] == "outputs/base-grpo"
    )
    assert (r["stage1"]["num_train_epochs"], r["stage1"]["learning_rate"]) == (8, 1e-6)
    assert (r["stage2"]["num_train_epochs"], r["stage2"]["learning_rate"]) == (2, 5e-7)
    assert set(r["stage3"]["reward_funcs"]) == {
        "domain_reward",
        "seg_reward",
        "choice_reward",
        "format_reward",
        "structure_reward",
    }
    assert set(r["base_grpo"]["reward_funcs"]) == {"base_answer_reward", "base_format_reward"}
    assert r["base_grpo"]["model_name_or_path"] == r["stage1"]["model_name_or_path"]  # from the base model
    assert "domain_reward" not in r["grpo_segjux_dominj"]["reward_funcs"]
    assert r["grpo_dominj"]["model_name_or_path"] == r["dominj_stage2"]["output_dir"]
    assert all(x.get("bf16") for x in r.values())


@pytest.mark.slow
def test_launch_script_runs_the_whole_pipeline_then_skips_it(
    tiny_model_dir: Path, mmad_root: Path, tmp_path: Path
) -> None:
    """launch_h200.sh for real, data to JUDO and Base GRPO checkpoints: the tiny recipes chained like the
    full ones (RECIPES), one process on CPU, the HTTP teacher; a rerun then skips every finished step."""
    outputs, recipes = tmp_path / "outputs", tmp_path / "recipes"
    recipes.mkdir()
    chain = {
        "stage1": (tiny_model_dir, "judo-stage1"),
        "stage2": (outputs / "judo-stage1", "judo-stage2"),
        "stage3": (outputs / "judo-stage2", "judo-stage3"),
        "base_grpo": (tiny_model_dir, "base-grpo"),
    }
    for name, (start, folder) in chain.items():
        recipe = yaml.safe_load((RECIPES / "tiny" / f"{name}.yaml").read_text())
        recipe.update(model_name_or_path=str(start), output_dir=str(outputs / folder))
        (recipes / f"{name}.yaml").write_text(yaml.safe_dump(recipe))

    def launch(server: TeacherServer) -> str:
        env = {
            **os.environ,
            "RECIPES": str(recipes),
            "DATA_DIR": str(tmp_path / "data"),
            "NPROC": "1",
            "MMAD_ROOT": str(mmad_root),
            "PYTHON": sys.executable,
            "TEACHER_BASE_URL": server.base_url,
            "TEACHER_MODEL": "fake-teacher",
            "TEACHER_KEY_ENV": "JUDO_TEST_TEACHER_KEY",
            "JUDO_TEST_TEACHER_KEY": "test-key",
            "TOKENIZERS_PARALLELISM": "false",
            "OMP_NUM_THREADS": "2",
        }
        proc = subprocess.run(
            ["bash", str(TRAIN / "launch_h200.sh")],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        return proc.stdout

    with TeacherServer(reply=teacher_reply) as server:
        first = launch(server)
        calls = server.calls
        assert first.count("torch.distributed.run --nproc_per_node 1") == 4
        for folder in ("judo-stage1", "judo-stage2", "judo-stage3", "base-grpo"):
            assert_checkpoint(outputs / folder)
        assert json.loads((outputs / "judo-stage3" / "judo_training.json").read_text())["base"] == str(
            outputs / "judo-stage2"
        )
        # Base GRPO: the think prompt and the base rewards only (read back from its judo_log.jsonl)
        logged = set().union(
            *(json.loads(line) for line in (outputs / "base-grpo" / "judo_log.jsonl").open())
        )
        assert {"rewards/base_answer_reward/mean", "rewards/base_format_reward/mean"} <= logged
        assert not any(key.startswith("rewards/seg_reward") for key in logged)
        again = launch(server)
        assert server.calls == calls  # no teacher request the second time
    assert again.count("is complete, skipping") == 3 and again.count("is finished, skipping") == 4
    assert "torch.distributed.run" not in again


def test_launch_script_plans_the_pipeline_and_skips_finished_data(data: dict, tmp_path: Path) -> None:
    env = {**os.environ, "DATA_DIR": str(data["stage1"].parent), "MMAD_ROOT": "/data/MMAD"}
    proc = subprocess.run(
        ["bash", str(TRAIN / "launch_h200.sh"), "--dry-run"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "stage1 is complete, skipping" in out  # its manifest says complete
    assert "torch.distributed.run --nproc_per_node 4 train/sft.py --config train/recipes/stage1.yaml" in out
    assert out.index("recipes/stage2.yaml") < out.index("recipes/stage3.yaml") < out.index("base_grpo.yaml")
