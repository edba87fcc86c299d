"""`judo inspect QUERY TEMPLATE [TEMPLATE ...] --question ... [--options ...] [--engine ID]`: one inspection.

Streams the engine's output as it is generated, then prints the answer, the seg cells and, with
--record, writes the same inspection record the app offers for download. Several templates are the
comparator's bank of golden samples (the first is the one a language-model engine is shown);
--sensitivity and --false-alarm-rate set the comparator's threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from judo.engines import ConfigError, InspectionRequest, build_engines, default_engine, load_config
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judo inspect", description=__doc__.splitlines()[0])
    parser.add_argument("query", help="query image")
    parser.add_argument(
        "templates", nargs="+", metavar="template", help="normal template image(s) of the same product"
    )
    parser.add_argument("--question", required=True)
    parser.add_argument(
        "--options", default="", help="options, one per line or ';'-separated, e.g. 'A. Yes.;B. No.'"
    )
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
    try:
        options = parse_options(args.options.replace(";", "\n"))
        query = load_image(args.query)
        request = InspectionRequest(
            query,
            _templates(args.templates),
            args.question,
            options,
            category=args.category,
            sensitivity=args.sensitivity,
            false_alarm_rate=args.false_alarm_rate,
        )
        config = load_config(args.config)
        if args.engine:
            config.engines = [config.engine(args.engine)]
    except (InputError, ImageInputError, ConfigError, ValueError) as err:
        print(f"judo inspect: {err}", file=sys.stderr)
        return 2
    except KeyError:
        print(f"judo inspect: unknown engine {args.engine!r}", file=sys.stderr)
        return 2
    engines = build_engines(config)
    engine = default_engine(engines, args.engine or config.default_engine)
    if engine is None:
        reasons = "; ".join(f"{e.label}: {e.reason}" for e in engines if not e.available)
        print(f"judo inspect: no engine can run ({reasons})", file=sys.stderr)
        return 1
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
