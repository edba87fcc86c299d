"""The page in a real browser (Debian chromium through playwright), with the comparator as its only engine:
Ctrl+Enter (and Cmd+Enter) runs Inspect, and on a phone the Inspect button and the examples are on the first
screen. The app is created with a record hook that collects what it is told (as the inspection log is)."""

from __future__ import annotations

import pytest

from tests.app_server import REPO, browser_page, serve_config
from tests.test_browser import EXAMPLE_TITLE, sync_playwright  # noqa: F401 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.browser]
STATUS = "() => document.querySelector('#judo-status')?.innerText || ''"


@pytest.fixture(scope="module")
def served(sync_playwright):  # noqa: F811 - the fixture imported above
    from judo.engines import load_config

    told: list[dict] = []

    def on_record(record, **context):
        told.append({"record": record, **context})

    config = load_config(REPO / "configs" / "tiny.yaml", env={"JUDO_ENGINES": "comparator"})
    with serve_config(config, on_record=on_record) as app:
        yield app.url, told


@pytest.mark.parametrize("keys", ["Control+Enter", "Meta+Enter"])
def test_ctrl_enter_in_the_question_box_runs_inspect(served, sync_playwright, keys):  # noqa: F811
    url, told = served
    before = len(told)
    with browser_page(sync_playwright, url, viewport=(1400, 1000), example=EXAMPLE_TITLE) as page:
        page.locator("#judo-question textarea").click()
        page.keyboard.press(keys)
        page.wait_for_function(f"() => ({STATUS})().includes('finished in')", timeout=60_000)
        assert len(told) == before + 1, "one inspection, one record for the log"
        assert told[-1]["kind"] == "single" and told[-1]["record"]["cells"]
        assert told[-1]["part"] == "bottle-contamination-000" and told[-1]["product"] == "bottle"
        assert told[-1]["record_path"].endswith(".json") and told[-1]["user"] is None
        question = page.locator("#judo-question textarea").input_value()
        assert "\n" not in question, "the shortcut adds no line break to the question"


def test_on_a_phone_inspect_and_the_examples_are_on_the_first_screen(served, sync_playwright):  # noqa: F811
    url, _ = served
    width, height = 390, 844
    with browser_page(sync_playwright, url, viewport=(width, height), is_mobile=True, has_touch=True) as page:
        page.locator("#judo-run").wait_for(timeout=30_000)
        for selector in ("#judo-run", "#judo-examples", "#judo-query", "#judo-template"):
            box = page.locator(selector).first.bounding_box()
            assert box is not None, selector
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, (selector, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)
        # the first example is tapped and inspected without scrolling
        page.get_by_text(EXAMPLE_TITLE, exact=True).first.tap()
        page.wait_for_timeout(500)
        page.locator("#judo-run").tap()
        page.wait_for_function(f"() => ({STATUS})().includes('finished in')", timeout=60_000)
        assert page.evaluate("() => window.scrollY") == 0
