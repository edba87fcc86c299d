"""Qwen2.5-VL-7B on a GPU, random weights at the real size: serving, evaluation and training figures.

No weights can be downloaded, so `judo tiny --size 7b` builds the exact architecture (8.29 B
parameters) around the project's own tokenizer; speed and memory do not depend on what the weights
say. Greedy decoding runs with the end tokens off and the embedding rows the tokenizer does not use
suppressed, so every run makes exactly --tokens tokens of decodable text. Parts (--parts, all by
default):

- serve: the app's path (`judo.models.load_model`, `judo.generation.stream_generate`) in bf16 and
  4-bit: load seconds, peak GPU memory, time to the first streamed text, decode tokens/s, for one
  1-shot inspection (template + query at 448 px, the judo prompt).
- eval: `judo.generation.generate_batch` (what `judo eval` runs) at batch 1 and --batch: questions/s
  and the hours for MMAD's 39,672 questions at that rate.
- sft, grpo: the workstation recipes (QLoRA, one GPU) for --steps optimizer steps of stage 1
  (train/sft.py) and stage 3 (train/grpo.py) on data from the real builders and a local HTTP teacher:
  seconds per step, tokens/s and peak memory, as the scripts log them. The 4x H200 recipes need four
  GPUs (ZeRO-3 shards ~133 GB of weights, gradients and Adam states) and are not run here.

    .venv/bin/python bench/gpu_7b.py [--model DIR] [--parts serve,eval,sft,grpo] [--tokens 256] [--batch 16]

Without --model the 7B checkpoint is built under --work (16.6 GB, ~1 min on a GPU) and reused by
later runs with the same --work, so each part can be its own command. `--size tiny
--device cpu` runs the same code on the tiny model: a quick check of the script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MMAD_QUESTIONS = 39_672
QUERY = REPO / "examples" / "bottle" / "bottle-contamination-000.png"
TEMPLATE = REPO / "examples" / "templates" / "bottle" / "00.png"
QUESTION = "Is there any defect in the object?"
OPTIONS = {"A": "Yes.", "B": "No."}


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


class Memory:
    """Peak accelerator memory of a block (0 on a CPU)."""

    def __init__(self, device: str):
        import torch

        self.cuda = device.startswith("cuda") and torch.cuda.is_available()
        self.peak = 0

    @contextlib.contextmanager
    def track(self):
        import torch

        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        try:
            yield self
        finally:
            if self.cuda:
                torch.cuda.synchronize()
                self.peak = torch.cuda.max_memory_allocated()


def exact_length(model, processor) -> None:
    """Every run makes exactly max_new_tokens of text: no end token, no embedding rows without text."""
    model.generation_config.eos_token_id = None
    vocab = model.get_input_embeddings().weight.shape[0]
    model.generation_config.suppress_tokens = list(range(len(processor.tokenizer), vocab))


def release_memory() -> None:
    """Hand freed GPU memory back, so the next part's peak is its own (call after `del model`)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def serve(model_dir: Path, device: str, quantization: str | None, tokens: int) -> dict:
    from judo.generation import decoding, stream_generate
    from judo.models import load_model, load_processor
    from judo.prompts import inspection_prompt

    memory = Memory(device)
    t = time.perf_counter()
    with memory.track():
        model = load_model(model_dir, quantization=quantization, device=device)
    load_s, weights = time.perf_counter() - t, memory.peak
    processor = load_processor(model_dir)
    exact_length(model, processor)
    prompt = inspection_prompt(QUERY, TEMPLATE, QUESTION, OPTIONS, style="judo")
    for _ in stream_generate(model, processor, prompt, decoding(4)):  # warm-up
        pass
    with memory.track():
        start = time.perf_counter()
        first, pieces = None, 0
        for _ in stream_generate(model, processor, prompt, decoding(tokens)):
            first = first or time.perf_counter()
            pieces += 1
        end = time.perf_counter()
    weights_type = quantization or str(model.dtype).removeprefix("torch.")
    del model
    release_memory()
    return {
        "quantization": weights_type,
        "load_s": load_s,
        "weights": weights,
        "peak": memory.peak,
        "ttft_s": (first or end) - start,
        "tokens_per_s": (tokens - 1) / max(end - (first or end), 1e-9),
        "deltas": pieces,
    }


def evaluate(model_dir: Path, device: str, tokens: int, batch: int) -> dict:
    from judo.generation import decoding, generate_batch
    from judo.models import load_model, load_processor
    from judo.prompts import inspection_prompt

    model, processor = load_model(model_dir, device=device), load_processor(model_dir)
    exact_length(model, processor)
    prompts = [
        inspection_prompt(QUERY, TEMPLATE, f"{QUESTION} ({i})", OPTIONS, style="judo") for i in range(batch)
    ]
    generate_batch(model, processor, prompts[:1], decoding(4))  # warm-up
    memory, rates = Memory(device), {}
    for size in sorted({1, batch}):
        with memory.track():
            t = time.perf_counter()
            generate_batch(model, processor, prompts[:size], decoding(tokens))
            rates[size] = (size / (time.perf_counter() - t), memory.peak)
    del model
    release_memory()
    return rates


def build_data(work: Path) -> Path:
    """Stage-1 and stage-3 data from the real builders, a synthetic MMAD root and a local HTTP teacher."""
    from judo.data.cli import main as data_main
    from judo.synthetic import make_mmad_root
    from tests.teacher_server import TeacherServer
    from tests.test_data_builders import teacher_args, teacher_reply

    data = work / "data"
    if (data / "stage3" / "manifest.json").is_file():
        return data
    root = make_mmad_root(work / "MMAD", seed=0)
    with TeacherServer(reply=teacher_reply) as server:
        for stage, extra in (("stage1", []), ("stage3", ["--stage1", str(data / "stage1")])):
            code = data_main(
                [
                    stage,
                    "--mmad",
                    str(root),
                    "--out",
                    str(data / stage),
                    "--limit",
                    "16",
                    *extra,
                    *teacher_args(server),
                ]
            )
            if code != 0:
                raise SystemExit(f"judo data {stage} failed with exit code {code}")
    return data


