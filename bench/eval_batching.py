"""Questions per second of `judo eval`'s model engine at batch 1 vs batch 8 (tiny model, CPU).

The same path as `judo eval`: `prepare` with the run's image cache, then `QwenEngine.answer_batch`
(prompt -> left-padded `generate_batch` -> the engine's final parse). Only the batch size changes. Rounds
are interleaved and the best round of each setting is kept (the 2 cores are shared; compare ratios).

Targets: the answers at batch 8 are identical to batch 1 (what `judo eval --batch-size` promises), and
batching is not slower than asking one by one. The speed-up users see is on a GPU with a 7B model,
where decode steps are memory-bound and a batch shares each weight read: `bench/gpu_7b.py --parts eval`
measures it there. On this CPU the tiny model's prompt pass is mostly attention over each row, which a
batch does not share, so the CPU ratio says little about a GPU.

    .venv/bin/python bench/eval_batching.py [--questions 24] [--rounds 3] [--max-new-tokens 32] [--batch 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path


def run_round(items, engine, batch: int) -> tuple[float, list[tuple]]:
    import judo.evaluate.run as run_module

    images = run_module.ImageCache(size=batch * 2 + 2)  # as `judo eval` sizes it for 1 template
    answers: list[tuple] = []
    t0 = time.perf_counter()
    for start in range(0, len(items), batch):
        requests = [run_module.prepare(it, images) for it in items[start : start + batch]]
        answers.extend((u.text, u.answer, tuple(sorted(u.cells))) for u in engine.answer_batch(requests))
    return len(items) / (time.perf_counter() - t0), answers


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=24)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    args = p.parse_args()

    import torch

    from judo.engines.qwen import QwenEngine
    from judo.evaluate.selection import select_items
    from judo.generation import decoding
    from judo.mmad import load_mmad
    from judo.models import load_model, load_processor
    from judo.synthetic import make_mmad_root
    from judo.synthetic.tiny_model import build_tiny

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny(Path(tmp) / "tiny", seed=0)
        mmad = load_mmad(make_mmad_root(Path(tmp) / "MMAD", seed=0))
        items, _ = select_items(mmad, limit=args.questions)
        engine = QwenEngine(
            "model",
            "tiny",
            load_model(ckpt, device="cpu"),
            load_processor(ckpt),
            defaults=decoding(args.max_new_tokens),
        )
        load_before = os.getloadavg()[0]
        run_round(items[: args.batch], engine, args.batch)  # warm-up (allocations, imports)
        rates: dict[int, list[float]] = {1: [], args.batch: []}
        answers: dict[int, list[tuple]] = {}
        for _ in range(args.rounds):
            for batch in rates:
                qps, answers[batch] = run_round(items, engine, batch)
                rates[batch].append(qps)
        load_after = os.getloadavg()[0]

    one, many = max(rates[1]), max(rates[args.batch])
    print(
        f"{len(items)} questions, {args.max_new_tokens} new tokens max, greedy, best of {args.rounds} "
        f"interleaved rounds, {torch.get_num_threads()} torch threads; load average {load_before:.2f} -> "
        f"{load_after:.2f} on {os.cpu_count()} cores"
    )
    for batch, runs in rates.items():
        print(f"  batch {batch:>2}: {max(runs):5.2f} q/s (rounds: {', '.join(f'{r:.2f}' for r in runs)})")
    same = answers[1] == answers[args.batch]
    print(f"batch {args.batch} vs 1: {many / one:.2f}x; answers identical: {same}")
    missed = []
    if not same:
        missed.append(f"answers at batch {args.batch} differ from batch 1")
    if many < one * 0.95:  # 5% for the noise of a shared CPU
        missed.append(f"batch {args.batch} is slower than batch 1 ({many / one:.2f}x)")
    for line in missed:
        print(f"TARGET MISSED: {line}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
