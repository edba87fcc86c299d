"""`judo inspect --folder DIR|ZIP TEMPLATE [TEMPLATE ...] --out OUT`: the batch form of `judo inspect`
(options and exit status: judo.inspect_cli)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from judo.batch.parts import BatchInputError, discover
from judo.batch.report import export, load_results
from judo.batch.run import (
    DEFAULT_OPTIONS,
    DEFAULT_QUESTION,
    BatchResult,
    BatchSpec,
    run_batch,
    skipped_results,
)
from judo.engines import ConfigError, load_config
from judo.images import ImageInputError
from judo.inputs import InputError, parse_options
from judo.jsonl import JsonlError


def describe(result: BatchResult) -> str:
    """One line for a finished part."""
    if result.verdict == "skipped":
        return f"{result.part}: skipped ({result.error})"
    bits = [result.verdict]
    if result.score is not None:
        bits.append(f"score {result.score:.3f}")
    bits += [f"{result.cells} cells", f"{result.seconds:.2f} s"]
    if result.answer:
        bits.append(f"answer {result.answer}")
    if result.resumed:
        bits.append("(done before)")
    line = f"{result.part}: " + ", ".join(bits)
    return f"{line}; error: {result.error}" if result.error else line


def summary(results: list[BatchResult], seconds: float) -> str:
    counts = Counter(r.verdict for r in results)
    inspected = sum(1 for r in results if not r.resumed and r.verdict not in {"skipped", "error"})
    rate = f", {inspected / seconds:.2f} parts/s" if inspected and seconds > 0 else ""
    return f"{len(results)} parts: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()) + rate


def run_folder(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from judo.inspect_cli import _templates, choose_engine

    if args.folder and args.zip:
        parser.error("give --folder or --zip, not both")
    if not args.out:
        parser.error("--out is required with --folder/--zip (the batch's output folder)")
    source = args.folder or args.zip
    try:
        if args.zip and not Path(args.zip).is_file():
            raise BatchInputError(f"{args.zip} is not a file")
        found = discover(source, recursive=args.recursive)
        options = parse_options(args.options.replace(";", "\n")) if args.options is not None else None
        question = args.question or DEFAULT_QUESTION
        if args.question is None and args.options is None:
            options = dict(DEFAULT_OPTIONS)
        templates = _templates(args.images)
        config = load_config(args.config)
    except (InputError, ImageInputError, BatchInputError, ConfigError, ValueError) as err:
        print(f"judo inspect: {err}", file=sys.stderr)
        return 2
    engine, status = choose_engine(config, args.engine)
    if engine is None:
        return status
    try:
        spec = BatchSpec(
            engine,
            templates,
            Path(args.out),
            question=question,
            options=options,
            template_names=[Path(p).name for p in args.images],
            category=args.category,
            sensitivity=args.sensitivity,
            false_alarm_rate=args.false_alarm_rate,
            heatmap=args.heatmap,
        )
    except (InputError, ValueError) as err:
        print(f"judo inspect: {err}", file=sys.stderr)
        return 2
    for s in found.skipped:
        print(f"{s.name}: skipped ({s.reason})", file=sys.stderr)
    print(f"[{engine.label}] {len(found.parts)} parts -> {spec.out}", file=sys.stderr)
    stop, results, interrupted = threading.Event(), [], False
    t0 = time.perf_counter()
    try:
        for progress in run_batch(found, spec, stop):
            results.append(progress.result)
            print(f"[{progress.done}/{progress.total}] {describe(progress.result)}", flush=True)
    except KeyboardInterrupt:
        stop.set()
        interrupted = True
        known = {r.part for r in results}
        results += [r for r in load_results(spec.out) if r.part not in known]
    except (JsonlError, OSError) as err:
        print(f"judo inspect: {err}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - t0
    results += skipped_results(found)
    info = {
        "engine": engine.label,
        "question": question,
        "options": "; ".join(f"{k}. {v}" for k, v in (options or {}).items()),
        "golden samples": ", ".join(Path(p).name for p in args.images),
        "sensitivity": args.sensitivity or 1.0,
        "source": Path(source).name,
    }
    exports = export(results, spec.out, info)
    print(summary(results, elapsed))
    print(f"wrote {exports.csv}, {exports.records}, {exports.html}")
    if interrupted:
        print("interrupted: the finished parts are kept; rerun to do the rest", file=sys.stderr)
        return 130
    unread = [
        r for r in results if r.verdict in {"error", "skipped"} and r.part in {p.name for p in found.parts}
    ]
    return 1 if unread else 0