TRAIN_PARTS = {"sft": ("sft.py", "stage1"), "grpo": ("grpo.py", "stage3")}


def train(model_dir: Path, work: Path, steps: int, recipes: str, parts: set[str]) -> list[dict]:
    """Run the real scripts for a few steps; read their logged figures back."""
    data, rows = build_data(work), []
    for script, stage in (TRAIN_PARTS[part] for part in TRAIN_PARTS if part in parts):
        out = work / f"train-{stage}"
        recipe = REPO / "train" / "recipes" / recipes / f"{stage}.yaml"
        args = [
            sys.executable,
            str(REPO / "train" / script),
            "--config",
            str(recipe),
            "--model_name_or_path",
            str(model_dir),
            "--data_dir",
            str(data / stage),
            "--output_dir",
            str(out),
            "--max_steps",
            str(steps),
            "--logging_steps",
            "1",
            "--save_strategy",
            "no",
            "--merge_lora",
            "false",
        ]
        env = {**os.environ, "PYTHONPATH": str(REPO), "TOKENIZERS_PARALLELISM": "false"}
        t = time.perf_counter()
        proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            rows.append({"stage": stage, "error": (proc.stdout + proc.stderr)[-1500:]})
            continue
        logs = [json.loads(line) for line in (out / "judo_log.jsonl").read_text().splitlines()]
        steps_logged = [entry for entry in logs if "loss" in entry]
        final = next(entry for entry in logs if "train_runtime" in entry)
        rows.append(
            {
                "stage": stage,
                "wall_s": wall,
                "runtime_s": final["train_runtime"],
                "steps": len(steps_logged),
                "step_s": final["train_runtime"] / max(len(steps_logged), 1),
                "tokens": steps_logged[-1].get("num_tokens", 0) if steps_logged else 0,
                "peak_gib": max((e.get("peak_memory_gib", 0.0) for e in logs), default=0.0),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a checkpoint folder (default: build one under --work)")
    parser.add_argument("--size", choices=("7b", "tiny"), default="7b")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--parts", default="serve,eval,sft,grpo", help="comma-separated: serve eval sft grpo")
    parser.add_argument("--tokens", type=int, default=256, help="new tokens per answer")
    parser.add_argument("--batch", type=int, default=16, help="evaluation batch size compared with 1")
    parser.add_argument("--steps", type=int, default=2, help="optimizer steps per training stage")
    parser.add_argument(
        "--recipes", default="workstation", help="recipe folder under train/recipes for training"
    )
    parser.add_argument("--work", type=Path, default=None, help="where to build the model and data")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if parts - {"serve", "eval", *TRAIN_PARTS}:
        parser.error(
            f"unknown part(s) {sorted(parts - {'serve', 'eval', *TRAIN_PARTS})}; use serve, eval, sft, grpo"
        )
    work = args.work or Path(tempfile.mkdtemp(prefix="judo-gpu-"))
    work.mkdir(parents=True, exist_ok=True)

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "skipped: no CUDA GPU visible; this benchmark measures the 7B model on a GPU "
            "(--size tiny --device cpu checks the script itself)"
        )
        return 0
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    model_dir = args.model or work / f"random-{args.size}"
    if args.model is None and not (model_dir / "chat_template.json").is_file():  # written last by build_tiny
        from judo.synthetic.tiny_model import build_tiny

        t = time.perf_counter()
        build_tiny(model_dir, size=args.size)
        print(f"built the random {args.size} checkpoint in {time.perf_counter() - t:.0f} s: {model_dir}")
    print(f"device: {device_name}; model: {model_dir}; {args.tokens} new tokens per answer")

    if "serve" in parts:
        for quantization in (None, "4bit") if args.device.startswith("cuda") else (None,):
            r = serve(model_dir, args.device, quantization, args.tokens)
            print(
                f"serve {r['quantization']:7s}: load {r['load_s']:.1f} s, weights {gib(r['weights'])}, peak "
                f"{gib(r['peak'])}; first text after {r['ttft_s'] * 1000:.0f} ms, decode {r['tokens_per_s']:.1f} "
                f"tokens/s ({r['deltas']} streamed deltas)"
            )
    if "eval" in parts:
        rates = evaluate(model_dir, args.device, args.tokens, args.batch)
        for size, (rate, peak) in rates.items():
            print(
                f"eval batch {size:3d}: {rate:.2f} questions/s, peak {gib(peak)}; MMAD's {MMAD_QUESTIONS:,} "
                f"questions in {MMAD_QUESTIONS / rate / 3600:.1f} h"
            )
        if len(rates) == 2:
            print(f"eval batch {args.batch} vs 1: {rates[args.batch][0] / rates[1][0]:.1f}x")
    if parts & set(TRAIN_PARTS):
        for row in train(model_dir, work, args.steps, args.recipes, parts):
            if "error" in row:
                print(f"train {row['stage']}: FAILED\n{row['error']}")
                continue
            print(
                f"train {row['stage']} ({args.recipes} recipe): {row['steps']} steps, {row['step_s']:.1f} s/step, "
                f"{row['tokens'] / max(row['runtime_s'], 1e-9):,.0f} tokens/s, peak {row['peak_gib']:.1f} GiB "
                f"(process wall {row['wall_s']:.0f} s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
