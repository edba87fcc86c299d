"""`judo eval`: run one engine over an MMAD root with the official 1-shot protocol, one record per question.

    judo eval --mmad-root /data/MMAD --checkpoint ./checkpoints/judo-stage3 --out runs/judo.jsonl
    judo eval --mmad-root MMAD --checkpoint Qwen/Qwen2.5-VL-7B-Instruct --prompt mmad --rag --out base.jsonl
    accelerate launch --multi_gpu --num_processes 4 -m judo.evaluate.run --batch-size 16 <same options>
    torchrun --nproc_per_node 4 -m judo.evaluate.run --batch-size 16 <same options>
    judo eval --mmad-root /data/MMAD --engine comparator --out runs/comparator.jsonl
    judo eval --mmad-root MMAD --backend openai --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1 \
        --model org/judo-7b --concurrency 8 --out runs/judo.jsonl

With ``--backend openai`` the questions go to OpenAI-compatible servers (vLLM, SGLang, TGI) through
the served engine (`judo.engines.served`): each ``--base-url`` is a replica, ``--concurrency``
requests are in flight per replica, the prompt, greedy decoding and token budget are the same, and
every record names the backend (``extra.config.backend``) and the replica (``extra.base_url``).

Protocol: one question per call, no history, greedy; template `random_templates[0]` (`--template similar`,
`--shots K`), images re-sent each call. Re-running the same command resumes: questions already in the
output are not asked again, a torn last line from a killed run is cut off. Under `accelerate launch`
or torchrun (RANK / WORLD_SIZE set) every process asks its shard and writes `OUT.rankN.jsonl`; the
last process to finish merges them into OUT (`judo score 'OUT.rank*.jsonl'` works at any time).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judo.evaluate.records import EvalRecord, RecordWriter, iter_file, write_records
from judo.jsonl import JsonlError

if TYPE_CHECKING:
    from judo.engines.base import Engine, InspectionRequest, Update
from judo.evaluate.selection import (
    EvalItem,
    SelectionError,
    missing_files,
    read_manifest,
    select_items,
    shard,
)


@dataclass
class RunResult:
    """What a run did; `main` prints it, tests assert on it."""

    selected: int
    excluded: int
    skipped_missing: int
    already_done: int
    asked: int
    out: Path
    merged: bool


class EvalError(RuntimeError):
    """A run that cannot start (missing files, a resumed file written with other options, ...)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="judo eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--mmad-root", type=Path, required=True, help="folder with mmad.json and the images")
    p.add_argument("--out", type=Path, required=True, help="records file (JSONL); rerun to resume")
    p.add_argument("--engine", choices=("model", "comparator"), default="model")
    p.add_argument("--checkpoint", help="local folder or hub id of a Qwen2.5-VL checkpoint (engine model)")
    p.add_argument(
        "--backend",
        choices=("transformers", "openai"),
        default="transformers",
        help="transformers: the checkpoint in this process; openai: OpenAI-compatible server(s) (vLLM, SGLang, TGI)",
    )
    p.add_argument(
        "--base-url",
        action="append",
        dest="base_urls",
        metavar="URL",
        help="API root of a server, e.g. http://localhost:8000/v1; repeat for replicas (backend openai)",
    )
    p.add_argument("--model", help="the served model name (backend openai; default: --checkpoint)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight per --base-url (default 4)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable with the API key")
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a server may stay silent (backend openai)"
    )
    p.add_argument("--quantization", choices=("4bit", "8bit"), default=None)
    p.add_argument("--device", default=None, help="e.g. cuda:0 or cpu (default: best available)")
    p.add_argument(
        "--prompt",
        choices=("judo", "mmad", "think"),
        default="judo",
        help="judo: the <seg>/<think>/<answer> format; mmad: MMAD's plain letter prompt (base models); "
        "think: <think>/<answer> without seg",
    )
    p.add_argument(
        "--rag", action="store_true", help="MMAD's oracle domain knowledge of the category in the prompt"
    )
    p.add_argument("--knowledge", type=Path, help="domain_knowledge.json (default: the one in the MMAD root)")
    p.add_argument("--template", choices=("random", "similar"), default="random")
    p.add_argument("--shots", type=int, default=1, help="number of normal templates shown (default 1)")
    p.add_argument(
        "--templates",
        type=int,
        help="engine comparator: judge against a bank of the sample's random_templates[:K] (same as --shots K)",
    )
    p.add_argument("--datasets", nargs="+", help="e.g. DS-MVTec VisA")
    p.add_argument("--categories", nargs="+")
    p.add_argument("--types", nargs="+", help="question types or subtasks, e.g. 'Anomaly Detection'")
    p.add_argument("--limit", type=int, help="ask only the first N selected questions")
    p.add_argument(
        "--exclude", type=Path, help="manifest of MMAD keys to leave out (JSON list or one per line)"
    )
    p.add_argument(
        "--skip-missing", action="store_true", help="skip samples whose images are missing (counted)"
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="questions per generate call (default 1); backend openai: questions written per step "
        "(default 4 x concurrency x URLs)",
    )
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's choice, one per core); on a CPU shared with other work, "
        "1 avoids threads waiting on each other (answers do not depend on it)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _dist() -> tuple[int, int]:
    """RANK / WORLD_SIZE as set by `accelerate launch` or torchrun (1 process when absent)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def rank_path(out: Path, rank: int) -> Path:
    return out.with_name(f"{out.stem}.rank{rank}{out.suffix or '.jsonl'}")


def _shard_files(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f"{out.stem}.rank*{out.suffix or '.jsonl'}"))


def _read_quietly(path: Path) -> list[EvalRecord]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # another rank may be mid-write; its torn line is not ours to fix
        return list(iter_file(path)) if path.exists() else []


def run_config(args: argparse.Namespace) -> dict[str, Any]:
    """The options that change answers: a resumed file must have been written with the same ones."""
    if args.engine == "comparator":
        engine = {"engine": "comparator", "checkpoint": None, "prompt": None}
    else:
        engine = {
            "engine": "model",
            "checkpoint": args.checkpoint,
            "prompt": args.prompt,
            "quantization": args.quantization,
            "max_new_tokens": args.max_new_tokens,
        }
        if args.backend == "openai":  # the records say which backend produced them
            engine.update(backend="openai", checkpoint=args.model or args.checkpoint, quantization=None)
    return {**engine, "template": args.template, "shots": args.shots, "rag": bool(args.rag)}


def _check_resume(path: Path, existing: list[EvalRecord], config: dict[str, Any]) -> None:
    if not existing:
        return
    old = existing[0].extra.get("config")
    if old is None:
        return
    diff = {k: (old.get(k), config.get(k)) for k in {**old, **config} if old.get(k) != config.get(k)}
    if diff:
        shown = ", ".join(f"{k}: {a!r} in the file vs {b!r} now" for k, (a, b) in diff.items())
        raise EvalError(
            f"{path} was written with other options ({shown}); use another --out or the same options"
        )


def _knowledge(args: argparse.Namespace, mmad):
    if not args.rag:
        return None
    if args.knowledge is not None:
        from judo.mmad import load_knowledge

        return load_knowledge(args.knowledge)
    if mmad.knowledge is None:
        raise EvalError(
            f"--rag needs domain knowledge: no domain_knowledge.json in {mmad.root}; pass --knowledge PATH"
        )
    return mmad.knowledge


class ImageCache:
    """The images of the last few samples: MMAD asks several questions in a row about one picture and
    its template, and decoding (and, in `ModelAnswerer`, resizing) them once per question was waste."""

    def __init__(self, size: int = 8):
        from collections import OrderedDict

        self.size = size
        self._images: OrderedDict[Path, Any] = OrderedDict()

    def load(self, path: Path):
        from judo.images import load_image

        path = Path(path)
        if path in self._images:
            self._images.move_to_end(path)
        else:
            self._images[path] = load_image(path)
            if len(self._images) > self.size:
                self._images.popitem(last=False)
        return self._images[path]


def prepare(item: EvalItem, images: ImageCache | None = None) -> InspectionRequest:
    """One question as the engines take it (images through ``images`` when given, shared with earlier
    questions); the category and dataset let a RAG engine find MMAD's oracle knowledge."""
    from judo.engines.base import InspectionRequest
    from judo.images import load_image

    load = images.load if images is not None else load_image
    s = item.sample
    return InspectionRequest(
        query=load(s.image_path),
        template=[load(t) for t in item.templates],
        question=item.question.text,
        options=dict(item.question.options),
        category=s.category,
        dataset=s.dataset,
    )


