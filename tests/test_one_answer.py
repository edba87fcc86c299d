"""The app, `judo inspect` and `judo eval` give the same answer to the same input with the same settings.

All three build an `InspectionRequest` and ask one engine through the engine contract; this runs the
three real entry points (the served app over HTTP, the CLI, the evaluator writing records) on the same
MMAD questions, for the tiny model (greedy) and the comparator, and compares text, answer and cells.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judo.evaluate.records import read_records
from judo.evaluate.run import main as eval_main
from judo.evaluate.selection import select_items
from judo.inspect_cli import main as inspect_main
from judo.mmad import load_mmad
from judo.prompts import format_options
from tests.app_server import REPO, inspect_args, serve_tiny_app

pytestmark = pytest.mark.slow

TOKENS = 48  # configs/tiny.yaml's cap for the tiny engine: the CLI uses the engine's default
TYPES = ["Anomaly Detection", "Defect Localization", "Defect Classification"]


@pytest.fixture(scope="module")
def items(mmad_root):
    chosen, _ = select_items(load_mmad(mmad_root), types=TYPES, limit=5)
    return chosen


def _eval(mmad_root: Path, out: Path, tiny_model_dir: Path, engine: str) -> dict[str, object]:
    args = [
        "--mmad-root",
        str(mmad_root),
        "--out",
        str(out),
        "--types",
        *TYPES,
        "--limit",
        "5",
        "--no-progress",
        "--device",
        "cpu",
        "--max-new-tokens",
        str(TOKENS),
    ]
    args += ["--engine", "comparator"] if engine == "comparator" else ["--checkpoint", str(tiny_model_dir)]
    assert eval_main(args) == 0
    return {r.question_key: r for r in read_records([out])}


@pytest.mark.parametrize("engine", ["comparator", "tiny"])
def test_app_cli_and_eval_agree(engine, items, mmad_root, tiny_model_dir, tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    records = _eval(mmad_root, tmp_path / "eval.jsonl", tiny_model_dir, engine)
    assert len(records) == len(items) and all(r.raw.strip() for r in records.values())
    if engine == "comparator":  # it answers detection and position questions, abstains on the rest
        assert {r.type: r.predicted is not None for r in records.values()}["Anomaly Detection"]
    monkeypatch.setenv("JUDO_ENGINE_TINY_CHECKPOINT", str(tiny_model_dir))
    with serve_tiny_app(tiny_model_dir) as app:
        client = Client(app.url, verbose=False)
        for n, item in enumerate(items):
            options = format_options(item.question.options)
            query, template = item.sample.image_path, item.templates[0]
            # No product named: the app would otherwise add that product's golden gallery to the
            # comparator's bank (more templates than the CLI and the evaluator were given).
            category = ""
            record_path = tmp_path / f"cli-{n}.json"
            assert (
                inspect_main(
                    [
                        str(query),
                        str(template),
                        "--question",
                        item.question.text,
                        "--options",
                        options.replace("\n", ";"),
                        "--engine",
                        engine,
                        "--config",
                        str(REPO / "configs" / "tiny.yaml"),
                        "--record",
                        str(record_path),
                    ]
                )
                == 0
            )
            cli = json.loads(record_path.read_text())
            job = client.submit(
                *inspect_args(
                    handle_file(str(query)),
                    handle_file(str(template)),
                    question=item.question.text,
                    options=options,
                    engine=engine,
                    category=category,
                    max_new_tokens=TOKENS,
                ),
                api_name="/inspect",
            )
            for _ in job:
                pass
            final = job.outputs()[-1]
            app_text, app_result = final[2], final[5]
            ev = records[item.question_key]
            assert app_result["error"] is None, app_result
            assert cli["raw_output"] == app_text == ev.raw, item.question_key
            assert cli["answer"] == app_result["answer"] == ev.predicted, item.question_key
            cells = sorted(map(list, ev.cells or []))
            assert sorted(cli["cells"]) == sorted(app_result["cells"]) == cells, item.question_key
