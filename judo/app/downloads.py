"""The app's downloads: one inspection's record (JSON, built by `judo.record`) next to its overlay (PNG),
in a fresh folder per run, named for the session that made them, pruned after an hour."""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from judo.app.owner import OWNERS, new_token

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


def prune_folders(folder: Path, older_than_s: float, pattern: str = "judo-*") -> None:
    """Remove the folders matching `pattern` older than `older_than_s`: a workstation app runs for weeks."""
    cutoff = time.time() - older_than_s
    for old in folder.glob(pattern):
        try:
            if old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def write_outputs(
    record: dict[str, Any],
    overlay: Image.Image,
    stem: str = "inspection",
    *,
    folder: Path | None = None,
    owner: str | None = None,
) -> tuple[str, str]:
    """Write record JSON and overlay PNG into a fresh folder under ``folder``; return both paths.

    The file names carry a random token and are claimed for ``owner`` (`judo.app.owner`), so only the
    session that made them can download them. Folders older than KEEP_RECORDS_S are removed on the
    way, so the app does not fill the disk. Raises `RecordWriteError` (no server path in it)."""
    root = folder or RECORDS_DIR
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:100] or "inspection"
    token = new_token()
    try:
        root.mkdir(parents=True, exist_ok=True)
        prune_folders(root, KEEP_RECORDS_S)
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