def to_record(
    item: EvalItem,
    update: Update,
    latency: float,
    root: Path,
    config: dict[str, Any],
    batch_size: int,
    rank: int,
) -> EvalRecord:
    """One record from an engine's final update: the same answer and cells the app shows."""
    from judo.mmad import subtask_of

    options = dict(item.question.options)

    def rel(p: Path) -> str:
        try:
            return str(Path(p).relative_to(root))
        except ValueError:
            return str(p)

    return EvalRecord(
        key=item.sample.key,
        question_key=item.question_key,
        index=item.index,
        question=item.question.text,
        type=item.question.type,
        options=options,
        answer=item.question.answer,
        predicted=update.answer,
        raw=update.text,
        cells=sorted(update.cells) if update.meta.get("seg_present") else None,
        latency_s=round(latency, 4),
        engine=config.get("engine"),
        checkpoint=config.get("checkpoint"),
        prompt=config.get("prompt"),
        templates=[rel(t) for t in item.templates],
        extra={
            "subtask": subtask_of(item.question.type),
            "batch_size": batch_size,
            "rank": rank,
            "config": config,
            **({"base_url": update.meta["base_url"]} if update.meta.get("base_url") else {}),
        },
    )


def make_engine(args: argparse.Namespace, knowledge=None, loaded: tuple[Any, Any] | None = None) -> Engine:
    """The engine `judo eval` asks: the comparator, or a checkpoint (``loaded``: a model and processor
    already in memory) with the chosen prompt, MMAD's knowledge for --rag, greedy decoding."""
    from judo.engines.comparator import ComparatorEngine
    from judo.engines.qwen import QwenEngine
    from judo.engines.rag import KnowledgeBase
    from judo.generation import GenerationError, decoding

    if args.engine == "comparator":
        return ComparatorEngine()
    if args.backend == "openai":
        return _served_engine(args, knowledge)
    if not args.checkpoint:
        raise EvalError("--checkpoint is required with --engine model (a local folder or a hub id)")
    try:
        settings = decoding(max_new_tokens=args.max_new_tokens)  # MMAD's protocol: greedy
    except GenerationError as exc:
        raise EvalError(f"--max-new-tokens: {exc}") from exc
    if loaded is None:
        from judo.models import load_model, load_processor

        device = args.device
        rank, world = _dist()
        if device is None and world > 1:
            import torch

            if torch.cuda.is_available():
                device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank)) % torch.cuda.device_count()}"
        loaded = (
            load_model(args.checkpoint, quantization=args.quantization, device=device),
            load_processor(args.checkpoint),
        )
    model, processor = loaded
    return QwenEngine(
        "model",
        str(args.checkpoint),
        model,
        processor,
        knowledge=KnowledgeBase(knowledge) if knowledge is not None else None,
        prompt_style=args.prompt,
        defaults=settings,
        checkpoint=str(args.checkpoint),
    )


