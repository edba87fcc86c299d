"""A real browser (Debian chromium through Python playwright) loads the page, picks an example, runs an
inspection, waits for the answer, reads the overlay's pixels as the page decoded them and checks that
the red cells sit exactly where the inspection record's cells are; a screenshot goes to test-artifacts/.

Without chromium (or playwright) the test is skipped with the reason on a developer's machine, and
fails under CI (``CI=true``), where a quiet skip would hide that the page was never tried.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

from judo.grid import GRID_SIZE, cell_boxes
from judo.render import AMBER, GREEN, RED
from tests.app_server import CHROMIUM, EXAMPLES, browser_page, decoded_image, serve_tiny_app

EXAMPLE_TITLE = "bottle: contamination"
ALPHA = 0.45  # the red cells' opacity (judo.render.overlay_cells' default)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


@pytest.fixture(scope="module")
def sync_playwright():
    """playwright's entry point, once chromium and playwright are both there."""
    missing = None
    if not CHROMIUM.exists():
        missing = f"Debian chromium is not installed at {CHROMIUM} (make browser installs it)"
    else:
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            missing = "python playwright is not installed (it is in requirements.txt)"
    if missing and _in_ci():
        pytest.fail(f"{missing}: CI must run the browser test", pytrace=False)
    if missing:
        pytest.skip(missing)
    return sync_playwright


@pytest.fixture(scope="module")
def page_url(sync_playwright, tiny_model_dir):  # no browser, no reason to build and serve the app
    # The comparator as default engine: it marks real cells on the examples, so the overlay shows them.
    with serve_tiny_app(tiny_model_dir, JUDO_DEFAULT_ENGINE="comparator") as served:
        yield served.url


def _example_query() -> Image.Image:
    index = json.loads((EXAMPLES / "index.json").read_text(encoding="utf-8"))
    (example,) = [e for e in index["examples"] if e["title"] == EXAMPLE_TITLE]
    return Image.open(EXAMPLES / example["query"]).convert("RGB")


def _marked_cells(overlay: np.ndarray, base: np.ndarray) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """The cells whose pixels are the base under translucent red, and those under translucent amber (or
    its dashed outline: judo.render.overlay_findings, borderline cells); every other cell must be the bare
    base. Pixels of the green truth outline (drawn over everything) are left out of the tests."""
    red = base + (np.array(RED) - base) * (round(ALPHA * 255) / 255)
    amber = base + (np.array(AMBER) - base) * (round(ALPHA * 0.7 * 255) / 255)
    not_green = ~np.all(overlay == np.array(GREEN), axis=2)
    as_red = np.all(np.abs(overlay - red) <= 2, axis=2)
    as_amber = np.all(np.abs(overlay - amber) <= 2, axis=2) | np.all(overlay == np.array(AMBER), axis=2)
    as_base = np.all(overlay == base, axis=2)
    found, near, unexplained = set(), set(), []
    for r, row in enumerate(cell_boxes((overlay.shape[1], overlay.shape[0]), GRID_SIZE)):
        for c, (x0, y0, x1, y1) in enumerate(row):
            keep = not_green[y0:y1, x0:x1]
            if as_red[y0:y1, x0:x1][keep].mean() > 0.95:
                found.add((r, c))
            elif as_amber[y0:y1, x0:x1][keep].mean() > 0.95:
                near.add((r, c))
            elif not as_base[y0:y1, x0:x1][keep].all():
                unexplained.append((r, c))
    assert not unexplained, f"cells neither bare, red nor amber in the overlay: {unexplained}"
    return found, near


# Draw the overlay <img> onto a canvas at its natural size and hand back the decoded pixels as PNG.
READ_PIXELS = """(img) => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    canvas.getContext('2d').drawImage(img, 0, 0);
    return canvas.toDataURL('image/png');
}"""


def test_inspection_shows_the_records_cells_in_red(sync_playwright, page_url, artifacts_dir):
    with browser_page(sync_playwright, page_url, args=["--force-color-profile=srgb"]) as page:
        page.get_by_text("JUDO Inspector").first.wait_for(timeout=30_000)

        options = "() => document.querySelector('#judo-options textarea')?.value"
        before = page.evaluate(options)
        page.get_by_text(EXAMPLE_TITLE, exact=True).first.click()
        # the example loads its own question set (options in the example's letter order)
        page.wait_for_function(f"() => ({options})() !== {before!r}", timeout=30_000)
        page.locator("#judo-run").click()
        page.wait_for_function(
            "() => (document.querySelector('#judo-status')?.innerText || '').includes('finished')",
            timeout=60_000,
        )
        chosen = page.locator("#judo-answer .judo-chosen")
        chosen.first.wait_for(timeout=10_000)
        assert chosen.count() == 1
        assert "patch F1" in page.locator("#judo-status").inner_text()

        record_link = page.locator("#judo-record a[href]").first
        record_link.wait_for(timeout=10_000)
        record = page.request.get(urljoin(page_url, record_link.get_attribute("href"))).json()
        cells = {tuple(c) for c in record["cells"]}
        assert cells, "the comparator marks the contamination: the record has cells"

        overlay_img = decoded_image(page, "#judo-overlay")
        data_url = overlay_img.evaluate(READ_PIXELS)
        shown = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")

        query = _example_query()
        assert record["images"]["query"]["sha256"] == hashlib.sha256(query.tobytes()).hexdigest()
        assert shown.size == query.size  # the example is smaller than the display side: shown 1:1
        found, near = _marked_cells(np.asarray(shown).astype(float), np.asarray(query).astype(float))
        borderline = {tuple(c) for c in record["extra"]["comparator"]["borderline"]}
        assert found == cells - borderline and near == borderline

        shot = artifacts_dir / "app-inspection.png"
        page.screenshot(path=str(shot), full_page=True)


