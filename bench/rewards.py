"""Reward throughput for one GRPO generation batch: all five JUDO rewards, the real all-MiniLM-L6-v2.

A stage-3 step scores 8 prompts x 16 generations = 128 completions of ~200 tokens. The rewards run on
every rank between generation and the backward pass, so they must stay a small fraction of a step.
Target: under 1.5 s per batch (warm: the model loaded and one batch scored before timing).

The batch is realistic text: a seg block from a random defect-shaped region, ~150 words of
comparative reasoning, an answer; about a quarter of the completions are malformed in assorted ways
(unclosed or broken seg, reversed runs, cut off mid-thought, no answer, early commitment, the base
format). The rationale, answer and seg columns repeat per generation as TRL passes them.

On a CPU the domain reward's MiniLM dominates, and the script also prints the floor this machine puts
under it: the matrix-multiply work of encoding the batch (from the real word-piece counts, no padding)
divided by the best fp32 matmul rate measured here in the same run. When that floor is above the
target, no exact implementation can meet it on this CPU; int8 MiniLM (torch dynamic quantisation and
ONNX Runtime s8/u8/per-channel/reduced-range) was only 1.1-1.4x faster here and moved think-rationale
cosines by up to 0.06-0.19, more than the reward can afford, so it is not offered.

Run: ``.venv/bin/python bench/rewards.py [--device cpu|cuda] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

from judo import rewards
from judo.embedding import get_embedder
from judo.grid import GRID_SIZE, format_seg

TARGET_S = 1.5
PROMPTS, GENERATIONS = 8, 16
LETTERS = "ABCD"

OBJECTS = [
    "bottle cap",
    "cable insulation",
    "hazelnut shell",
    "metal nut",
    "screw thread",
    "transistor leg",
    "capsule print",
    "wood surface",
    "carpet weave",
    "leather grain",
    "pill coating",
    "zipper teeth",
]
DEFECTS = ["scratch", "crack", "hole", "stain", "missing part", "contamination", "bent lead", "cut", "fold"]
PLACES = [
    "upper left",
    "upper right",
    "centre",
    "lower left",
    "lower right",
    "left edge",
    "rim",
    "middle band",
]
SENTENCES = [
    "Comparing the query with the normal template, the {obj} in the query shows a {defect} near the {place}.",
    "In the template the surface of the {obj} is uniform, with even texture and consistent colour.",
    "The region around the {place} of the query is darker and its boundary is irregular and sharp.",
    "Such a {defect} on a {obj} usually comes from handling or from the production line and lowers quality.",
    "The rest of the {obj} matches the template closely, so the difference is local rather than global.",
    "A {defect} of this size would be rejected by a quality inspector because it affects function and looks.",
    "The shape is elongated and thin, which is typical for a {defect} rather than a stain or a dent.",
    "Lighting is the same in both images, so the change cannot be explained by reflections or shadows.",
    "Domain knowledge says that a {defect} on the {place} of a {obj} is a critical defect for this product.",
    "The texture inside the marked cells is disrupted, while the neighbouring cells look exactly like the template.",
]


def region(rng: random.Random, size: int) -> set[tuple[int, int]]:
    """A connected, wider-than-tall blob of about `size` cells, like a real defect."""
    cells = {(rng.randrange(GRID_SIZE), rng.randrange(GRID_SIZE))}
    frontier = list(cells)
    while len(cells) < size:
        r, c = rng.choice(frontier)
        dr, dc = rng.choice(((0, 1), (0, -1), (1, 0), (-1, 0), (0, 1), (0, -1)))
        nxt = (r + dr, c + dc)
        if 0 <= nxt[0] < GRID_SIZE and 0 <= nxt[1] < GRID_SIZE and nxt not in cells:
            cells.add(nxt)
            frontier.append(nxt)
    return cells


def reasoning(rng: random.Random, words: int = 150) -> str:
    obj, defect, place = rng.choice(OBJECTS), rng.choice(DEFECTS), rng.choice(PLACES)
    out: list[str] = []
    while sum(len(s.split()) for s in out) < words:
        out.append(rng.choice(SENTENCES).format(obj=obj, defect=defect, place=place))
    return " ".join(out)


def completion(rng: random.Random, truth_cells: set, answer: str, kind: str) -> str:
    cells = truth_cells if rng.random() < 0.5 else region(rng, max(1, len(truth_cells) + rng.randint(-3, 3)))
    seg = format_seg(cells if truth_cells or rng.random() < 0.2 else set())
    letter = answer if rng.random() < 0.6 else rng.choice(LETTERS)
    think = reasoning(rng) + f" Therefore the answer is {letter}."
    if kind == "ok":
        return f"{seg}<think>{think}</think><answer>{letter}</answer>"
    if kind == "unclosed_seg":
        return f"{seg[:-6]}<think>{think}</think><answer>{letter}</answer>"
    if kind == "reversed_run":
        return f"<seg> (4,9)-(4,3), (5,5) </seg><think>{think}</think><answer>{letter}</answer>"
    if kind == "truncated":
        return f"{seg}<think>{think[: len(think) * 2 // 3]}"
    if kind == "no_answer":
        return f"{seg}<think>{think}</think>"
    if kind == "early":
        return f"{seg}<think>The answer is {letter}. {think}</think><answer>{letter}</answer>"
    if kind == "base_format":
        return f"<think>{think}</think><answer>{letter}</answer>"
    raise ValueError(kind)


def make_batch(seed: int = 0) -> tuple[list, dict[str, list]]:
    """128 conversational completions plus the per-generation columns TRL passes."""
    rng = random.Random(seed)
    kinds = ["ok"] * 9 + ["unclosed_seg", "reversed_run", "truncated", "no_answer", "early", "base_format"]
    completions, columns = [], {"answer": [], "seg": [], "rationale": []}
    for _ in range(PROMPTS):
        truth = region(rng, rng.randint(2, 14)) if rng.random() < 0.75 else set()
        answer = rng.choice(LETTERS)
        rationale = reasoning(rng, words=90)
        for _ in range(GENERATIONS):
            text = completion(rng, truth, answer, rng.choice(kinds))
            completions.append([{"role": "assistant", "content": text}])
            columns["answer"].append(answer)
            columns["seg"].append([list(c) for c in sorted(truth)])
            columns["rationale"].append(rationale)
    return completions, columns


def score_batch(completions: list, columns: dict) -> dict[str, float]:
    """Seconds per reward for one batch, called the way TRL 1.16 calls them."""
    times = {}
    for name in rewards.JUDO_REWARDS:
        fn = rewards.REWARDS[name]
        t = time.perf_counter()
        values = fn(
            prompts=[None] * len(completions),
            completions=completions,
            completion_ids=None,
            trainer_state=None,
            log_metric=None,
            log_extra=None,
            **columns,
        )
        times[name] = time.perf_counter() - t
        assert len(values) == len(completions)
    return times


def rank_share() -> int:
    """Completions one rank scores per generation round in the stage-3 recipe: TRL scores each rank's
    own completions (per_device_train_batch_size x steps_per_generation) and only gathers the rewards."""
    import yaml

    recipe = yaml.safe_load((Path(__file__).resolve().parents[1] / "train/recipes/stage3.yaml").read_text())
    steps = recipe.get("steps_per_generation") or recipe.get("gradient_accumulation_steps", 1)
    return recipe["per_device_train_batch_size"] * steps


def matmul_gflops(seconds: float = 1.0) -> float:
    """Best fp32 matmul rate of this machine (GFLOP/s) at the shape of MiniLM's feed-forward layer."""
    import torch

    a, b = torch.randn(4096, 384), torch.randn(384, 1536)
    flops, best, end = 2 * 4096 * 384 * 1536, float("inf"), time.perf_counter() + seconds
    a @ b
    while time.perf_counter() < end:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return flops / best / 1e9