def _served_engine(args: argparse.Namespace, knowledge=None) -> Engine:
    """`--backend openai`: the served engine over every --base-url, checked before the first question."""
    from judo.engines.rag import KnowledgeBase
    from judo.engines.served import ServedEngine
    from judo.generation import GenerationError, decoding
    from judo.openai_api import Endpoint

    model = args.model or args.checkpoint
    if not model:
        raise EvalError("--backend openai needs --model (the served model name) or --checkpoint")
    if not args.base_urls:
        raise EvalError("--backend openai needs at least one --base-url (e.g. http://localhost:8000/v1)")
    if args.concurrency < 1:
        raise EvalError(f"--concurrency must be >= 1, got {args.concurrency}")
    try:
        settings = decoding(max_new_tokens=args.max_new_tokens)  # MMAD's protocol: greedy
        endpoints = [
            Endpoint(
                url, api_key_env=args.api_key_env, timeout_s=args.timeout, max_connections=args.concurrency
            )
            for url in dict.fromkeys(args.base_urls)
        ]
    except (GenerationError, ValueError) as exc:
        raise EvalError(str(exc)) from exc
    engine = ServedEngine(
        "model",
        str(model),
        endpoints,
        str(model),
        concurrency=args.concurrency,
        knowledge=KnowledgeBase(knowledge) if knowledge is not None else None,
        prompt_style=args.prompt,
        defaults=settings,
        max_seconds=float("inf"),  # each read is bounded by --timeout; an answer may take long
    )
    reason = engine.check()
    if reason is not None:
        raise EvalError(reason)
    return engine


