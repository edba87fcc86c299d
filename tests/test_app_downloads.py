"""Inspection records: written where Gradio can serve them, and old ones pruned so a long-running app
does not fill the disk."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from PIL import Image

from judo.app import downloads


def test_write_outputs_writes_json_and_png_and_prunes_old_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(downloads, "RECORDS_DIR", tmp_path)
    stale = tmp_path / "judo-stale"
    stale.mkdir()
    (stale / "old.json").write_text("{}")
    hour_ago = time.time() - downloads.KEEP_RECORDS_S - 60
    os.utime(stale, (hour_ago, hour_ago))
    fresh = tmp_path / "judo-fresh"
    fresh.mkdir()

    record_path, png_path = downloads.write_outputs(
        {"answer": "A", "cells": {(1, 2)}}, Image.new("RGB", (32, 32), "red"), stem="judo/x y"
    )

    assert not stale.exists() and fresh.exists()
    assert json.loads(Path(record_path).read_text(encoding="utf-8")) == {"answer": "A", "cells": [[1, 2]]}
    with Image.open(png_path) as png:
        assert png.format == "PNG" and png.size == (32, 32)
    # the stem, then a random token: the name is claimed for its session (judo.app.owner)
    assert re.fullmatch(r"judo-x-y-[0-9a-f]{16}\.json", os.path.basename(record_path))