def encode_gflop(config, lengths: list[int]) -> float:
    """Matmul work of a BERT encoder over texts of these word-piece lengths: the dense layers
    (2 x params per token) plus attention scores and mixing (4 x len^2 x hidden per layer)."""
    h, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    dense = sum(lengths) * layers * 2 * (4 * h * h + 2 * h * ff)
    attention = sum(n * n for n in lengths) * layers * 4 * h
    return (dense + attention) / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="where MiniLM runs (cpu, cuda, cuda:0 ...)")
    parser.add_argument("--repeat", type=int, default=3, help="timed batches after the warm-up batch")
    args = parser.parse_args(argv)

    import torch

    t = time.perf_counter()
    model = get_embedder(args.device)
    rewards.set_embedder(model)
    load_s = time.perf_counter() - t
    completions, columns = make_batch()
    texts = [c[0]["content"] for c in completions]
    tokens = [len(ids) for ids in model.tokenizer(texts, verbose=False)["input_ids"]]
    print(
        f"MiniLM on {args.device} (torch threads {torch.get_num_threads()}), loaded in {load_s:.1f} s; "
        f"batch: {len(completions)} completions, {statistics.mean(tokens):.0f} tokens on average "
        f"(MiniLM word pieces), {len(set(columns['rationale']))} rationales"
    )

    score_batch(completions, columns)  # warm-up
    runs = [score_batch(completions, columns) for _ in range(args.repeat)]
    per = {name: statistics.median(r[name] for r in runs) for name in rewards.JUDO_REWARDS}
    totals = [sum(r.values()) for r in runs]
    total = statistics.median(totals)
    for name, seconds in per.items():
        print(f"  {name:18s} {seconds * 1000:9.1f} ms")
    thinks = [p.think for p in map(rewards._parse_text, texts) if p.think and p.think_closed]
    encoded = thinks + sorted(set(columns["rationale"]))
    lengths = [
        min(len(ids), model.max_seq_length) for ids in model.tokenizer(encoded, verbose=False)["input_ids"]
    ]
    pieces = sum(lengths)
    print(
        f"  (domain_reward encodes {len(encoded)} texts, {pieces} word pieces: "
        f"{pieces / per['domain_reward']:,.0f} word pieces/s)"
    )
    floor = None
    if model.device.type == "cpu":
        work, rate = encode_gflop(model[0].auto_model.config, lengths), matmul_gflops()
        floor = work / rate
        print(
            f"  (MiniLM work {work:.0f} GFLOP; best fp32 matmul here {rate:.0f} GFLOP/s -> floor {floor:.2f} s; "
            f"measured {work / per['domain_reward']:.0f} GFLOP/s, {floor / per['domain_reward']:.0%} of the floor rate)"
        )
    verdict = "ok" if total < TARGET_S else "SLOW"
    print(
        f"  {'total':18s} {total * 1000:9.1f} ms  (median of {args.repeat}; target < {TARGET_S:g} s, {verdict})"
    )
    if floor is not None and floor > TARGET_S:
        print(
            f"  the target is below this CPU's floor ({floor:.2f} s) for exact fp32 MiniLM: only a GPU "
            f"(--device cuda, where training runs it) can meet it"
        )

    share = rank_share()
    part = {k: v[:share] for k, v in columns.items()}
    rank_s = statistics.median(
        sum(score_batch(completions[:share], part).values()) for _ in range(args.repeat)
    )
    print(
        f"  per rank in the 4-GPU stage-3 recipe: {share} of the {len(completions)} completions "
        f"(each rank scores only its own): {rank_s * 1000:.1f} ms"
    )
    load = os.getloadavg()
    print(f"load average (1/5/15 min) {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    if total >= TARGET_S:
        print(f"target missed: 128 completions scored in {total:.2f} s (target < {TARGET_S:g} s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
