"""`judo inspect QUERY TEMPLATE --question ... [--options ...] [--engine ID]`: one inspection in the terminal.

Streams the engine's output as it is generated, then prints the answer, the seg cells and, with
--record, writes the same inspection record the app offers for download.
"""

from __future__ import annotations

import argparse
import json
import sys

from judo.engines import ConfigError, InspectionRequest, build_engines, default_engine, load_config
from judo.grid import format_seg
from judo.images import ImageInputError, load_image
from judo.inputs import InputError, parse_options


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="judo inspect", description=__doc__.splitlines()[0])
    parser.add_argument("query", help="query image")
    parser.add_argument("template", help="normal template image of the same product")
    parser.add_argument("--question", required=True)
    parser.add_argument("--options", default="", help="options, one per line or ';'-separated, e.g. 'A. Yes.;B. No.'")
    parser.add_argument("--engine", help="engine id from the config (default: the app's default engine)")
    parser.add_argument("--category", help="product category (oracle domain knowledge for RAG engines)")
    parser.add_argument("--config", help="YAML file (default: $JUDO_CONFIG or configs/app.yaml)")
    parser.add_argument("--record", help="write the inspection record JSON here")
    args = parser.parse_args(argv)
    try:
        options = parse_options(args.options.replace(";", "\n"))
        query, template = load_image(args.query), load_image(args.template)
        request = InspectionRequest(query, template, args.question, options, category=args.category)
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
        from judo.ui_record import build_record

        with open(args.record, "w", encoding="utf-8") as f:
            json.dump(build_record(request, last, engine_label=engine.label), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
