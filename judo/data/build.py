"""The machinery every stage builder shares: output folder, teacher calls, progress, resume, dry run.

A stage builder only says *what* its items are and how one item becomes rows (`work`). `Build.run`
then does the rest the same way for all stages:

- skips items already in `data.jsonl` (see `store.JsonlStore`), so a rerun resumes;
- runs the others on a thread pool as wide as the teacher's `max_concurrency`, writing each item as
  soon as it finishes (single writer: the main thread), with a tqdm bar and its ETA;
- keeps every raw teacher reply in `teacher_raw.jsonl` (request with images elided, full reply JSON);
- records items that could not be built in `failures.jsonl` with the reason, and carries on; they are
  retried by the next run. An authentication error stops the build at once.

Output folder layout (all paths in rows are relative to the folder, so it can be moved):

    data.jsonl  images/<hash>.png  manifest.json  mmad_keys.txt  teacher_raw.jsonl  failures.jsonl
    [teacher_images/]
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm.auto import tqdm

from judo.data.replies import ReplyFormatError
from judo.data.store import JsonlStore
from judo.data.teacher import TeacherAuthError, TeacherClient, TeacherError, TeacherReply
from judo.jsonl import JsonlLog

log = logging.getLogger(__name__)

DATA_FILE = "data.jsonl"
MANIFEST_FILE = "manifest.json"
KEYS_FILE = "mmad_keys.txt"
RAW_FILE = "teacher_raw.jsonl"
FAILURES_FILE = "failures.jsonl"
IMAGE_DIR = "images"

_DATA_URL = re.compile(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)")


class DataBuildError(RuntimeError):
    """A build cannot start or go on (bad input data, unusable output folder). The message says why."""


class ItemSkipped(Exception):
    """One item cannot be built (the reason is logged in failures.jsonl); the build continues."""


@dataclass(frozen=True)
class WorkItem:
    """One unit of teacher work. `id` is stable across runs (resume key); `payload` is stage-specific."""

    id: str
    payload: Any


@dataclass
class BuildSummary:
    planned: int
    already_done: int
    built: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    interrupted: bool = False

    def describe(self) -> str:
        text = (
            f"{self.planned} items planned, {self.already_done} already done, {self.built} built now, "
            f"{len(self.failed)} failed"
        )
        if self.failed:
            text += " (see failures.jsonl; rerun the same command to retry them):\n" + "\n".join(
                f"  {item}: {reason}" for item, reason in self.failed[:10]
            )
        return text


def elide_images(value: Any) -> Any:
    """A copy of a request body with every image data URL replaced by `<image/png data URL, N bytes>`."""
    if isinstance(value, str):
        return _DATA_URL.sub(lambda m: f"<{m.group(1)} data URL, {len(m.group(2)) * 3 // 4} bytes>", value)
    if isinstance(value, list):
        return [elide_images(v) for v in value]
    if isinstance(value, dict):
        return {k: elide_images(v) for k, v in value.items()}
    return value


def save_png(img: Image.Image, folder: Path, *, relative_to: Path) -> str:
    """Write `img` as `folder/<sha1 of its PNG bytes>.png` (identical images are stored once) and
    return the path relative to `relative_to`. Written via a temporary file, so never torn."""
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    data = buf.getvalue()
    name = hashlib.sha1(data).hexdigest()[:20] + ".png"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if not path.exists():
        tmp = path.with_name(f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path.relative_to(relative_to).as_posix()


class Build:
    """One stage's output folder and its teacher. `client` may be None only for dry runs."""

    def __init__(self, out_dir: str | os.PathLike, *, stage: str, client: TeacherClient | None) -> None:
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise DataBuildError(f"output path {self.out} exists and is not a folder")
        self.client = client
        self.stage = stage
        self._check_stage()  # before the lock: a wrong folder is refused without touching it
        self.store = JsonlStore(self.out / DATA_FILE)  # held (and locked) until close()
        self.raw = JsonlLog(self.out / RAW_FILE)
        self.failures = JsonlLog(self.out / FAILURES_FILE)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Build:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_stage(self) -> None:
        """Refuse to mix stages in one folder (a resume into the wrong folder would corrupt both)."""
        manifest = self.out / MANIFEST_FILE
        if manifest.exists():
            try:
                stage = json.loads(manifest.read_text()).get("stage")
            except (OSError, ValueError) as err:
                raise DataBuildError(f"{manifest} is unreadable ({err}); use a fresh output folder") from err
            if stage != self.stage:
                raise DataBuildError(
                    f"{self.out} holds a {stage!r} build, not {self.stage!r}; use another output folder"
                )

    # -- helpers for stage code ------------------------------------------------------------------

    def save_image(self, img: Image.Image, sub: str = IMAGE_DIR) -> str:
        return save_png(img, self.out / sub, relative_to=self.out)

    def ask(self, item_id: str, step: str, messages: list[dict], **params: Any) -> TeacherReply:
        """One teacher call; the reply (and the request, images elided) goes to teacher_raw.jsonl."""
        if self.client is None:
            raise RuntimeError("Build.ask called in a dry run")
        try:
            reply = self.client.chat(messages, **params)
        except TeacherError as err:
            self.raw.write(
                {
                    "item_id": item_id,
                    "step": step,
                    "time": time.time(),
                    "error": str(err),
                    "status": err.status,
                }
            )
            raise
        self.raw.write(
            {
                "item_id": item_id,
                "step": step,
                "time": time.time(),
                "latency_s": round(reply.latency_s, 3),
                "attempts": reply.attempts,
                "request": elide_images(self.client.request_body(messages, **params)),
                "reply": reply.raw,
            }
        )
        return reply

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        """Write manifest.json. `mmad_keys` (what evaluation must exclude) is widened by every MMAD key
        already in data.jsonl, so a rerun with a smaller --limit never hides earlier training images."""
        if "mmad_keys" in manifest:
            on_disk = {r["mmad_key"] for r in self.store.rows() if r.get("mmad_key")}
            manifest = {**manifest, "mmad_keys": sorted(set(manifest["mmad_keys"]) | on_disk)}
        path = self.out / MANIFEST_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"stage": self.stage, **manifest}, indent=1, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        if "mmad_keys" in manifest:  # the same keys in the format `judo eval --exclude` reads
            keys = self.out / KEYS_FILE
            keys.write_text(
                f"# MMAD images used by the {self.stage} build in {self.out}; "
                "for `judo eval --exclude`\n" + "".join(k + "\n" for k in manifest["mmad_keys"])
            )
        return path

    # -- the loop --------------------------------------------------------------------------------

    def run(
        self,
        items: Sequence[WorkItem],
        work: Callable[[WorkItem], list[dict]],
        *,
        workers: int,
        desc: str | None = None,
    ) -> BuildSummary:
        """Build every item not yet on disk. Returns a summary; raises TeacherAuthError at once."""
        todo = [it for it in items if it.id not in self.store.done]
        summary = BuildSummary(
            planned=len(items), already_done=len(items) - len(todo), repaired=list(self.store.repaired)
        )
        if not todo:
            return summary
        bar = tqdm(total=len(todo), desc=desc or self.stage, unit="item", dynamic_ncols=True, file=sys.stderr)
        pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=f"judo-{self.stage}")
        pending: dict[Future, WorkItem] = {}
        queue = iter(todo)
        try:
            while True:
                while len(pending) < max(1, workers):
                    item = next(queue, None)
                    if item is None:
                        break
                    pending[pool.submit(work, item)] = item
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    item = pending.pop(future)
                    self._collect(future, item, summary)
                    bar.update(1)
                    bar.set_postfix(failed=len(summary.failed), refresh=False)
        except KeyboardInterrupt:
            summary.interrupted = True
            raise
        finally:
            pool.shutdown(wait=not summary.interrupted, cancel_futures=True)
            bar.close()
        return summary

    def _collect(self, future: Future, item: WorkItem, summary: BuildSummary) -> None:
        try:
            rows = future.result()
        except TeacherAuthError:
            raise
        except (ItemSkipped, ReplyFormatError, TeacherError) as err:
            reason = f"{type(err).__name__}: {err}"
            summary.failed.append((item.id, reason))
            self.failures.write({"item_id": item.id, "time": time.time(), "reason": reason})
            log.warning("skipped %s: %s", item.id, reason)
            return
        self.store.append_item(item.id, rows)
        summary.built += 1


