"""Run a batch: every part against one bank of golden samples, one result line per part, resumable.

Each part becomes an `InspectionRequest` against the same template images (the comparator prepares a
bank's normals and its calibration once per process, keyed by their pixels, so each part costs one
comparison), goes through the engine's guarded stream (`Engine.run`), and its inspection record
(`judo.record.build_record`) is appended to ``results.jsonl`` in the output folder (`judo.jsonl.JsonlFile`:
locked, fsynced, torn tail repaired) with its overlay PNG beside it.

Resuming: a part is done when the file holds a line for its name and image digest (the record's query
fingerprint) without an error, so a rerun on the same output folder, after a finished run, a Stop or
a ``kill -9``, does only what is missing; a part that failed is tried again. Two runs on one output
folder at once share the work: a part is claimed (an OS file lock, released by the kernel even after
``kill -9``) while it is inspected, the other run goes on with the next part and, at its end, waits for
the parts it found claimed; each part is written once. A stop event ends the run between parts (and a
language model mid-answer); what finished is on disk and the stopped part is not written.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from filelock import FileLock, Timeout
from PIL import Image

from judo.batch.parts import BatchInputError, Discovery, Part
from judo.engines.base import Engine, InspectionRequest, Update
from judo.engines.comparator import borderline_of
from judo.images import ImageInputError, load_image
from judo.jsonl import JsonlFile, OutputInUse
from judo.record import build_record, image_fingerprint
from judo.render import fit_within, heatmap_overlay, overlay_findings

if TYPE_CHECKING:
    from transformers import GenerationConfig

#: The batch's default question: MMAD's anomaly detection question.
DEFAULT_QUESTION = "Is there any defect in the object?"
DEFAULT_OPTIONS = {"A": "Yes.", "B": "No."}
RESULTS_FILE = "results.jsonl"
OVERLAY_DIR = "overlays"
CLAIM_DIR = ".claims"
#: Overlays are saved at most this large (the record keeps the cells; the PNG is for people).
OVERLAY_SIDE = 1024
#: How long an append waits for another run's lock on results.jsonl (each holds it for one line).
LOCK_WAIT_S = 60.0


@dataclass
class BatchResult:
    """One part's outcome. verdict: a judo.record verdict, or "skipped" (not a readable image).
    score: the comparator's strongest cell score (threshold units; None for a language model).
    resumed: the line was already in results.jsonl (an earlier run, or a concurrent one)."""

    part: str
    verdict: str
    score: float | None = None
    cells: int = 0
    seconds: float = 0.0
    answer: str | None = None
    record: dict[str, Any] | None = None
    overlay: Path | None = None
    error: str | None = None
    resumed: bool = False


@dataclass
class Progress:
    """What a running batch yields after each part: the part's result and how far the batch is."""

    result: BatchResult
    done: int
    total: int


@dataclass
class BatchSpec:
    """What every part of a batch is asked, of which engine, against which golden samples."""

    engine: Engine
    templates: list[Image.Image]
    out: Path
    question: str = DEFAULT_QUESTION
    options: dict[str, str] | None = field(default_factory=lambda: dict(DEFAULT_OPTIONS))
    template_names: list[str] = field(default_factory=list)
    category: str | None = None
    sensitivity: float | None = None
    false_alarm_rate: float | None = None
    settings: GenerationConfig | None = None
    heatmap: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not self.templates:
            raise ValueError("No golden sample: give at least one good image of the product.")
        # Fails here, before any part, on a bad question, options or sensitivity.
        self.request(self.templates[0])

    def request(self, query: Image.Image) -> InspectionRequest:
        """The request of one part."""
        return InspectionRequest(
            query,
            self.templates,
            self.question,
            self.options,
            category=self.category,
            sensitivity=self.sensitivity,
            false_alarm_rate=self.false_alarm_rate,
        )


def answer_text(record: dict[str, Any]) -> str | None:
    """The answer as a table shows it: "B (No.)", or a language model's text when it chose no option."""
    if record.get("answer"):
        text = record.get("answer_text")
        return f"{record['answer']} ({text})" if text else str(record["answer"])
    raw = (record.get("raw_output") or "").strip()
    return raw[:200] or None


def _strongest(record: dict[str, Any]) -> float | None:
    comparator = (record.get("extra") or {}).get("comparator")
    return None if comparator is None else comparator.get("max_score")


def result_from_row(row: dict[str, Any], out: Path, *, resumed: bool = False) -> BatchResult:
    """The BatchResult of one results.jsonl line."""
    record = row["record"]
    overlay = out / row["overlay"] if row.get("overlay") else None
    return BatchResult(
        part=row["part"],
        verdict=record.get("verdict", "error"),
        score=_strongest(record),
        cells=len(record.get("cells") or []),
        seconds=float(row.get("seconds") or 0.0),
        answer=answer_text(record),
        record=record,
        overlay=overlay if overlay is not None and overlay.exists() else None,
        error=record.get("error"),
        resumed=resumed,
    )


