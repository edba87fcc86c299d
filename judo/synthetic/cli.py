"""`judo synth OUT_DIR [--seed N] [--size PX] [--categories a,b]`: write a synthetic MMAD root."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from judo.synthetic.catalog import DEFAULT_CATEGORIES, SPECS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judo synth",
        description="Write a small synthetic dataset in MMAD's exact layout (mmad.json, "
        "domain_knowledge.json, images, masks, templates) for trying the evaluator and the app.",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write the MMAD root into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument(
        "--size",
        type=int,
        default=None,
        metavar="PX",
        help="square picture size in pixels (default: each category's own, 256-320)",
    )
    parser.add_argument(
        "--categories",
        default=",".join(DEFAULT_CATEGORIES),
        help=f"comma-separated categories from: {', '.join(SPECS)}",
    )
    parser.add_argument("--per-defect", type=int, default=2, help="images per defect type")
    parser.add_argument("--normals", type=int, default=3, help="normal query images per category")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from judo.synthetic.layout import make_mmad_root

    names = [c.strip() for c in args.categories.split(",") if c.strip()]
    if args.size is not None and not 32 <= args.size <= 2048:
        print(f"error: --size must be between 32 and 2048, got {args.size}", file=sys.stderr)
        return 2
    if args.out_dir.is_dir() and not (args.out_dir / "mmad.json").exists() and any(args.out_dir.iterdir()):
        print(
            f"error: {args.out_dir} exists and is not an MMAD root; choose an empty folder", file=sys.stderr
        )
        return 2
    start = time.perf_counter()
    try:
        root = make_mmad_root(
            args.out_dir,
            seed=args.seed,
            categories=names,
            per_defect=args.per_defect,
            normals=args.normals,
            size=args.size,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = [p for p in root.rglob("*") if p.is_file()]
    megabytes = sum(p.stat().st_size for p in files) / 2**20
    print(
        f"wrote {root}: {len(files)} files, {megabytes:.1f} MB, {len(names)} categories "
        f"in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
