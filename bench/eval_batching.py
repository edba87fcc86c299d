"""Questions per second of `judo eval`'s model engine at batch 1 vs batch 8 (tiny model, CPU).

Same questions, same greedy generation length, same code path as `judo eval` (prepare -> prompt ->
generate_batch); only the batch size changes. Prints both rates and their ratio (target: >= 3x).
On a CPU the gain depends on load and threads: batching amortises per-step overhead (thread wake-ups,
Python, mask building), while image preprocessing and attention over ~930 tokens per question scale
with the batch; on a busy shared CPU the ratio drops.

    .venv/bin/python bench/eval_batching.py [--questions 16] [--rounds 3] [--max-new-tokens 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=16)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = p.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from judo.evaluate.answerers import ModelAnswerer
    from judo.evaluate.run import prepare
    from judo.evaluate.selection import select_items
    from judo.mmad import load_mmad
    from judo.synth import make_mmad_root
    from judo.tiny import build_tiny

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = build_tiny(Path(tmp) / "tiny", seed=0)
        mmad = load_mmad(make_mmad_root(Path(tmp) / "MMAD", seed=0))
        items, _ = select_items(mmad, limit=args.questions)
        prepared = [prepare(it, None) for it in items]
        answerer = ModelAnswerer(str(ckpt), max_new_tokens=args.max_new_tokens, device="cpu")
        answerer.answer(prepared[:2])  # warm-up (first-call allocations, lazy imports)

        # Interleaved rounds, best of each: on a shared CPU a burst of someone else's load during one
        # measurement would otherwise decide the ratio.
        rates: dict[int, list[float]] = {1: [], args.batch: []}
        for _ in range(args.rounds):
            for bs, measured in rates.items():
                t0 = time.perf_counter()
                for start in range(0, len(prepared), bs):
                    answerer.answer(prepared[start : start + bs])
                measured.append(len(prepared) / (time.perf_counter() - t0))
        best = {bs: max(r) for bs, r in rates.items()}
        for bs, r in rates.items():
            print(
                f"batch {bs:>2}: {best[bs]:6.2f} questions/s best of {args.rounds} "
                f"(all: {', '.join(f'{x:.2f}' for x in r)}; {len(prepared)} questions, "
                f"{args.max_new_tokens} new tokens max, {torch.get_num_threads()} threads)"
            )
        print(f"speed-up batch {args.batch} vs 1: {best[args.batch] / best[1]:.2f}x")


if __name__ == "__main__":
    main()
