"""`judo eval` end to end on the synthetic MMAD root with the tiny model, then `judo score` on its records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from judo.evaluate.records import EvalRecord, read_records
from judo.evaluate.run import EvalError, build_parser, rank_path, run
from judo.evaluate.run import main as eval_main
from judo.evaluate.score_cli import main as score_main
from judo.evaluate.selection import SelectionError, read_manifest, select_items
from judo.grid import mask_to_cells
from judo.mmad import SUBTASKS, load_mmad, question_key
from tests.killed_eval import kill_eval_midway

MAX_NEW = "4"  # the tiny model's answers are noise anyway: keep generation short


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    """The tiny checkpoint (model, processor) loaded once for the in-process runs of this module."""
    from judo.models import load_model, load_processor

    return load_model(tiny_model_dir, device="cpu"), load_processor(tiny_model_dir)


def all_keys(root: Path, **filters) -> list[str]:
    items, _ = select_items(load_mmad(root), **filters)
    return [it.question_key for it in items]


def eval_args(root: Path, out: Path, ckpt: Path, *extra: str):
    return build_parser().parse_args(
        [
            "--mmad-root",
            str(root),
            "--out",
            str(out),
            "--checkpoint",
            str(ckpt),
            "--max-new-tokens",
            MAX_NEW,
            "--device",
            "cpu",
            "--no-progress",
            *extra,
        ]
    )


@pytest.mark.slow
def test_full_eval_then_score(mmad_root, tiny_model_dir, loaded, tmp_path, capsys):
    out = tmp_path / "run.jsonl"
    result = run(eval_args(mmad_root, out, tiny_model_dir, "--batch-size", "8"), loaded)
    expected = all_keys(mmad_root)
    assert result.asked == len(expected) and result.already_done == 0

    records = read_records([out])
    assert [r.question_key for r in records] == expected  # every question once, in order
    mmad = load_mmad(mmad_root)
    for rec in records[:20]:
        sample = mmad.samples[rec.key]
        q = sample.questions[rec.index]
        assert (rec.question, rec.type, rec.answer, rec.options) == (q.text, q.type, q.answer, q.options)
        assert rec.predicted is None or rec.predicted in q.options
        assert rec.templates == [str(sample.random_templates[0].relative_to(mmad_root))]
        assert rec.checkpoint == str(tiny_model_dir) and 1 <= rec.extra["batch_size"] <= 8
        assert rec.latency_s is not None and rec.latency_s >= 0
        assert rec.extra["subtask"] in SUBTASKS

    # Rerunning the finished command asks nothing.
    again = run(eval_args(mmad_root, out, tiny_model_dir, "--batch-size", "8"), loaded)
    assert again.asked == 0 and again.already_done == len(expected)

    capsys.readouterr()
    rc = score_main([str(out), "--mmad-root", str(mmad_root), "--json", str(tmp_path / "scores.json")])
    assert rc == 0
    captured = capsys.readouterr()
    text = captured.out
    assert "MMAD-official" in text and "strict" in text
    if not any(r.cells is not None for r in records):  # 4 random tokens rarely make a <seg> block
        assert "no seg metrics" in captured.err
    scores = json.loads((tmp_path / "scores.json").read_text())
    for mode in ("official", "strict"):
        assert 0.0 <= scores[mode]["Average"]["Average"] <= 100.0
    assert scores["summary"]["strict"]["records"] == len(expected)


@pytest.mark.slow
def test_eval_killed_midway_resumes_without_loss_or_duplicates(mmad_root, tiny_model_dir, loaded, tmp_path):
    out = tmp_path / "killed.jsonl"
    limit = 24
    args = [
        "--mmad-root",
        str(mmad_root),
        "--out",
        str(out),
        "--checkpoint",
        str(tiny_model_dir),
        "--max-new-tokens",
        MAX_NEW,
        "--device",
        "cpu",
        "--limit",
        str(limit),
        "--batch-size",
        "2",
        "--no-progress",
    ]
    partial = kill_eval_midway(args, out, after=6)
    assert 6 <= len(partial) < limit

    result = run(
        eval_args(mmad_root, out, tiny_model_dir, "--limit", str(limit), "--batch-size", "2"), loaded
    )
    assert result.already_done == len(partial) and result.asked == limit - len(partial)
    keys = [r.question_key for r in read_records([out])]
    assert len(keys) == len(set(keys)) == limit
    assert set(keys) == set(all_keys(mmad_root, limit=limit))


def test_exclude_manifest_and_filters(mmad_root, tiny_model_dir, loaded, tmp_path):
    mmad = load_mmad(mmad_root)
    sample_keys = list(mmad.samples)
    manifest = tmp_path / "train_keys.txt"
    manifest.write_text("# stage-1 images\n" + "\n".join(sample_keys[:3]) + "\n")
    as_json = tmp_path / "train_keys.json"
    as_json.write_text(json.dumps(sample_keys[:3]))
    as_builder_manifest = tmp_path / "manifest.json"  # what `judo data` writes
    as_builder_manifest.write_text(json.dumps({"stage": "stage1", "mmad_keys": sample_keys[:3]}))
    assert read_manifest(manifest) == read_manifest(as_json) == set(sample_keys[:3])
    assert read_manifest(as_builder_manifest) == set(sample_keys[:3])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"keys": sample_keys[:3]}))
    with pytest.raises(SelectionError, match="mmad_keys"):
        read_manifest(bad)

    out = tmp_path / "clean.jsonl"
    result = run(
        eval_args(
            mmad_root,
            out,
            tiny_model_dir,
            "--exclude",
            str(manifest),
            "--types",
            "Anomaly Detection",
            "--batch-size",
            "8",
            "--limit",
            "8",
        ),
        loaded,
    )
    records = read_records([out])
    assert records and not {r.key for r in records} & set(sample_keys[:3])
    assert {r.type for r in records} == {"Anomaly Detection"}
    assert result.excluded == 3  # one Anomaly Detection question per excluded image

    sub = all_keys(mmad_root, types=["Object Analysis"])
    types = {mmad.samples[k.split("#")[0]].questions[int(k.split("#")[1])].type for k in sub}
    assert types <= {"Object Structure", "Object Details"} and types


def test_bad_selection_is_a_clear_error(mmad_root, tmp_path, capsys):
    base = ["--mmad-root", str(mmad_root), "--out", str(tmp_path / "x.jsonl"), "--checkpoint", "unused"]
    assert eval_main([*base, "--datasets", "NoSuchSet"]) == 2
    assert "unknown dataset(s): NoSuchSet" in capsys.readouterr().err
    assert eval_main([*base, "--limit", "0"]) == 2
    assert "--limit must be >= 1" in capsys.readouterr().err
    assert eval_main([*base, "--exclude", str(tmp_path / "nope.txt")]) == 2
    assert "exclude manifest not found" in capsys.readouterr().err
    assert eval_main(["--mmad-root", str(tmp_path / "absent"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "MMAD root" in capsys.readouterr().err
    limited = ["--mmad-root", str(mmad_root), "--out", str(tmp_path / "y.jsonl"), "--limit", "1"]
    assert eval_main(limited) == 2  # engine model without --checkpoint
    assert "--checkpoint is required" in capsys.readouterr().err
    assert eval_main([*limited, "--checkpoint", str(tmp_path / "no-such-checkpoint")]) == 2
    assert "no-such-checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "y.jsonl").exists()  # a run that never started leaves no records file
    assert eval_main([*limited, "--checkpoint", "unused", "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    with pytest.raises(SelectionError, match="--shots"):
        select_items(load_mmad(mmad_root), shots=0)


def test_missing_images_are_all_reported_or_skipped(mmad_root, tiny_model_dir, loaded, tmp_path, capsys):
    root = tmp_path / "MMAD"
    shutil.copytree(mmad_root, root)
    mmad = load_mmad(root)
    samples = list(mmad.samples.values())
    gone = [samples[0].image_path, samples[1].random_templates[0]]
    for path in gone:
        path.unlink()
    out = tmp_path / "m.jsonl"
    rc = eval_main(["--mmad-root", str(root), "--out", str(out), "--checkpoint", str(tiny_model_dir)])
    assert rc == 2
    err = capsys.readouterr().err
    assert all(str(p) in err for p in gone) and "--skip-missing" in err
    assert not out.exists() or out.read_text() == ""

    sel = ["--types", "Anomaly Detection", "--limit", "6"]
    result = run(eval_args(root, out, tiny_model_dir, *sel, "--skip-missing", "--batch-size", "8"), loaded)
    affected = {s.key for s in samples if s.image_path in gone or s.random_templates[0] in gone}
    selected = {it.sample.key for it in select_items(mmad, types=["Anomaly Detection"], limit=6)[0]}
    assert result.skipped_missing == len(affected & selected) >= 2
    assert result.asked == 6 - result.skipped_missing
    assert not {r.key for r in read_records([out])} & affected


def test_resume_with_other_options_is_refused(mmad_root, tiny_model_dir, loaded, tmp_path):
    out = tmp_path / "r.jsonl"
    run(eval_args(mmad_root, out, tiny_model_dir, "--limit", "2"), loaded)
    with pytest.raises(EvalError, match="other options.*template"):
        run(eval_args(mmad_root, out, tiny_model_dir, "--limit", "4", "--template", "similar"), loaded)


def test_data_parallel_shards_merge(mmad_root, tiny_model_dir, loaded, tmp_path, monkeypatch, capsys):
    out = tmp_path / "dp.jsonl"
    limit = 10
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    first = run(eval_args(mmad_root, out, tiny_model_dir, "--limit", str(limit), "--batch-size", "3"), loaded)
    assert first.asked == limit // 2 and not first.merged and not out.exists()
    # Before the merge the shards are scorable with a glob.
    assert score_main([str(out.with_name("dp.rank*.jsonl"))]) == 0
    monkeypatch.setenv("RANK", "1")
    second = run(
        eval_args(mmad_root, out, tiny_model_dir, "--limit", str(limit), "--batch-size", "3"), loaded
    )
    assert second.merged and rank_path(out, 1).exists()
    merged = read_records([out])
    assert [r.question_key for r in merged] == all_keys(mmad_root, limit=limit)
    assert {r.extra["rank"] for r in merged} == {0, 1}
    capsys.readouterr()
    # run.jsonl together with its shards counts questions twice: refused with a pointer to the cause.
    assert score_main([str(out), str(out.with_name("dp.rank*.jsonl"))]) == 2
    assert "rank" in capsys.readouterr().err


def test_rag_needs_knowledge_and_uses_it(mmad_root, tiny_model_dir, loaded, tmp_path):
    out = tmp_path / "rag.jsonl"
    result = run(
        eval_args(mmad_root, out, tiny_model_dir, "--rag", "--prompt", "mmad", "--limit", "2"), loaded
    )
    assert result.asked == 2
    rec = read_records([out])[0]
    assert rec.extra["config"]["rag"] is True and rec.prompt == "mmad"

    root = tmp_path / "MMAD"
    shutil.copytree(mmad_root, root)
    (root / "domain_knowledge.json").unlink()
    with pytest.raises(EvalError, match="--rag needs domain knowledge"):
        run(eval_args(root, tmp_path / "rag2.jsonl", tiny_model_dir, "--rag", "--limit", "2"), loaded)


def test_question_keys_match_the_data_model(mmad_root):
    mmad = load_mmad(mmad_root)
    items, _ = select_items(mmad, limit=3)
    assert [it.question_key for it in items] == [
        question_key(it.sample.key, it.question.index) for it in items
    ]
    bare = EvalRecord(key="k", question="q", type="t", options={}, answer="A", predicted=None)
    assert EvalRecord.from_dict(json.loads(bare.to_json())) == bare
    full = EvalRecord(
        key="ds/bottle/test/broken/000.png",
        question="Is there a defect?",
        type="Anomaly Detection",
        options={"A": "Yes.", "B": "Nö."},
        answer="A",
        predicted="B",
        raw="<seg> (1,2) </seg>",
        question_key="ds/bottle/test/broken/000.png#0",
        index=0,
        cells=[(1, 2), (0, 15)],
        latency_s=0.25,
        engine="tiny",
        checkpoint="/ckpt",
        prompt="judo",
        templates=["ds/bottle/train/good/001.png"],
        source="judo",
        extra={"batch_size": 8, "subtask": "Anomaly Detection"},
    )
    back = EvalRecord.from_dict(json.loads(full.to_json()))
    assert back == EvalRecord(**{**full.__dict__, "cells": sorted(full.cells)})  # cells are stored sorted


def test_comparator_engine_answers_detection_and_abstains_elsewhere(mmad_root, tmp_path, capsys):
    out = tmp_path / "comparator.jsonl"
    types = ["Anomaly Detection", "Defect Analysis", "Object Classification"]
    rc = eval_main(
        [
            "--mmad-root",
            str(mmad_root),
            "--out",
            str(out),
            "--engine",
            "comparator",
            "--types",
            *types,
            "--limit",
            "16",
            "--no-progress",
        ]
    )
    assert rc == 0
    records = read_records([out])
    assert len(records) == 16 and all(r.engine == "comparator" and r.cells is not None for r in records)
    detection = [r for r in records if r.type == "Anomaly Detection"]
    others = [r for r in records if r.type != "Anomaly Detection"]
    assert detection and others
    assert all(r.predicted is None for r in others)  # abstains: never a guessed letter
    assert any(r.predicted in r.options for r in detection)
    capsys.readouterr()
    scores = tmp_path / "comparator.json"
    assert score_main([str(out), "--mmad-root", str(mmad_root), "--json", str(scores)]) == 0
    assert "Segmentation (beyond MMAD)" in capsys.readouterr().out
    seg = json.loads(scores.read_text())["summary"]["seg"]
    assert seg["seg_present_rate"] == 100.0 and seg["n_records"] == 16
    # The exact figures, derived here from the records and the masks: F1 per anomalous record, mean per
    # dataset, then mean over the datasets.
    mmad = load_mmad(mmad_root)
    per_dataset: dict[str, list[float]] = {}
    for rec in records:
        sample = mmad.samples[rec.key]
        if sample.is_normal:
            continue
        truth = mask_to_cells(np.asarray(Image.open(sample.mask_path)))
        pred = set(rec.cells)
        f1 = 2 * len(pred & truth) / (len(pred) + len(truth))
        per_dataset.setdefault(rec.key.split("/")[0], []).append(f1 * 100)
    assert per_dataset, "the comparator should have seen anomalous images"
    expected = {ds: sum(v) / len(v) for ds, v in per_dataset.items()}
    assert seg["n_anomalous"] == {ds: len(v) for ds, v in per_dataset.items()}
    assert seg["f1"] == pytest.approx({**expected, "Average": sum(expected.values()) / len(expected)})


def test_a_second_run_on_the_same_out_is_refused_and_writes_nothing(mmad_root, tmp_path, capsys):
    """Two `judo eval` on one --out used to duplicate every record; the second now stops at once."""
    from judo.evaluate.records import RecordWriter

    out = tmp_path / "comparator.jsonl"
    args = [
        "--mmad-root",
        str(mmad_root),
        "--out",
        str(out),
        "--engine",
        "comparator",
        "--limit",
        "4",
        "--no-progress",
    ]
    with RecordWriter(out):  # the first run, still writing
        capsys.readouterr()
        assert eval_main(args) == 2
        err = capsys.readouterr().err
        assert "is being written by another run" in err and "Traceback" not in err
        assert out.read_text() == ""
    assert eval_main(args) == 0  # once the first run is gone, the same command runs
    assert len(read_records([out])) == 4
