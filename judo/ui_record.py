"""The inspection record: what a lab keeps of one inspection (JSON) next to the overlay picture (PNG).

The record holds what is needed to audit or reproduce an answer: the question and options, the engine
and its settings, the raw model output, the parsed cells (as the canonical seg text too), the answer,
truth metrics when a mask was known, image fingerprints and timing.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from judo.engines.base import InspectionRequest, Update
from judo.grid import format_seg
from judo.ui_owner import OWNERS, new_token

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
    return {
        "version": RECORD_VERSION,
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
        "extra": {k: v for k, v in meta.items() if k in {"comparator"}},
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


RECORDS_DIR = Path(tempfile.gettempdir()) / "judo-records"
KEEP_RECORDS_S = 3600.0  # Gradio has copied a download into its own cache long before this


class RecordWriteError(OSError):
    """The record could not be written; the message is for the user and names no server path."""


def check_records_dir(folder: Path) -> str | None:
    """None when records can be written into ``folder``, else one sentence saying why not (with the path:
    it is for the operator's log, at start-up)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix="judo-check-", dir=folder))
        probe.rmdir()
    except OSError as err:
        return (
            f"records folder {folder} is not writable ({err.strerror or type(err).__name__}): "
            "inspections still run, but no record or overlay can be downloaded; set records_dir "
            "(or JUDO_RECORDS_DIR) to a writable folder."
        )
    return None


def _prune(folder: Path, older_than_s: float) -> None:
    """Remove record folders older than `older_than_s`: a workstation app runs for weeks."""
    cutoff = time.time() - older_than_s
    for old in folder.glob("judo-*"):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def download_stem(part_name: str | None, engine_id: str, when: float | None = None) -> str:
    """What a run's downloads are called: the part (the query's file name), the engine and the local time,
    e.g. ``bottle-017-comparator-20260112-143005``, so a folder of downloads sorts and reads by part."""
    part = Path(part_name).stem[:60] if part_name else "inspection"
    return f"{part}-{engine_id}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when or time.time()))}"


def write_outputs(
    record: dict[str, Any],
    overlay: Image.Image,
    stem: str = "inspection",
    *,
    folder: Path | None = None,
    owner: str | None = None,
) -> tuple[str, str]:
    """Write record JSON and overlay PNG into a fresh folder under ``folder``; return both paths.

    The file names carry a random token and are claimed for ``owner`` (`judo.ui_owner`), so only the
    session that made them can download them. Folders older than KEEP_RECORDS_S are removed on the
    way, so the app does not fill the disk. Raises `RecordWriteError` (no server path in it)."""
    root = folder or RECORDS_DIR
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:100] or "inspection"
    token = new_token()
    try:
        root.mkdir(parents=True, exist_ok=True)
        _prune(root, KEEP_RECORDS_S)
        out = Path(tempfile.mkdtemp(prefix="judo-", dir=root))
        json_path = out / f"{safe}-{token}.json"
        png_path = out / f"{safe}-{token}-overlay.png"
        json_path.write_text(
            json.dumps(record, indent=1, ensure_ascii=False, default=_jsonable), encoding="utf-8"
        )
        buf = io.BytesIO()
        overlay.save(
            buf, format="PNG", compress_level=1
        )  # ~2.5x faster than the default; size barely matters
        png_path.write_bytes(buf.getvalue())
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RecordWriteError(
            f"The record and overlay could not be saved on the server ({reason}); "
            "the result above is complete, copy it from the Result panel."
        ) from None
    OWNERS.claim(json_path.name, owner)
    OWNERS.claim(png_path.name, owner)
    return str(json_path), str(png_path)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return sorted(obj) if isinstance(obj, (set, frozenset)) else list(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    return str(obj)