def run_stage(
    out_dir: str | os.PathLike,
    stage: str,
    client: TeacherClient,
    manifest: dict[str, Any],
    items: Sequence[WorkItem],
    make_work: Callable[[Build], Callable[[WorkItem], list[dict]]],
    desc: str,
) -> BuildSummary:
    """Build (or resume) one stage's folder: manifest marked incomplete, every item not on disk, then the
    final manifest with the row count and whether every planned item is there."""
    with Build(out_dir, stage=stage, client=client) as build:
        teacher = {"base_url": client.config.base_url, "model": client.config.model}
        build.write_manifest({**manifest, "teacher": teacher, "complete": False})
        summary = build.run(items, make_work(build), workers=client.config.max_concurrency, desc=desc)
        build.write_manifest(
            {
                **manifest,
                "teacher": teacher,
                "rows": len(build.store),
                "complete": len(build.store.done) == len(items),
            }
        )
    return summary


def print_dry_run(client: TeacherClient, item: WorkItem, requests: list[tuple], stream=None) -> None:
    """Print the exact JSON bodies that would be POSTed for `item`, images elided as data-URL sizes.

    `requests` holds `(step, messages)` or `(step, messages, params)` (extra body fields such as max_tokens).
    """
    stream = stream or sys.stdout
    for step, messages, *params in requests:
        body = elide_images(client.request_body(messages, **(params[0] if params else {})))
        print(f"### {item.id} [{step}] POST {client.config.endpoint}", file=stream)
        print(json.dumps(body, indent=1, ensure_ascii=False), file=stream)