def overlay_name(part: str, suffix: str = "") -> str:
    """A file name for a part's overlay: readable, safe whatever the part is called, and unique."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(part).stem)[:60].strip("._") or "part"
    return f"{stem}-{hashlib.sha256(part.encode()).hexdigest()[:8]}{suffix}.png"


def _key(part: str, sha256: str) -> str:
    return f"{part}\0{sha256}"


class ResultStore:
    """The output folder's results.jsonl as this run sees it: the lines read so far, by part key."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.path = self.out / RESULTS_FILE
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / CLAIM_DIR).mkdir(exist_ok=True)
        self.rows: dict[str, dict[str, Any]] = {}  # last line per key
        self._offset = 0
        self.refresh()

    def refresh(self) -> None:
        """Read the lines other runs (or an earlier one) appended since the last look."""
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read()
        end = chunk.rfind(b"\n") + 1  # complete lines only; a torn tail is repaired under the lock
        for line in chunk[:end].splitlines():
            if line.strip():
                row = json.loads(line)
                self.rows[_key(row["part"], row["sha256"])] = row
        self._offset += end

    def done(self, key: str) -> dict[str, Any] | None:
        """The line of a finished part (an error is not finished: it is tried again)."""
        row = self.rows.get(key)
        return row if row is not None and not row["record"].get("error") else None

    def claim(self, key: str, wait: bool = False, stop: threading.Event | None = None) -> FileLock | None:
        """The part's claim (held while it is inspected), or None when another run holds it."""
        digest = hashlib.sha256(key.encode()).hexdigest()[:24]
        lock = FileLock(self.out / CLAIM_DIR / f"{digest}.lock", timeout=0)
        while True:
            try:
                lock.acquire(timeout=0.2 if wait else 0)
                return lock
            except Timeout:
                if not wait or (stop is not None and stop.is_set()):
                    return None

    def append(self, row: dict[str, Any]) -> bool:
        """Append a line unless the part is already done; False when it was (nothing written)."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                results = JsonlFile(self.path)
                break
            except OutputInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        with results:
            key = _key(row["part"], row["sha256"])
            if any(
                _key(r["part"], r["sha256"]) == key and not r["record"].get("error") for r in results.rows
            ):
                written = False
            else:
                results.append([row])
                written = True
        self.refresh()
        return written


def _skipped(part: str, reason: str) -> BatchResult:
    return BatchResult(part=part, verdict="skipped", error=reason)


def _save_overlay(spec: BatchSpec, part: str, query: Image.Image, update: Update) -> str:
    folder = spec.out / OVERLAY_DIR
    folder.mkdir(exist_ok=True)
    shown = fit_within(query, OVERLAY_SIDE)
    name = overlay_name(part)
    overlay_findings(shown, update.cells, borderline_of(update)).save(folder / name, compress_level=1)
    scores = (update.meta.get("comparator") or {}).get("scores")
    if spec.heatmap and scores:
        heatmap_overlay(shown, scores).save(folder / overlay_name(part, ".heat"), compress_level=1)
    return f"{OVERLAY_DIR}/{name}"


def _inspect(
    spec: BatchSpec,
    store: ResultStore,
    part: Part,
    query: Image.Image,
    sha: str,
    t0: float,
    stop: threading.Event,
) -> BatchResult:
    request = spec.request(query)
    started = time.time()
    final = Update(done=True, error="the engine gave no final update")
    for update in spec.engine.run(request, stop, spec.settings):
        if update.done:
            final = update
    names = {"query": part.name, "template": (spec.template_names or [None])[0]}
    seconds = time.perf_counter() - t0
    record = build_record(
        request, final, engine_label=spec.engine.label, names=names, started_at=started, elapsed_s=seconds
    )
    if record["stopped"]:  # not finished: not written, done again by the next run
        return BatchResult(part.name, "stopped", seconds=round(seconds, 4), record=record)
    overlay = _save_overlay(spec, part.name, query, final) if not final.error else None
    row = {
        "part": part.name,
        "sha256": sha,
        "seconds": round(seconds, 4),
        "overlay": overlay,
        "record": record,
    }
    written = store.append(row)
    if not written:
        return result_from_row(store.done(_key(part.name, sha)) or row, spec.out, resumed=True)
    return result_from_row(row, spec.out)


def run_batch(
    parts: Discovery | list[Part], spec: BatchSpec, stop: threading.Event | None = None
) -> Iterator[Progress]:
    """Inspect every part not yet done in ``spec.out``; yields one Progress per part as it finishes
    (skipped, resumed and failed parts included), in order, except parts another run was inspecting,
    which come at the end. Nothing raises for one bad part."""
    part_list = parts.parts if isinstance(parts, Discovery) else list(parts)
    stop = stop or threading.Event()
    store = ResultStore(spec.out)
    total, done = len(part_list), 0
    deferred: list[Part] = []

    def one(part: Part, wait: bool) -> BatchResult | None:
        t0 = time.perf_counter()
        try:
            query = load_image(part.source())
        except (ImageInputError, BatchInputError, OSError) as err:
            return _skipped(part.name, str(err).replace(str(part.path), part.name) if part.path else str(err))
        sha = image_fingerprint(query)["sha256"]
        key = _key(part.name, sha)
        if (row := store.done(key)) is not None:
            return result_from_row(row, spec.out, resumed=True)
        claim = store.claim(key, wait=wait, stop=stop)
        if claim is None:
            if not wait:
                deferred.append(part)
            return None
        try:
            store.refresh()  # the run that held the claim may have finished the part
            if (row := store.done(key)) is not None:
                return result_from_row(row, spec.out, resumed=True)
            return _inspect(spec, store, part, query, sha, t0, stop)
        finally:
            claim.release()

    # First pass: every part nobody else holds; then, waiting, the parts another run was inspecting
    # (`deferred` fills during the first pass and is read only after it).
    passes = itertools.chain(((p, False) for p in part_list), ((p, True) for p in deferred))
    for part, wait in passes:
        if stop.is_set():
            return
        result = one(part, wait=wait)
        if result is not None:
            done += 1
            yield Progress(result, done, total)


def skipped_results(discovery: Discovery) -> list[BatchResult]:
    """The files discovery left out, as results (listed in the table and the exports)."""
    return [_skipped(s.name, s.reason) for s in discovery.skipped]
