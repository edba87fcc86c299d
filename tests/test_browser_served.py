"""The app with one served engine, in a real browser: the tiny model behind the OpenAI-compatible test
server, the app on 127.0.0.1, Debian chromium through playwright. An inspection streams to its end;
then the server goes away and the next inspection shows one clear sentence instead of a traceback."""

from __future__ import annotations

import pytest

from tests.app_server import REPO, browser_page, serve_config
from tests.openai_server import OpenAIServer
from tests.test_browser import sync_playwright  # noqa: F401 - the fixture (skips without a browser)

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def served_app(sync_playwright, tiny_model_dir, tmp_path_factory):  # noqa: F811 - no browser, no server
    from judo.engines import load_config

    server = OpenAIServer(tiny_model_dir).start()
    folder = tmp_path_factory.mktemp("served-app")
    (folder / "app.yaml").write_text(
        "title: JUDO Inspector (served)\n"
        "engines:\n"
        f"  - {{id: served, label: Served tiny, kind: openai, base_url: '{server.base_url}', model: tiny,"
        " max_new_tokens: 24, timeout_s: 5}\n"
        f"templates: {{examples_dir: '{REPO / 'examples'}'}}\n"
    )
    try:
        with serve_config(load_config(folder / "app.yaml", env={})) as served:
            yield served.url, server
    finally:
        server.stop()


def status_includes(text: str) -> str:
    return f"() => (document.querySelector('#judo-status')?.innerText || '').includes({text!r})"


def test_served_engine_streams_in_the_browser_then_a_dead_server_is_one_sentence(
    sync_playwright,  # noqa: F811 - the fixture imported above
    served_app,
    artifacts_dir,
):
    url, server = served_app
    with browser_page(sync_playwright, url) as page:
        page.get_by_text("JUDO Inspector").first.wait_for(timeout=30_000)
        page.get_by_text("bottle: contamination", exact=True).first.click()
        page.wait_for_timeout(1000)
        page.locator("#judo-run").click()
        page.wait_for_function(status_includes("finished"), timeout=60_000)
        streamed = page.locator("#judo-reasoning textarea").input_value()
        assert streamed.strip() and server.completed == 1
        assert server.requests[0].body["stream"] is True
        page.screenshot(path=str(artifacts_dir / "app-served-inspection.png"), full_page=True)

        server.stop()  # the server goes away while the app keeps running
        page.locator("#judo-run").click()
        page.wait_for_function(status_includes("cannot be reached"), timeout=60_000)
        status = page.locator("#judo-status").inner_text()
        assert server.base_url in status and "Traceback" not in status
