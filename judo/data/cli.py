"""`judo data stage1|stage2|stage3 ...`: build the training data of the three JUDO stages.

    judo data stage1 --mmad /data/MMAD --out data/stage1 [--realiad /data/Real-IAD/realiad_1024]
    judo data stage2 --mmad /data/MMAD --out data/stage2
    judo data stage3 --mmad /data/MMAD --stage1 data/stage1 --out data/stage3

The teacher is any OpenAI-compatible endpoint (`--base-url`, `--model`, key from `--api-key-env`).
Every command resumes when rerun, `--dry-run` prints the exact requests without sending them, and
`--limit N` builds only the first N items. Exit codes: 0 done, 1 some items failed (rerun to retry
them), 2 bad input, 3 the teacher refused the credentials, 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from judo.data.build import BuildSummary, DataBuildError
from judo.data.realiad import RealIADError
from judo.data.teacher import TeacherAuthError, TeacherClient, TeacherConfig
from judo.images import ImageInputError
from judo.jsonl import JsonlError
from judo.mmad import MMADError

DRY_RUN_DEFAULT_LIMIT = 2


def _common(p: argparse.ArgumentParser, *, out_help: str) -> None:
    p.add_argument("--mmad", required=True, metavar="ROOT", help="MMAD root (the folder holding mmad.json)")
    p.add_argument("--out", required=True, metavar="DIR", help=out_help)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="build only the first N items")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=f"print the exact teacher requests (images shown as data-URL sizes) and exit; "
        f"covers --limit items ({DRY_RUN_DEFAULT_LIMIT} when not given)",
    )
    t = p.add_argument_group("teacher (any OpenAI-compatible chat-completions endpoint)")
    t.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
        help="API root, e.g. http://localhost:8000/v1 for vLLM (default: $OPENAI_BASE_URL or OpenAI)",
    )
    t.add_argument("--model", default="gpt-4o", help="teacher model name (the paper used gpt-4o)")
    t.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (unset is fine for local servers)",
    )
    t.add_argument("--max-concurrency", type=int, default=8, help="requests in flight at once")
    t.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    t.add_argument("--max-retries", type=int, default=6, help="retries on 429/5xx/timeouts")
    t.add_argument("--temperature", type=float, default=0.7)
    t.add_argument("--max-tokens", type=int, default=2048)
    p.add_argument("-v", "--verbose", action="store_true", help="log every skipped item and repair")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="judo data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="stage", required=True)

    s1 = sub.add_parser("stage1", help="juxtaposed seg + comparative explanation (SFT)")
    _common(s1, out_help="output folder (data.jsonl, images/, manifest.json, ...)")
    s1.add_argument("--seed", type=int, default=0)
    s1.add_argument(
        "--per-defect", type=int, default=1, help="anomalous images per (dataset, category, defect)"
    )
    s1.add_argument(
        "--realiad",
        metavar="ROOT",
        default=None,
        help="optional Real-IAD root (<category>/NG/<defect>/<sample>/<img>.jpg + .png mask, "
        "<category>/OK/... normals)",
    )
    s1.add_argument("--realiad-per-category", type=int, default=10)
    s1.add_argument(
        "--skip-bad",
        action="store_true",
        help="leave out items with missing files or mismatched masks instead of stopping",
    )
    s1.add_argument(
        "--teacher-max-side", type=int, default=1024, help="longest image side sent to the teacher"
    )

    s2 = sub.add_parser("stage2", help="domain-knowledge Q&A with paraphrases (SFT)")
    _common(s2, out_help="output folder")
    s2.add_argument("--seed", type=int, default=0)
    s2.add_argument("--count", type=int, default=30, help="unique Q&A pairs per snippet")
    s2.add_argument("--variants", type=int, default=2, help="paraphrases per pair")
    s2.add_argument("--paraphrase-chunk", type=int, default=10, help="pairs per paraphrase request")
    s2.add_argument("--repairs", type=int, default=1, help="repair requests after an unusable JSON reply")

    s3 = sub.add_parser("stage3", help="MMAD questions + pseudo-domain rationales (GRPO)")
    _common(s3, out_help="output folder")
    s3.add_argument("--stage1", required=True, metavar="DIR", help="the stage-1 output folder")
    s3.add_argument("--teacher-max-side", type=int, default=1024)
    return ap


def _client(args: argparse.Namespace) -> TeacherClient:
    return TeacherClient(
        TeacherConfig(
            base_url=args.base_url,
            model=args.model,
            api_key_env=args.api_key_env,
            max_concurrency=args.max_concurrency,
            timeout_s=args.timeout,
            max_retries=args.max_retries,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
        )
    )


def _run(args: argparse.Namespace, client: TeacherClient) -> BuildSummary | None:
    limit = args.limit if args.limit is not None or not args.dry_run else DRY_RUN_DEFAULT_LIMIT
    if args.stage == "stage1":
        from judo.data.stage1 import Stage1Options, build_stage1

        opts = Stage1Options(
            args.mmad,
            args.out,
            seed=args.seed,
            per_defect=args.per_defect,
            realiad_root=args.realiad,
            realiad_per_category=args.realiad_per_category,
            limit=limit,
            skip_bad=args.skip_bad,
            teacher_max_side=args.teacher_max_side,
        )
        return build_stage1(opts, client, dry_run=args.dry_run)
    if args.stage == "stage2":
        from judo.data.stage2 import Stage2Options, build_stage2

        opts = Stage2Options(
            args.mmad,
            args.out,
            seed=args.seed,
            count=args.count,
            variants=args.variants,
            paraphrase_chunk=args.paraphrase_chunk,
            repairs=args.repairs,
            limit=limit,
        )
        return build_stage2(opts, client, dry_run=args.dry_run)
    from judo.data.stage3 import Stage3Options, build_stage3

    opts = Stage3Options(
        args.mmad, args.stage1, args.out, limit=limit, teacher_max_side=args.teacher_max_side
    )
    return build_stage3(opts, client, dry_run=args.dry_run)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        client = _client(args)
    except ValueError as err:
        print(f"judo data: {err}", file=sys.stderr)
        return 2
    try:
        with client:
            summary = _run(args, client)
    except TeacherAuthError as err:
        print(f"judo data: {err}", file=sys.stderr)
        return 3
    except (DataBuildError, MMADError, RealIADError, JsonlError, ImageInputError, ValueError) as err:
        print(f"judo data: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("judo data: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if summary is None:  # dry run
        return 0
    for note in summary.repaired:
        print(f"judo data: repaired output: {note}", file=sys.stderr)
    print(f"judo data {args.stage}: {summary.describe()} -> {args.out}")
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
