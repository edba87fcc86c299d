"""`judo score RECORDS...`: the paper's table from eval records (ours or MMAD's answer JSON), both modes.

judo score runs/judo.jsonl
judo score 'runs/judo.rank*.jsonl' --mmad-root /data/MMAD --json scores.json --csv scores.csv
judo score result/answers_1_shot_Qwen2.5-VL-7B-Instruct.json --duplicates keep
judo score runs/judo.jsonl --plot runs/judo.png       (several runs in one figure: `judo compare`)
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from judo.evaluate.records import DUPLICATE_POLICIES, DuplicateRecordError, RecordFormatError, read_records
from judo.evaluate.report import MODE_TITLES, csv_table, json_tables, markdown_seg, markdown_table
from judo.evaluate.score import SegScores, score_both, score_seg


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="judo score", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "records", nargs="+", help="JSONL from `judo eval` and/or MMAD answer JSON files (globs allowed)"
    )
    p.add_argument("--mmad-root", type=Path, help="MMAD root: enables seg F1/IoU against the masks")
    p.add_argument("--json", type=Path, dest="json_out", help="write both tables as JSON here")
    p.add_argument("--csv", type=Path, dest="csv_out", help="write both tables as CSV here")
    p.add_argument("--markdown", type=Path, dest="md_out", help="write the printed report here too")
    p.add_argument(
        "--duplicates",
        choices=DUPLICATE_POLICIES,
        default="error",
        help="a question seen twice: error (default), keep first/last copy, or keep all (MMAD's scorer)",
    )
    p.add_argument("--plot", type=Path, help="write a per-subtask bar chart (PNG) of both modes here")
    p.add_argument("--digits", type=int, default=2, help="decimals in the markdown tables")
    return p


def render(tables, seg: SegScores | None, digits: int = 2) -> str:
    parts = [markdown_table(t, MODE_TITLES[mode], digits) for mode, t in tables.items()]
    head = tables["official"].headline, tables["strict"].headline
    parts.insert(0, f"Headline Average: {head[0]:.2f} (MMAD-official), {head[1]:.2f} (strict)\n")
    if seg is not None:
        parts.append("### Segmentation (beyond MMAD)\n\n" + markdown_seg(seg, digits))
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            records = read_records(args.records, duplicates=args.duplicates)
        for w in caught:
            print(f"warning: {w.message}", file=sys.stderr)
    except (FileNotFoundError, RecordFormatError, DuplicateRecordError) as exc:
        print(f"judo score: {exc}", file=sys.stderr)
        return 2
    if not records:
        print("judo score: the record files hold no records", file=sys.stderr)
        return 2

    tables = score_both(records)
    seg = None
    has_seg = any(r.cells is not None for r in records)
    if args.mmad_root is not None and not has_seg:
        print("note: no answer has a <seg> block (plain-letter prompt?): no seg metrics", file=sys.stderr)
    if args.mmad_root is not None and has_seg:
        from judo.evaluate.truth import load_truth_cells
        from judo.mmad import MMADError

        try:
            truth, problems = load_truth_cells(args.mmad_root, [r.key for r in records])
        except (MMADError, FileNotFoundError) as exc:
            print(f"judo score: {exc}", file=sys.stderr)
            return 2
        for msg in problems[:20]:
            print(f"warning: {msg}", file=sys.stderr)
        if len(problems) > 20:
            print(f"warning: ... and {len(problems) - 20} more mask problems", file=sys.stderr)
        seg = score_seg(records, truth)

    text = render(tables, seg, args.digits)
    print(text)
    if args.md_out:
        args.md_out.parent.mkdir(parents=True, exist_ok=True)
        args.md_out.write_text(text, encoding="utf-8")
    if args.csv_out:
        args.csv_out.parent.mkdir(parents=True, exist_ok=True)
        args.csv_out.write_text(csv_table(tables), encoding="utf-8")
    if args.plot:
        from judo.evaluate.plots import subtask_bars

        subtask_bars({MODE_TITLES[m].split(" ")[0]: t for m, t in tables.items()}, args.plot)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(json_tables(tables, seg), indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