def merge_shards(out: Path, keys: list[str]) -> bool:
    """Write OUT from the rank files (and OUT itself) once every selected question is answered."""
    records: dict[str, EvalRecord] = {}
    for path in [out, *_shard_files(out)]:
        for rec in _read_quietly(path):
            records.setdefault(rec.question_key or rec.uid, rec)
    if not all(k in records for k in keys):
        return False
    order = {k: i for i, k in enumerate(keys)}
    extra = [r for k, r in records.items() if k not in order]
    write_records(out, sorted((records[k] for k in keys), key=lambda r: order[r.question_key]) + extra)
    return True


def run(args: argparse.Namespace, loaded: tuple[Any, Any] | None = None) -> RunResult:
    """Select, check files, resume, ask in batches, write as it goes; see the module docstring.

    ``loaded``: a (model, processor) already in memory for --checkpoint (tests, notebooks)."""
    from judo.mmad import MMADError, load_mmad

    if args.batch_size is None:
        served = args.backend == "openai" and args.engine == "model"
        args.batch_size = 4 * args.concurrency * len(args.base_urls or [""]) if served else 1
    if args.batch_size < 1:
        raise EvalError(f"--batch-size must be >= 1, got {args.batch_size}")
    threads = getattr(args, "threads", None)
    if threads is not None:
        if threads < 1:
            raise EvalError(f"--threads must be >= 1, got {threads}")
        import torch

        torch.set_num_threads(threads)
    try:
        mmad = load_mmad(args.mmad_root)
        exclude = read_manifest(args.exclude) if args.exclude else set()
        items, excluded = select_items(
            mmad,
            datasets=args.datasets,
            categories=args.categories,
            types=args.types,
            exclude=exclude,
            limit=args.limit,
            template=args.template,
            shots=args.shots,
        )
    except (MMADError, SelectionError, FileNotFoundError) as exc:
        raise EvalError(str(exc)) from exc
    knowledge = _knowledge(args, mmad)

    problems = missing_files(items, args.shots)
    skipped = 0
    if problems:
        if not args.skip_missing:
            lines = [f"  {key}: {msg}" for key, msgs in problems.items() for msg in msgs]
            raise EvalError(
                f"{len(problems)} sample(s) cannot be asked ({len(lines)} problem(s)); fix the root or pass "
                "--skip-missing:\n" + "\n".join(lines)
            )
        before = len(items)
        items = [it for it in items if it.sample.key not in problems]
        skipped = before - len(items)
        print(
            f"skipping {skipped} question(s) of {len(problems)} sample(s) with missing files", file=sys.stderr
        )

    rank, world = _dist()
    mine = shard(items, rank, world)
    own = args.out if world == 1 else rank_path(args.out, rank)
    existed = own.exists()
    try:
        writer = RecordWriter(own)
    except JsonlError as exc:  # another run holds the file, or a line in it is damaged
        raise EvalError(str(exc)) from exc
    if writer.discarded_bytes:
        print(
            f"{own}: cut off a torn last line ({writer.discarded_bytes} bytes) from an interrupted run",
            file=sys.stderr,
        )
    done = set(writer.done)
    for path in [args.out, *_shard_files(args.out)]:
        if path != own:
            done.update(r.question_key or r.uid for r in _read_quietly(path))
    todo = [it for it in mine if it.question_key not in done]

    config = run_config(args)
    try:
        _check_resume(own, writer.existing, config)
        if todo:
            engine = make_engine(args, knowledge, loaded)
    except BaseException:
        writer.close()
        if not existed and own.stat().st_size == 0:
            own.unlink()  # leave no empty records file behind a run that never started
        raise

    from tqdm import tqdm

    from judo.images import ImageInputError

    bar = tqdm(
        total=len(mine),
        initial=len(mine) - len(todo),
        unit="q",
        desc=f"eval rank {rank}" if world > 1 else "eval",
        position=rank if world > 1 else None,
        disable=args.no_progress,
        dynamic_ncols=True,
    )
    asked = 0
    images = ImageCache(size=args.batch_size * (args.shots + 1) + 2)  # a batch's pictures and the next
    try:
        for start in range(0, len(todo), args.batch_size):
            batch = todo[start : start + args.batch_size]
            try:
                requests = [prepare(it, images) for it in batch]
            except ImageInputError as exc:
                raise EvalError(
                    f"{exc} (records so far are kept; fix or --exclude the image and rerun)"
                ) from exc
            t0 = time.perf_counter()
            updates = engine.answer_batch(requests)
            per_item = (time.perf_counter() - t0) / len(batch)
            failed = [(it, u) for it, u in zip(batch, updates, strict=True) if u.error]
            if failed:
                it, u = failed[0]
                raise EvalError(
                    f"{len(failed)} question(s) failed, first {it.question_key}: {u.error} "
                    "(records so far are kept; rerun the same command to resume)"
                )
            writer.write(
                [
                    to_record(it, u, per_item, mmad.root, config, len(batch), rank)
                    for it, u in zip(batch, updates)
                ]
            )
            asked += len(batch)
            bar.update(len(batch))
    finally:
        bar.close()
        writer.close()

    merged = False
    if world > 1 or _shard_files(args.out):
        merged = merge_shards(args.out, [it.question_key for it in items])
    return RunResult(len(items) + skipped, excluded, skipped, len(mine) - len(todo), asked, own, merged)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.templates is not None:
        if args.engine != "comparator":
            print(
                "judo eval: --templates is for --engine comparator (use --shots for a model)", file=sys.stderr
            )
            return 2
        if args.templates < 1:
            print(f"judo eval: --templates must be >= 1, got {args.templates}", file=sys.stderr)
            return 2
        args.shots = args.templates
    try:
        result = run(args)
    except EvalError as exc:
        print(f"judo eval: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # model loading etc.: say what failed without a traceback wall
        from judo.models import ModelLoadError

        if isinstance(exc, ModelLoadError):
            print(f"judo eval: {exc}", file=sys.stderr)
            return 2
        raise
    msg = (
        f"{result.asked} asked, {result.already_done} already in the records, {result.excluded} excluded "
        f"by the manifest, {result.skipped_missing} skipped (missing files); records: {result.out}"
    )
    if result.merged:
        msg += f"; all shards merged into {args.out}"
    print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
