"""Launch the real app on 127.0.0.1 with the tiny engine for a test module (shared by app/bad-input/browser
tests), and open one of its pages in Debian chromium."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, Request

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu")  # as root in a container, without a GPU


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


@contextlib.contextmanager
def browser_page(
    sync_playwright: Callable[[], Any],
    url: str,
    viewport: tuple[int, int] = (1400, 1100),
    *,
    example: str | None = None,
    args: Sequence[str] = (),
    on_request: Callable[[Request], object] | None = None,
    **page_options: Any,
) -> Iterator[Page]:
    """``url`` loaded to network idle in a new chromium, which is closed on exit, also when the test fails
    (a browser left open would outlive the test and hold the machine's two cores).

    ``sync_playwright`` is the browser tests' fixture of that name (tests.test_browser), which skips without
    a browser. ``example``: the title of an example to click once loaded, then half a second for its inputs
    to arrive. ``args``: more chromium flags. ``on_request``: told every request from before the page loads.
    ``page_options``: more of playwright's ``new_page`` arguments (``is_mobile``, ``accept_downloads``, ...).
    More pages of the same browser: ``page.context.browser.new_page()``.
    """
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *args])
        try:
            width, height = viewport
            page = browser.new_page(viewport={"width": width, "height": height}, **page_options)
            if on_request is not None:
                page.on("request", on_request)
            page.goto(url, wait_until="networkidle", timeout=60_000)
            if example is not None:
                page.get_by_text(example, exact=True).first.click()
                page.wait_for_timeout(500)
            yield page
        finally:
            browser.close()


def decoded_image(page: Page, selector: str, width: int | None = None) -> Locator:
    """The first ``<img>`` under ``selector`` once the browser has decoded it (``width``: once it is that
    many pixels wide): a Gradio image shows its element before its pixels, which read as empty until then."""
    image = page.locator(f"{selector} img").first
    image.wait_for(timeout=10_000)
    wide = "img.naturalWidth > 0" if width is None else f"img.naturalWidth === {int(width)}"
    page.wait_for_function(f"(img) => img.complete && {wide}", arg=image.element_handle(), timeout=10_000)
    return image


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