@pytest.fixture(scope="module")
def lm_page_url(sync_playwright, tiny_model_dir):
    # The tiny language model with room for a long answer: Stop lands while it runs (or before).
    with serve_tiny_app(
        tiny_model_dir, JUDO_DEFAULT_ENGINE="tiny", JUDO_ENGINE_TINY_MAX_NEW_TOKENS="4096"
    ) as served:
        yield served.url


@pytest.mark.parametrize("delay_ms", [0, 300, 800])
def test_an_early_stop_ends_with_a_stopped_record(sync_playwright, lm_page_url, delay_ms):
    status = "() => document.querySelector('#judo-status')?.innerText || ''"
    with browser_page(sync_playwright, lm_page_url, example=EXAMPLE_TITLE) as page:
        page.locator("#judo-run").click()
        page.wait_for_timeout(delay_ms)
        page.locator("#judo-stop").click()
        page.wait_for_function(
            f"() => /stopped by the user|finished in|Error/.test(({status})())", timeout=60_000
        )
        page.wait_for_timeout(1000)  # a late reply of the Stop handler must not change the status
        shown = page.evaluate(status)
        assert "stopped by the user" in shown and "stopping" not in shown.lower(), shown
        text = page.locator("#judo-reasoning textarea").input_value()
        # (the random tiny model emits stray bytes of its own mid-text; a stop must not leave a cut one last)
        assert not text.rstrip().endswith("\ufffd")
        record_link = page.locator("#judo-record a[href]").first
        record_link.wait_for(timeout=10_000)
        record = page.request.get(urljoin(lm_page_url, record_link.get_attribute("href"))).json()
        assert record["stopped"] is True


def test_the_use_via_api_snippet_runs(sync_playwright, lm_page_url, tmp_path):
    import subprocess
    import sys

    with browser_page(sync_playwright, lm_page_url) as page:
        assert "\n" in page.locator("#judo-options textarea").input_value(), (
            "the page shows one option a line"
        )
        page.get_by_text("Use via API").first.click()
        snippet = page.locator("code", has_text='api_name="/inspect"').first
        snippet.wait_for(timeout=30_000)
        code = snippet.inner_text()
        docs = page.locator("body").inner_text()
    assert "INSPECT_OUTPUTS" not in docs and "INSPECT_API" not in docs, (
        "the API page names no internal constant"
    )
    compile(code, "snippet", "exec")  # valid Python as shown
    # The snippet's example images are on the internet, which this machine cannot reach: use local ones.
    query, template = _example_query(), EXAMPLES / "templates" / "bottle" / "00.png"
    query.save(tmp_path / "query.png")
    lines = [ln for ln in code.splitlines() if "handle_file('http" in ln]
    assert [ln.split("=")[0].strip() for ln in lines] == ["query", "template"], (
        "mask and expected are optional"
    )
    code = code.replace(lines[0], f"\tquery=handle_file({str(tmp_path / 'query.png')!r}),")
    code = code.replace(lines[1], f"\ttemplate=handle_file({str(template)!r}),")
    ran = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "'done': True" in ran.stdout and "'error': None" in ran.stdout and ".json" in ran.stdout


def test_an_own_upload_switches_to_a_custom_product(sync_playwright, lm_page_url, tmp_path):
    own = tmp_path / "my-part.png"
    _example_query().save(own)
    gallery_images = "() => document.querySelectorAll('#judo-gallery img').length"
    product = "() => document.querySelector('#judo-product input')?.value || ''"
    with browser_page(sync_playwright, lm_page_url) as page:
        page.get_by_text("carpet: hole", exact=True).first.click()
        page.wait_for_function(
            f"() => ({product})() === 'carpet' && ({gallery_images})() > 0", timeout=30_000
        )
        page.locator("#judo-query input[type=file]").set_input_files(str(own))
        page.wait_for_function(f"() => ({product})().startsWith('Custom product')", timeout=30_000)
        page.wait_for_function(f"() => ({gallery_images})() === 0", timeout=30_000)
        page.locator("#judo-product input").click()  # picking a product brings its gallery back
        page.get_by_role("option", name="bottle", exact=True).click()
        page.wait_for_function(f"() => ({gallery_images})() > 0", timeout=30_000)


def test_the_engines_tab_on_the_server_itself(sync_playwright, lm_page_url):
    with browser_page(sync_playwright, lm_page_url, viewport=(900, 900)) as page:  # squeezes the table
        page.get_by_role("tab", name="Engines").click()
        table = page.locator("#judo-engines table")
        table.wait_for(timeout=10_000)
        assert "JUDO_ENGINES" in page.locator("#judo-engines").inner_text(), (
            "localhost sees the configuration"
        )
        cells = page.locator("#judo-engines td:nth-child(2)")
        for i in range(cells.count()):
            lines = cells.nth(i).evaluate(
                "(td) => { const r = document.createRange(); r.selectNodeContents(td);"
                " return new Set([...r.getClientRects()].map((x) => Math.round(x.top))).size; }"
            )
            assert lines == 1, f"the status {cells.nth(i).inner_text()!r} is broken over {lines} lines"
