"""Launch the real app on 127.0.0.1 with the tiny engine for a test module (shared by app/bad-input/browser tests)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@dataclass
class Served:
    url: str
    demo: object


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_tiny_app(tiny_model_dir: Path, **env_overrides: str) -> Iterator[Served]:
    """configs/tiny.yaml with the session's tiny checkpoint; closed afterwards."""
    from judo.engines import load_config

    env = {
        "JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir),
        "JUDO_ENGINE_TINY_RAG_CHECKPOINT": str(tiny_model_dir),
        **env_overrides,
    }
    with serve_config(load_config(REPO / "configs" / "tiny.yaml", env=env)) as served:
        yield served


@contextlib.contextmanager
def serve_blocks(demo, **launch) -> Iterator[Served]:
    """A built ``gr.Blocks`` served on 127.0.0.1 and a free port; closed afterwards."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    try:
        yield Served(f"http://127.0.0.1:{port}/", demo)
    finally:
        demo.close()


@contextlib.contextmanager
def serve_config(config, **create) -> Iterator[Served]:
    """The real app for an `AppConfig` (``create``: more arguments of `create_app`, e.g. ``on_record``)."""
    from judo.app.server import create_app

    demo, kwargs = create_app(config, **create)
    with serve_blocks(demo, **kwargs) as served:
        yield served


def compare_args(query, template, engines, *, category="", max_new_tokens=24):
    """Positional arguments of /compare (order: judo.app.api.COMPARE_API), for a Yes/No detection."""
    return (
        query,
        template,
        "Is there any defect in the object?",
        "A. Yes.\nB. No.",
        list(engines),
        category,
        None,
        "",
        max_new_tokens,
        False,
        0.7,
        0.9,
    )


def inspect_args(
    query,
    template,
    *,
    question="Is there any defect in the object?",
    options="A. Yes.\nB. No.",
    engine="tiny",
    category="bottle",
    mask=None,
    expected="",
    prior=False,
    max_new_tokens=32,
    sensitivity=1.0,
):
    """Positional arguments of /inspect (order: judo.app.api.INSPECT_API)."""
    return (
        query,
        template,
        question,
        options,
        engine,
        category,
        mask,
        expected,
        prior,
        max_new_tokens,
        False,
        0.7,
        0.9,
        sensitivity,
    )
