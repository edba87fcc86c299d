"""The inspection record: what a lab keeps of one inspection, the same from the app, `judo inspect`, a batch.

The record holds what is needed to audit or reproduce an answer: the question and options, the engine
and its settings, the raw model output, the parsed cells (as the canonical seg text too), the answer,
the verdict, truth metrics when a mask was known, image fingerprints and timing. Writing it to disk for
download is the app's business (`judo.app.downloads`).
"""

from __future__ import annotations

import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from PIL import Image

from judo.comparator.describe import says_yes
from judo.engines.base import InspectionRequest, Update
from judo.grid import Cell, format_seg, seg_f1, seg_iou

RECORD_VERSION = 1


def image_fingerprint(img: Image.Image) -> dict[str, Any]:
    """Size and a SHA-256 of the decoded pixels (stable across file formats and metadata)."""
    return {"size": list(img.size), "sha256": hashlib.sha256(img.tobytes()).hexdigest()}


def build_record(
    request: InspectionRequest,
    update: Update,
    *,
    engine_label: str,
    truth: dict[str, Any] | None = None,
    names: dict[str, str] | None = None,
    started_at: float | None = None,
    elapsed_s: float | None = None,
    first_update_s: float | None = None,
) -> dict[str, Any]:
    meta = dict(update.meta)
    answer_text = (request.options or {}).get(update.answer or "", None)
    record = {
        "version": RECORD_VERSION,
        "id": uuid.uuid4().hex[:16],  # names this inspection: a re-thresholded one says `retuned_from` it
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started_at or time.time())),
        "engine": {
            "id": meta.get("engine"),
            "label": engine_label,
            "checkpoint": meta.get("checkpoint"),
            "prompt_style": meta.get("prompt_style"),
            "settings": meta.get("settings"),
        },
        "question": request.question,
        "options": request.options,
        "category": request.category,
        "dataset": request.dataset,
        "images": {
            "query": {**image_fingerprint(request.query), "name": (names or {}).get("query")},
            "template": {**image_fingerprint(request.template), "name": (names or {}).get("template")},
        },
        "raw_output": update.text,
        "cells": sorted([list(c) for c in update.cells]),
        "seg": format_seg(update.cells),
        "answer": update.answer,
        "answer_text": answer_text,
        "error": update.error,
        "stopped": bool(meta.get("stopped")),
        "warnings": meta.get("warnings", []),
        "knowledge": meta.get("knowledge"),
        "truth": truth,
        "timing": {
            "first_update_s": _round(first_update_s),
            "first_token_s": meta.get("first_token_s"),
            "total_s": _round(elapsed_s if elapsed_s is not None else meta.get("total_s")),
            "new_tokens": meta.get("new_tokens"),
            "tokens_per_s": meta.get("tokens_per_s"),
        },
        "extra": {k: v for k, v in meta.items() if k in {"comparator", "retuned_from"}},
    }
    record["verdict"] = verdict_of(record)
    return record


def truth_metrics(cells: set[Cell], truth: set[Cell] | None) -> dict[str, float] | None:
    """Patch F1 and IoU of predicted ``cells`` against the ``truth`` cells of a mask (None without one)."""
    if truth is None:
        return None
    return {
        "patch_f1": round(seg_f1(cells, truth), 4),
        "patch_iou": round(seg_iou(cells, truth), 4),
        "truth_cells": len(truth),
        "predicted_cells": len(cells),
    }


def truth_section(
    metrics: dict[str, Any] | None, truth_cells: set[Cell] | None, expected: str | None
) -> dict[str, Any] | None:
    """The record's ``truth``: the metrics, the true cells and the expected letter, as far as known."""
    if metrics is None and expected is None:
        return None
    out = dict(metrics or {})
    if truth_cells is not None:
        out["cells"] = sorted([list(c) for c in truth_cells])
    if expected:
        out["answer"] = expected
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def download_stem(part_name: str | None, engine_id: str, when: float | None = None) -> str:
    """What a run's downloads are called: the part (the query's file name), the engine and the local time,
    e.g. ``bottle-017-comparator-20260112-143005``, so a folder of downloads sorts and reads by part."""
    part = Path(part_name).stem[:60] if part_name else "inspection"
    return f"{part}-{engine_id}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when or time.time()))}"


#: The verdicts a record can carry, from worst to best news (a table sorts by this order).
VERDICTS = ("error", "stopped", "not comparable", "defect", "borderline", "normal")


def verdict_of(record: dict[str, Any]) -> str:
    """One word for the part: error, stopped, not comparable (the comparator judged the pair invalid),
    defect, borderline (the Yes/No rests on cells within the band of the threshold) or normal.

    A comparator's verdict is its measurement; a language model's is its Yes/No answer to a detection
    question when it gave one, else whether it marked any cell."""
    if record.get("error"):
        return "error"
    if record.get("stopped"):
        return "stopped"
    comparator = (record.get("extra") or {}).get("comparator")
    if comparator is not None:
        if not comparator.get("valid", True):
            return "not comparable"
        if comparator.get("borderline_decision"):
            return "borderline"
        return "defect" if record.get("cells") else "normal"
    yes = says_yes(record.get("answer_text"), record.get("options"), record.get("question"))
    if yes is not None:
        return "defect" if yes else "normal"
    return "defect" if record.get("cells") else "normal"
