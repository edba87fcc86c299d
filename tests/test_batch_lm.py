"""A language-model engine in a batch: the tiny random Qwen answers two parts; its answers are in the
table and the records, and a rerun does not ask it again."""

from __future__ import annotations

from pathlib import Path

import pytest

from judo.batch import BatchSpec, discover, run_batch
from judo.batch.report import export
from judo.batch.tray import make_tray
from judo.engines import build_engines, load_config
from judo.images import load_image

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_tiny_language_model_answers_every_part_of_a_batch(tiny_model_dir, tmp_path) -> None:
    env = {"JUDO_ENGINE_TINY_CHECKPOINT": str(tiny_model_dir)}
    config = load_config(REPO / "configs" / "tiny.yaml", env=env)
    config.engines = [config.engine("tiny")]
    (engine,) = build_engines(config)
    assert engine.available, engine.reason
    tray = make_tray(tmp_path / "tray", 2, golden=1, size=128, seed=3)
    out = tmp_path / "out"
    spec = BatchSpec(engine, [load_image(tray.golden[0])], out, category="bottle")
    results = [p.result for p in run_batch(discover(tray.parts[0].parent), spec)]
    assert [r.part for r in results] == ["part-000.png", "part-001.png"]
    for r in results:
        assert r.error is None and r.record["engine"]["id"] == "tiny"
        assert r.score is None  # no measurement: a language model has no strongest score
        assert r.answer and r.verdict in {"defect", "normal"}
        assert r.record["question"] == "Is there any defect in the object?"
        assert r.record["options"] == {"A": "Yes.", "B": "No."}
    rows = export(results, out).csv.read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and all(
        r.answer.split(" (")[0].replace('"', "") in rows[i + 1] for i, r in enumerate(results)
    )
    again = [p.result for p in run_batch(discover(tray.parts[0].parent), spec)]
    assert all(r.resumed for r in again)
