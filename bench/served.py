"""Served engines against the test server (tests/openai_server.py, the tiny model on CPU): `judo eval
--backend openai` questions/s at concurrency 1, 4 and 8 next to the in-process backend, and the served
engine's cost per streamed token next to the in-process engine, all in one run.

What the ratios mean here: the test server generates with `transformers` on the same 2 shared cores
as the client, ``--parallel`` generations at a time in threads (the GIL and the cores bound what
concurrency can win: this measures that the client side adds no serialisation and no overhead, not
what vLLM's continuous batching gains on a GPU; bench/served_gpu.py measures that). Rounds are
interleaved and the best round of each setting is reported.

Targets (exit 1 naming the one missed):
- concurrency must not cost throughput: q/s at concurrency 4 and 8 >= 0.9x concurrency 1;
- the served path agrees with the in-process one: the same records (raw text) for every question;
- overhead per streamed token (HTTP, SSE, JSON, the client) <= 2 ms over the in-process engine.

    .venv/bin/python bench/served.py [--questions 24] [--rounds 2] [--max-new-tokens 16] [--parallel 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests/openai_server.py

CONCURRENCY = (1, 4, 8)
MIN_CONCURRENCY_RATIO = 0.9
MAX_OVERHEAD_MS_PER_TOKEN = 2.0


def eval_args(root: Path, out: Path, extra: list[str], questions: int, max_new: int):
    from judo.evaluate.run import build_parser

    base = ["--mmad-root", str(root), "--out", str(out), "--limit", str(questions)]
    return build_parser().parse_args([*base, "--max-new-tokens", str(max_new), "--no-progress", *extra])


def eval_rate(args, loaded=None) -> tuple[float, list[str]]:
    from judo.evaluate.records import read_records
    from judo.evaluate.run import run

    t0 = time.perf_counter()
    result = run(args, loaded)
    wall = time.perf_counter() - t0
    return result.asked / wall, [r.raw for r in read_records([args.out])]


def token_costs(
    server, model, processor, lengths: tuple[int, int], repeats: int
) -> dict[str, dict[str, float]]:
    """Per engine: ms per streamed token (the slope between two answer lengths, so the one-off cost of a
    request does not hide in it) and ms per request (the intercept: prompt, images, HTTP set-up)."""
    from judo.engines.base import InspectionRequest
    from judo.engines.qwen import QwenEngine
    from judo.engines.served import ServedEngine
    from judo.generation import decoding
    from judo.openai_api import Endpoint
    from tests.noise import noise

    request = InspectionRequest(noise(0), noise(1), "Is there any defect?", {"A": "Yes.", "B": "No."})
    best: dict[tuple[str, int], float] = {}
    counts: dict[tuple[str, int], int] = {}
    for _ in range(repeats):
        for n in lengths:
            settings = decoding(max_new_tokens=n)
            engines = {
                "in-process": QwenEngine("local", "Local", model, processor, defaults=settings),
                "served": ServedEngine(
                    "served", "Served", Endpoint(server.base_url), server.model_name, defaults=settings
                ),
            }
            for name, engine in engines.items():
                t0 = time.perf_counter()
                final = list(engine.stream(request))[-1]
                wall = 1000 * (time.perf_counter() - t0)
                if final.error:
                    raise SystemExit(f"{name} failed: {final.error}")
                counts[(name, n)] = final.meta["new_tokens"]
                best[(name, n)] = min(best.get((name, n), wall), wall)
    if any(counts[("served", n)] != counts[("in-process", n)] for n in lengths):
        raise SystemExit(f"the two engines generated different token counts: {counts}")
    out = {}
    for name in ("in-process", "served"):
        (n1, n2) = (counts[(name, n)] for n in lengths)
        slope = (best[(name, lengths[1])] - best[(name, lengths[0])]) / (n2 - n1)
        out[name] = {
            "token_ms": slope,
            "request_ms": best[(name, lengths[0])] - slope * n1,
            "tokens": (n1, n2),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--questions", type=int, default=24)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument(
        "--stream-tokens", default="16,112", help="the two answer lengths of the per-token measurement"
    )
    p.add_argument("--parallel", type=int, default=8, help="generations the test server runs at once")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from judo.models import load_model, load_processor
    from judo.synthetic import make_mmad_root
    from judo.synthetic.tiny_model import build_tiny
    from tests.openai_server import OpenAIServer

    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = build_tiny(tmp / "tiny", seed=0)
        root = make_mmad_root(tmp / "MMAD", seed=0)
        model, processor = load_model(ckpt, device="cpu"), load_processor(ckpt)
        load_before = os.getloadavg()
        with OpenAIServer(ckpt, model=model, processor=processor, parallel=args.parallel) as server:
            rates: dict[str, list[float]] = {}
            raws: dict[str, list[str]] = {}
            n = 0
            for _ in range(args.rounds):
                settings = [("in-process", ["--checkpoint", str(ckpt), "--device", "cpu"])]
                settings += [
                    (
                        f"openai c={c}",
                        [
                            "--backend",
                            "openai",
                            "--base-url",
                            server.base_url,
                            "--model",
                            server.model_name,
                            "--concurrency",
                            str(c),
                        ],
                    )
                    for c in CONCURRENCY
                ]
                for name, extra in settings:
                    n += 1
                    out = tmp / f"run{n}.jsonl"
                    rate, raw = eval_rate(
                        eval_args(root, out, extra, args.questions, args.max_new_tokens),
                        (model, processor) if name == "in-process" else None,
                    )
                    rates.setdefault(name, []).append(rate)
                    raws[name] = raw
            lengths = tuple(int(x) for x in args.stream_tokens.split(","))
            costs = token_costs(server, model, processor, lengths, repeats=3)
        load_after = os.getloadavg()

    print(
        f"{args.questions} questions, {args.max_new_tokens} new tokens max, greedy, best of {args.rounds} "
        f"interleaved rounds; test server: {args.parallel} generations at once; load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f} on {os.cpu_count()} cores"
    )
    base = max(rates["openai c=1"])
    print("backend          q/s   x c=1   (all rounds)")
    for name, values in rates.items():
        best = max(values)
        print(f"{name:<14} {best:6.2f}  {best / base:5.2f}   ({', '.join(f'{v:.2f}' for v in values)})")
    for c in CONCURRENCY[1:]:
        ratio = max(rates[f"openai c={c}"]) / base
        if ratio < MIN_CONCURRENCY_RATIO:
            failures.append(
                f"concurrency {c}: {ratio:.2f}x of concurrency 1 (target >= {MIN_CONCURRENCY_RATIO})"
            )
    if any(raw != raws["in-process"] for raw in raws.values()):
        failures.append("the served records differ from the in-process ones")
    else:
        print(f"records: every backend wrote the same raw text for all {args.questions} questions")

    local, served = costs["in-process"], costs["served"]
    overhead = served["token_ms"] - local["token_ms"]
    print(
        f"streaming, {local['tokens'][0]} vs {local['tokens'][1]} tokens, best of 3: per token in-process "
        f"{local['token_ms']:.2f} ms, served {served['token_ms']:.2f} ms, overhead {overhead:+.2f} ms/token; "
        f"per request in-process {local['request_ms']:.0f} ms, served {served['request_ms']:.0f} ms "
        f"(overhead {served['request_ms'] - local['request_ms']:+.0f} ms: PNG data URLs, HTTP, the server's "
        "own decoding of the images)"
    )
    if overhead > MAX_OVERHEAD_MS_PER_TOKEN:
        failures.append(f"served overhead {overhead:.2f} ms/token (target <= {MAX_OVERHEAD_MS_PER_TOKEN})")
    for f in failures:
        print(f"TARGET MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
