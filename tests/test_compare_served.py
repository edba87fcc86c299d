"""Compare mode mixes a served engine (OpenAI-compatible server) with in-process engines: the served and
the in-process tiny model, greedy and capped alike, give the same answer and cells side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app_server import EXAMPLES, compare_args, serve_config
from tests.openai_server import OpenAIServer

pytestmark = pytest.mark.slow

QUERY = EXAMPLES / "bottle" / "bottle-contamination-000.png"
TEMPLATE = EXAMPLES / "templates" / "bottle" / "00.png"


@pytest.fixture(scope="module")
def mixed_app(tiny_model_dir, tmp_path_factory):
    from judo.engines import load_config

    server = OpenAIServer(tiny_model_dir).start()
    folder = tmp_path_factory.mktemp("mixed-app")
    (folder / "app.yaml").write_text(
        "engines:\n"
        f"  - {{id: served, label: Served tiny, kind: openai, base_url: '{server.base_url}', model: tiny,"
        " max_new_tokens: 24, timeout_s: 10}\n"
        f"  - {{id: local, label: Local tiny, checkpoint: '{tiny_model_dir}', max_new_tokens: 24}}\n"
        "  - {id: comparator, kind: comparator, label: Comparator}\n"
        f"templates: {{examples_dir: '{Path(EXAMPLES)}'}}\n"
    )
    try:
        with serve_config(load_config(folder / "app.yaml", env={})) as served:
            yield served.url, server
    finally:
        server.stop()


def test_compare_mixes_served_and_in_process_engines(mixed_app):
    from gradio_client import Client, handle_file

    url, server = mixed_app
    job = Client(url, verbose=False).submit(
        *compare_args(
            handle_file(str(QUERY)),
            handle_file(str(TEMPLATE)),
            ["served", "local", "comparator"],
            category="",
        ),
        api_name="/compare",
    )
    for _ in job:
        pass
    final = job.outputs()[-1]
    engines = {e["engine"]: e for e in final[11]["engines"]}
    assert set(engines) == {"served", "local", "comparator"}
    assert all(e["done"] and e["error"] is None for e in engines.values()), engines
    assert server.calls >= 1  # the served panel really went over HTTP
    assert final[1] and final[1] == final[4]  # served and local text, side by side, identical
    assert (engines["served"]["answer"], engines["served"]["cells"]) == (
        engines["local"]["answer"],
        engines["local"]["cells"],
    )
