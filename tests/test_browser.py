"""A real browser (Debian chromium through Python playwright) loads the page, picks an example, runs an
inspection, waits for the answer and saves a screenshot into test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.app_server import serve_tiny_app

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (make browser installs it)"),
]


@pytest.fixture(scope="module")
def page_url(tiny_model_dir):
    # The comparator as default engine: it marks real cells on the examples, so the screenshot shows them.
    with serve_tiny_app(tiny_model_dir, JUDO_DEFAULT_ENGINE="comparator") as served:
        yield served.url


def test_pick_example_run_and_screenshot(page_url, artifacts_dir):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(page_url, wait_until="networkidle", timeout=60_000)
            page.get_by_text("JUDO Inspector").first.wait_for(timeout=30_000)

            options = "() => document.querySelector('#judo-options textarea')?.value"
            before = page.evaluate(options)
            page.get_by_text("bottle: contamination", exact=True).first.click()
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
            overlay = page.locator("#judo-overlay img")
            overlay.first.wait_for(timeout=10_000)
            assert "patch F1" in page.locator("#judo-status").inner_text()
            shot = artifacts_dir / "app-inspection.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 20_000
        finally:
            browser.close()


def test_chromium_path_is_what_the_makefile_installs():
    assert shutil.which("chromium") in {str(CHROMIUM), None} or CHROMIUM.exists()
