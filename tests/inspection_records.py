"""For the inspection log's tests: real records (the comparator engine run on a shipped example, the
record built by `judo.record.build_record`, written as JSON + overlay PNG as the app writes them), and
a small Blocks holding only the History tab, served on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from judo.engines.base import InspectionRequest
from judo.engines.comparator import ComparatorEngine
from judo.record import build_record
from judo.render import overlay_cells

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@cache
def example_record(title: str = "bottle: broken large", sensitivity: float = 1.0) -> dict[str, Any]:
    """The record of a real comparator run on the example called ``title`` (detection question)."""
    index = json.loads((EXAMPLES / "index.json").read_text(encoding="utf-8"))
    (ex,) = [e for e in index["examples"] if e["title"] == title]
    query = Image.open(EXAMPLES / ex["query"]).convert("RGB")
    template = Image.open(EXAMPLES / ex["template"]).convert("RGB")
    q = ex["questions"][0]
    request = InspectionRequest(
        query, template, q["text"], q["options"], category=ex["category"], sensitivity=sensitivity
    )
    *_, final = ComparatorEngine().run(request)
    names = {"query": Path(ex["query"]).name, "template": Path(ex["template"]).name}
    return build_record(request, final, engine_label="Comparator", names=names)


def record_copy(title: str = "bottle: broken large", sensitivity: float = 1.0) -> dict[str, Any]:
    return json.loads(json.dumps(example_record(title, sensitivity)))


def write_record_files(record: dict[str, Any], folder: Path, stem: str) -> tuple[str, str]:
    """The record JSON and its overlay PNG, named as the app names them (``<stem>.json``,
    ``<stem>-overlay.png``), drawn from the record's own cells on the example's query."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / f"{stem}.json"
    png_path = folder / f"{stem}-overlay.png"
    json_path.write_text(json.dumps(record), encoding="utf-8")
    name = record["images"]["query"]["name"]
    query = Image.open(next(EXAMPLES.rglob(name))).convert("RGB")
    overlay_cells(query, [tuple(c) for c in record["cells"]]).save(png_path)
    return str(json_path), str(png_path)


@contextlib.contextmanager
def serve_history(log, is_operator: Callable | None = None, **kwargs) -> Iterator[str]:
    """A Blocks with only `build_history_tab` on a free port; yields its URL, closed afterwards."""
    import gradio as gr

    from judo.app.history import build_history_tab
    from tests.app_server import serve_blocks

    with gr.Blocks(title="History") as demo:
        build_history_tab(log, is_operator, **kwargs)
    with serve_blocks(demo) as served:
        yield served.url
