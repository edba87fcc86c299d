"""`judo inspect QUERY TEMPLATE [TEMPLATE ...] --question ... [--options ...] [--engine ID]`: one inspection.

Streams the engine's output as it is generated, then prints the answer, the seg cells and, with
--record, writes the same inspection record the app offers for download. Several templates are the
comparator's bank of golden samples (the first is the one a language-model engine is shown);
--sensitivity and --false-alarm-rate set the comparator's threshold.

`judo inspect --folder DIR|ZIP TEMPLATE [TEMPLATE ...] --out OUT`: a batch. Every image in DIR (not
its subfolders, unless --recursive) or in the zip is inspected against the templates (the golden
samples), one line per part as it finishes, then a summary; OUT gets results.jsonl (the records, one
line per part), the overlays, results.csv, records.json and report.html. A rerun with the same OUT
does only the parts not done yet. The question defaults to anomaly detection ("Is there any defect in
the object?" A. Yes. B. No.). Exit status: 0 every part was inspected (whatever the verdicts), 1 a
part failed or could not be read, or no engine can run, 2 bad arguments, 130 interrupted (Ctrl-C:
what finished is kept).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from judo.engines import ConfigError, Engine, InspectionRequest, build_engines, default_engine, load_config
from judo.grid import format_seg
from judo.images import ImageInputError, load_image
from judo.inputs import InputError, parse_options


def _templates(paths: list[str]) -> list:
    """The readable templates; an unreadable one among several is skipped with a warning."""
    if len(paths) == 1:
        return [load_image(paths[0])]
    images = []
    for path in paths:
        try:
            images.append(load_image(path))
            images[-1].info["name"] = os.path.basename(path)  # named in the bank's warnings
        except ImageInputError as err:
            print(f"warning: template skipped: {err}", file=sys.stderr)
    if not images:
        raise ImageInputError("none of the templates is a readable image")
    return images


def choose_engine(config, engine_id: str | None) -> tuple[Engine | None, int]:
    """The engine to run (built from the config) or None and the exit status, the reason printed."""
    if engine_id:
        try:
            config.engines = [config.engine(engine_id)]
        except KeyError:
            print(f"judo inspect: unknown engine {engine_id!r}", file=sys.stderr)
            return None, 2
    engines = build_engines(config)
    engine = default_engine(engines, engine_id or config.default_engine)
    if engine is None:
        reasons = "; ".join(f"{e.label}: {e.reason}" for e in engines if not e.available)
        print(f"judo inspect: no engine can run ({reasons})", file=sys.stderr)
        return None, 1
    return engine, 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judo inspect", description=__doc__.splitlines()[0])
    parser.add_argument(
        "images",
        nargs="+",
        metavar="image",
        help="QUERY TEMPLATE [TEMPLATE ...]; with --folder: TEMPLATE [TEMPLATE ...] (the golden samples)",
    )
    parser.add_argument("--question", help="required for one inspection; --folder: anomaly detection")
    parser.add_argument(
        "--options", default=None, help="options, one per line or ';'-separated, e.g. 'A. Yes.;B. No.'"
    )
    parser.add_argument("--folder", help="batch: inspect every image in this folder or .zip")
    parser.add_argument("--zip", help="batch: inspect every image in this zip archive")
    parser.add_argument("--recursive", action="store_true", help="--folder: include its subfolders")
    parser.add_argument("--out", help="batch: output folder (results, overlays, CSV, HTML report)")
    parser.add_argument("--heatmap", action="store_true", help="batch: also save comparator heat maps")
    parser.add_argument("--engine", help="engine id from the config (default: the app's default engine)")
    parser.add_argument("--category", help="product category (oracle domain knowledge for RAG engines)")
    parser.add_argument("--config", help="YAML file (default: $JUDO_CONFIG or configs/app.yaml)")
    parser.add_argument("--record", help="write the inspection record JSON here")
    parser.add_argument("--sensitivity", type=float, help="comparator: threshold divided by this (default 1)")
    parser.add_argument(
        "--false-alarm-rate",
        type=float,
        help="comparator, 3+ templates: false cells per good part (default 0.05)",
    )
    args = parser.parse_args(argv)
    if args.folder or args.zip:
        from judo.batch.cli import run_folder

        return run_folder(args, parser)
    if len(args.images) < 2:
        parser.error("give a query image and at least one template (or --folder DIR for a batch)")
    if args.question is None:
        parser.error("--question is required")
    try:
        options = parse_options((args.options or "").replace(";", "\n"))
        query = load_image(args.images[0])
        request = InspectionRequest(
            query,
            _templates(args.images[1:]),
            args.question,
            options,
            category=args.category,
            sensitivity=args.sensitivity,
            false_alarm_rate=args.false_alarm_rate,
        )
        config = load_config(args.config)
    except (InputError, ImageInputError, ConfigError, ValueError) as err:
        print(f"judo inspect: {err}", file=sys.stderr)
        return 2
    engine, status = choose_engine(config, args.engine)
    if engine is None:
        return status
    print(f"[{engine.label}]", file=sys.stderr)
    shown, last = 0, None
    for update in engine.run(request):
        print(update.text[shown:], end="", flush=True)
        shown, last = len(update.text), update
    print()
    if last is None or last.error:
        print(f"error: {last.error if last else 'no output'}", file=sys.stderr)
        return 1
    for warning in last.meta.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    answer = last.answer or "-"
    print(f"answer: {answer}" + (f" ({options[answer]})" if options and answer in options else ""))
    print(f"cells: {format_seg(last.cells)}")
    if args.record:
        from judo.record import build_record

        with open(args.record, "w", encoding="utf-8") as f:
            json.dump(build_record(request, last, engine_label=engine.label), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
