"""`judo compare` on hand-built runs over the synthetic MMAD root: tables, differences, export, plots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from judo.evaluate.compare import differences, disagreements, load_runs, run_name
from judo.evaluate.compare import main as compare_main
from judo.evaluate.plots import progression_points, stage_progression, subtask_bars
from judo.evaluate.records import EvalRecord
from judo.evaluate.score import AVERAGE, score
from judo.evaluate.selection import select_items
from judo.mmad import load_mmad

PNG = b"\x89PNG\r\n\x1a\n"


def write_run(path: Path, items, predict, with_cells: bool, root: Path) -> Path:
    """A records file answering `items`; `predict(i, item)` gives the letter."""
    with open(path, "w") as fh:
        for i, it in enumerate(items):
            q = it.question
            rec = EvalRecord(
                key=it.sample.key,
                question_key=it.question_key,
                index=it.index,
                question=q.text,
                type=q.type,
                options=dict(q.options),
                answer=q.answer,
                predicted=predict(i, it),
                raw=f"<answer>{predict(i, it)}</answer>",
                cells=[(3, 4), (3, 5)]
                if with_cells and not it.sample.is_normal
                else ([] if with_cells else None),
                templates=[str(it.templates[0].relative_to(root))],
            )
            fh.write(rec.to_json() + "\n")
    return path


def wrong(q) -> str:
    return next(letter for letter in q.options if letter != q.answer)


@pytest.fixture(scope="module")
def runs(mmad_root, tmp_path_factory):
    items, _ = select_items(load_mmad(mmad_root), limit=30)
    folder = tmp_path_factory.mktemp("runs")
    base = write_run(
        folder / "base.jsonl", items, lambda i, it: wrong(it.question), with_cells=False, root=mmad_root
    )
    mid = write_run(
        folder / "grpo.jsonl",
        items,
        lambda i, it: it.question.answer if i % 2 else wrong(it.question),
        False,
        mmad_root,
    )
    best = write_run(
        folder / "judo.rank0.jsonl", items, lambda i, it: it.question.answer, with_cells=True, root=mmad_root
    )
    return items, [base, mid, best]


def test_tables_differences_and_disagreements(runs):
    items, paths = runs
    loaded = load_runs([str(p) for p in paths], None)
    assert [r.name for r in loaded] == ["base", "grpo", "judo"]
    assert loaded[0].tables["official"].headline == 0.0 and loaded[2].tables["official"].headline == 100.0
    diffs = differences(loaded, "official")
    assert diffs["judo"][AVERAGE] == pytest.approx(100.0)
    assert diffs["grpo"][AVERAGE] == pytest.approx(loaded[1].tables["official"].headline)
    rows = disagreements(loaded)
    assert len(rows) == len(items)  # base is always wrong, judo always right
    assert set(rows[0]["runs"]) == {"base", "grpo", "judo"}
    assert rows[0]["runs"]["judo"]["correct"] is True and rows[0]["runs"]["base"]["correct"] is False


def test_compare_cli_exports_images_and_plots(runs, mmad_root, tmp_path, capsys, artifacts_dir):
    _, paths = runs
    out = tmp_path / "cmp"
    rc = compare_main(
        [
            *map(str, paths),
            "--names",
            "Base",
            "Base GRPO",
            "JUDO",
            "--mmad-root",
            str(mmad_root),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "Differences to Base" in text and "| JUDO |" in text
    data = json.loads((out / "compare.json").read_text())
    assert data["differences"]["strict"]["JUDO"]["Average"] == pytest.approx(100.0)
    for png in ("subtasks.png", "progression.png"):
        assert (out / png).read_bytes().startswith(PNG)
        shutil.copy(out / png, artifacts_dir / f"compare_{png}")
    rows = [json.loads(line) for line in (out / "disagreements.jsonl").read_text().splitlines()]
    assert rows and all({"query", "template0"} <= set(r["images"]) for r in rows)
    for row in rows[:5]:
        query = out / row["images"]["query"]
        assert query.is_symlink() and query.resolve() == (mmad_root / row["key"]).resolve()
        assert (out / row["images"]["template0"]).read_bytes().startswith(PNG)
    anomalous = next(r for r in rows if "seg:JUDO" in r["images"])
    assert (out / anomalous["images"]["seg:JUDO"]).read_bytes().startswith(PNG)


def test_compare_copy_mode_and_bad_input(runs, mmad_root, tmp_path, capsys):
    _, paths = runs
    out = tmp_path / "copy"
    assert (
        compare_main(
            [str(paths[0]), str(paths[2]), "--mmad-root", str(mmad_root), "--out", str(out), "--copy"]
        )
        == 0
    )
    row = json.loads((out / "disagreements.jsonl").read_text().splitlines()[0])
    assert not (out / row["images"]["query"]).is_symlink()
    capsys.readouterr()
    assert compare_main([str(paths[0]), str(paths[1]), "--names", "only-one"]) == 2
    assert "--names got 1 name(s) for 2 run(s)" in capsys.readouterr().err
    assert compare_main([str(paths[0]), str(paths[0])]) == 2
    assert "unique" in capsys.readouterr().err
    assert compare_main([str(tmp_path / "none.jsonl")]) == 2


def test_run_names_and_plots_directly(runs, tmp_path):
    _, paths = runs
    assert (
        run_name("runs/judo.rank*.jsonl") == "judo"
        and run_name("answers_1_shot_gpt-4o.json") == "answers_1_shot_gpt-4o"
    )
    tables = {r.name: r.tables["official"] for r in load_runs([str(p) for p in paths], None)}
    pts = progression_points(tables)
    assert pts[-1][1:] == (100.0, 100.0) and pts[0][1:] == (0.0, 0.0)
    assert stage_progression(tables, tmp_path / "p.png").read_bytes().startswith(PNG)
    assert subtask_bars(tables, tmp_path / "b.png").read_bytes().startswith(PNG)
    with pytest.raises(ValueError):
        subtask_bars({}, tmp_path / "none.png")
    assert score([]).headline == 0.0
