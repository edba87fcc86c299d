"""vLLM on a GPU: the random Qwen2.5-VL-7B served by `vllm serve`, a few hundred MMAD-style questions
through `judo eval --backend openai`, against the in-process batched path (`judo eval --batch-size`).

Both runs ask the same questions of the synthetic MMAD root with the same prompt, greedy, the same
token budget, on the same GPU one after the other (vLLM is stopped before the in-process run). The
random 7B (`judo tiny --size 7b`, the real architecture, no download) answers noise, but speed does
not depend on what the weights say. Printed: questions/s of each backend and their ratio, MMAD's
39,672 questions in hours at each rate, and how many records agree (vLLM's kernels are not
transformers', so greedy texts may part after a few tokens; the letters and lengths are the point).

vLLM stays out of requirements.txt (it brings its own torch): install it into a separate environment
and name its executable with --vllm (default: `vllm` on PATH, or $JUDO_VLLM). Without a CUDA GPU or
without vLLM the script prints `skipped: ...` and exits 0. `--self-check` runs the same code on the
CPU with the tiny model and tests/openai_server.py in place of vLLM (the script's own test).

Target (exit 1 when missed): vLLM answers at least as many questions per second as the in-process
batched path.

    .venv/bin/python bench/served_gpu.py [--questions 300] [--tokens 64] [--concurrency 32] [--batch 16]
                                         [--vllm PATH] [--work DIR] [--model DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

MMAD_QUESTIONS = 39_672
SERVED_NAME = "judo-random-7b"
MIN_RATIO = 1.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_command(vllm: str, model_dir: Path, port: int, memory: float, max_len: int) -> list[str]:
    """`vllm serve` for JUDO's prompts: two images per prompt, at most the prompt plus the budget."""
    return [
        vllm,
        "serve",
        str(model_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        SERVED_NAME,
        "--dtype",
        "bfloat16",
        "--max-model-len",
        str(max_len),
        "--limit-mm-per-prompt",
        json.dumps({"image": 2, "video": 0}),
        "--mm-processor-kwargs",
        json.dumps({"max_pixels": 448 * 448}),
        "--gpu-memory-utilization",
        str(memory),
    ]


def wait_for(url: str, proc: subprocess.Popen, log: Path, limit_s: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}); last log lines:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url + "/models", timeout=2) as reply:
                if reply.status == 200:
                    return time.monotonic() - t0
        except OSError:
            time.sleep(1.0)
    raise SystemExit(f"the server did not answer within {limit_s:.0f} s; last log lines:\n{tail(log)}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def judo_eval(args: list[str], loaded=None) -> float:
    """`judo eval` with these options in this process; questions/s of the asking alone (a model already
    in memory through ``loaded``: loading is not part of the rate)."""
    from judo.evaluate.run import build_parser, run

    t0 = time.perf_counter()
    result = run(build_parser().parse_args([*args, "--no-progress"]), loaded)
    return result.asked / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=300)
    p.add_argument("--tokens", type=int, default=64, help="new tokens per answer (--max-new-tokens)")
    p.add_argument("--concurrency", type=int, default=32, help="requests in flight to vLLM")
    p.add_argument("--batch", type=int, default=16, help="batch size of the in-process path")
    p.add_argument("--vllm", default=os.environ.get("JUDO_VLLM") or shutil.which("vllm"))
    p.add_argument("--memory", type=float, default=0.6, help="vLLM --gpu-memory-utilization")
    p.add_argument(
        "--model", type=Path, help="a checkpoint folder (default: build the random 7B under --work)"
    )
    p.add_argument("--work", type=Path, default=None, help="where to build the model and the MMAD root")
    p.add_argument("--startup", type=float, default=420.0, help="seconds vLLM may take to start")
    p.add_argument("--self-check", action="store_true", help="tiny model on CPU, the test server for vLLM")
    args = p.parse_args(argv)

    import torch

    if not args.self_check:
        if not torch.cuda.is_available():
            print("skipped: no CUDA GPU visible; this check serves the random 7B with vLLM on a GPU")
            return 0
        if not args.vllm:
            print(
                "skipped: vLLM is not installed (no `vllm` on PATH; set --vllm or JUDO_VLLM to its executable)"
            )
            return 0
    size, device = ("tiny", "cpu") if args.self_check else ("7b", "cuda")
    work = args.work or Path(tempfile.mkdtemp(prefix="judo-vllm-"))
    work.mkdir(parents=True, exist_ok=True)
    model_dir = args.model or work / f"random-{size}"
    if args.model is None and not (model_dir / "chat_template.json").is_file():  # written last by build_tiny
        from judo.synthetic.tiny_model import build_tiny

        t = time.perf_counter()
        build_tiny(model_dir, size=size)
        print(f"built the random {size} checkpoint in {time.perf_counter() - t:.0f} s: {model_dir}")
    root = work / "MMAD"
    if not (root / "mmad.json").is_file():
        from judo.synthetic import make_mmad_root

        make_mmad_root(root, seed=0, per_defect=4, normals=6)
    common = ["--mmad-root", str(root), "--limit", str(args.questions), "--max-new-tokens", str(args.tokens)]

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = work / "server.log"
    if args.self_check:
        script = (
            "import sys, time; from tests.openai_server import OpenAIServer; "
            f"OpenAIServer(sys.argv[1], model_name={SERVED_NAME!r}, parallel=4).start(port={port}); "
            "time.sleep(10**6)"
        )
        cmd = [sys.executable, "-c", script, str(model_dir)]
    else:
        cmd = vllm_command(args.vllm, model_dir, port, args.memory, 2 * 256 + 512 + args.tokens)
    served_out, local_out = work / "served.jsonl", work / "in_process.jsonl"
    for out in (served_out, local_out):
        out.unlink(missing_ok=True)
    with open(log, "w") as fh:
        server = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        startup = wait_for(url, server, log, args.startup)
        print(f"server up after {startup:.0f} s: {' '.join(cmd[:2])} ... (log: {log})")
        served = judo_eval(
            [
                *common,
                "--out",
                str(served_out),
                "--backend",
                "openai",
                "--base-url",
                url,
                "--model",
                SERVED_NAME,
                "--concurrency",
                str(args.concurrency),
            ]
        )
    finally:
        stop(server)
    from judo.models import load_model, load_processor

    loaded = load_model(model_dir, device=device), load_processor(model_dir)
    local = judo_eval(
        [
            *common,
            "--out",
            str(local_out),
            "--checkpoint",
            str(model_dir),
            "--device",
            device,
            "--batch-size",
            str(args.batch),
        ],
        loaded,
    )

    from judo.evaluate.records import read_records

    a, b = read_records([served_out]), read_records([local_out])
    same_text = sum(x.raw == y.raw for x, y in zip(a, b, strict=True))
    same_letter = sum(x.predicted == y.predicted for x, y in zip(a, b, strict=True))
    name = "test server" if args.self_check else "vLLM"
    print(f"{len(a)} questions, {args.tokens} new tokens max, greedy, {device}")
    print(
        f"{name} (concurrency {args.concurrency}): {served:.2f} questions/s; "
        f"MMAD in {MMAD_QUESTIONS / served / 3600:.1f} h"
    )
    print(
        f"in-process batch {args.batch}: {local:.2f} questions/s; MMAD in {MMAD_QUESTIONS / local / 3600:.1f} h"
    )
    print(f"{name} vs in-process: {served / local:.2f}x")
    print(f"records: {same_text}/{len(a)} identical texts, {same_letter}/{len(a)} identical letters")
    if not args.self_check and served / local < MIN_RATIO:
        print(
            f"TARGET MISSED: vLLM {served / local:.2f}x the in-process batched path (target >= {MIN_RATIO})"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
