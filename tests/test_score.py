"""Scoring on hand-built records with known per-cell accuracies (no model, no images)."""

from __future__ import annotations

import json
import random
import warnings

import pytest

from judo.evaluate.records import (
    DuplicateRecordError,
    EvalRecord,
    RecordFormatError,
    RecordWriter,
    read_records,
    record_from_mmad,
    split_mmad_question,
)
from judo.evaluate.report import csv_table, json_tables, markdown_seg, markdown_table
from judo.evaluate.score import AVERAGE, score, score_both, score_seg
from judo.evaluate.score_cli import main as score_main
from judo.mmad import SUBTASKS

YES_NO = {"A": "Yes.", "B": "No."}
FOUR = {"A": "Top left.", "B": "Bottom right.", "C": "Center.", "D": "Top right."}


def rec(
    key: str, qtype: str, answer: str, predicted: str | None, *, q: str | None = None, cells=None
) -> EvalRecord:
    """One record; the question text defaults to something unique per (key, type, answer, predicted)."""
    return EvalRecord(
        key=key,
        question=q or f"{qtype} about {key}?",
        type=qtype,
        options=YES_NO if qtype == "Anomaly Detection" else FOUR,
        answer=answer,
        predicted=predicted,
        cells=cells,
    )


def img(ds: str, defect: str, i: int, cat: str = "bottle") -> str:
    return f"{ds}/{cat}/image/{defect}/{i:03d}.png"


def test_anomaly_detection_is_mean_of_normal_and_anomalous_accuracy():
    records = [
        rec(img("DS-MVTec", "good", i), "Anomaly Detection", "B", "B" if i < 3 else "A") for i in range(4)
    ]
    records.append(rec(img("DS-MVTec", "broken", 0), "Anomaly Detection", "A", "B"))
    table = score(records)
    # unbalanced accuracy would be 3/5 = 60; balanced is (75 + 0) / 2
    assert table.values["DS-MVTec"]["Anomaly Detection"] == pytest.approx(37.5)
    assert table.counts["DS-MVTec"]["Anomaly Detection"] == (3, 5)
    assert table.overkill["DS-MVTec"] == pytest.approx(25.0)
    assert table.miss["DS-MVTec"] == pytest.approx(100.0)


def test_normal_rule_is_the_lowercase_substring_good_in_the_key():
    # "GoodsAD" has no lowercase "good": only the image under good/ is normal.
    records = [
        rec(img("GoodsAD", "good", 0, "cigarette_box"), "Anomaly Detection", "B", "B"),
        rec(img("GoodsAD", "open", 0, "cigarette_box"), "Anomaly Detection", "A", "B"),
    ]
    t = score(records)
    assert t.detection["GoodsAD"] == {"normal": (1, 1), "anomalous": (0, 1)}
    assert t.values["GoodsAD"]["Anomaly Detection"] == pytest.approx(50.0)


def test_object_structure_and_details_merge_into_object_analysis():
    key = img("VisA", "good", 0, "candle")
    records = [
        rec(key, "Object Structure", "A", "A"),
        rec(key, "Object Details", "B", "C"),
        rec(key, "Object Details", "C", "C", q="another detail?"),
    ]
    t = score(records)
    assert t.subtasks == ["Object Analysis"]
    assert t.values["VisA"]["Object Analysis"] == pytest.approx(200 / 3)


def test_full_table_row_and_column_averages():
    # Two datasets, every subtask; accuracies chosen per cell.
    plan = {
        "DS-MVTec": {
            "Defect Classification": (1, 2),
            "Defect Localization": (2, 2),
            "Defect Description": (0, 1),
            "Defect Analysis": (1, 1),
            "Object Classification": (1, 1),
            "Object Analysis": (1, 4),
        },
        "VisA": {
            "Defect Classification": (0, 1),
            "Defect Localization": (1, 2),
            "Defect Description": (1, 1),
            "Defect Analysis": (2, 2),
            "Object Classification": (0, 2),
            "Object Analysis": (3, 3),
        },
    }
    records = []
    for ds, cells in plan.items():
        # AD: normal 1/2 right, anomalous 2/2 right -> (50 + 100) / 2 = 75
        records += [
            rec(img(ds, "good", i), "Anomaly Detection", "B", "B" if i == 0 else "A") for i in range(2)
        ]
        records += [rec(img(ds, "crack", i), "Anomaly Detection", "A", "A") for i in range(2)]
        for st, (ok, n) in cells.items():
            qtype = "Object Details" if st == "Object Analysis" else st
            for i in range(n):
                records.append(rec(img(ds, "crack", i), qtype, "A", "A" if i < ok else "B", q=f"{st} {i}"))
    t = score(records)
    expected = {ds: {st: ok / n * 100 for st, (ok, n) in cells.items()} for ds, cells in plan.items()}
    for ds in plan:
        expected[ds]["Anomaly Detection"] = 75.0
        for st, v in expected[ds].items():
            assert t.values[ds][st] == pytest.approx(v), (ds, st)
        assert t.values[ds][AVERAGE] == pytest.approx(sum(expected[ds].values()) / 7)
    assert t.subtasks == list(SUBTASKS)
    for st in SUBTASKS:
        assert t.values[AVERAGE][st] == pytest.approx((expected["DS-MVTec"][st] + expected["VisA"][st]) / 2)
    assert t.headline == pytest.approx((t.values["DS-MVTec"][AVERAGE] + t.values["VisA"][AVERAGE]) / 2)
    assert t.empty_cells == []


def test_dropped_answers_official_vs_strict():
    records = [
        rec(img("VisA", "crack", 0), "Defect Classification", "A", None, q="q0"),  # unparseable: dropped
        rec(
            img("VisA", "crack", 1), "Defect Classification", "A", "A", q="q1"
        ),  # skipped by the official scorer
        rec(img("VisA", "crack", 2), "Defect Classification", "A", "B", q="q2"),
        rec(img("VisA", "crack", 3), "Defect Classification", "A", "A", q="q3"),
    ]
    both = score_both(records)
    off, strict = both["official"], both["strict"]
    assert (off.n_dropped, off.n_skipped, off.n_scored, off.n_unparseable) == (1, 1, 2, 1)
    assert off.values["VisA"]["Defect Classification"] == pytest.approx(50.0)  # q2 wrong, q3 right
    assert (strict.n_dropped, strict.n_skipped, strict.n_scored) == (0, 0, 4)
    assert strict.values["VisA"]["Defect Classification"] == pytest.approx(50.0)  # 2 of 4
    assert strict.counts["VisA"]["Defect Classification"] == (2, 4)


def test_a_type_with_no_scored_records_is_zero_and_flagged():
    records = [
        rec(img("VisA", "crack", 0), "Defect Analysis", "A", "A"),
        rec(img("DS-MVTec", "crack", 0), "Defect Description", "A", "A"),
    ]
    t = score(records)
    assert t.values["VisA"]["Defect Description"] == 0.0
    assert t.values["VisA"][AVERAGE] == pytest.approx(50.0)
    assert ("VisA", "Defect Description") in t.empty_cells
    assert ("DS-MVTec", "Defect Analysis") in t.empty_cells
    assert "Cells with no scored records" in markdown_table(t)


def test_bad_correct_answer_is_dropped_in_both_modes():
    records = [
        rec(img("VisA", "crack", 0), "Defect Analysis", "", "A"),
        rec(img("VisA", "crack", 1), "Defect Analysis", "A", "A"),
    ]
    strict = score(records, "strict")
    assert strict.n_bad_truth == 1 and strict.counts["VisA"]["Defect Analysis"] == (1, 1)


def test_unknown_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        score([], "lenient")  # type: ignore[arg-type]


def _oracle(entries: list[dict]) -> dict[str, dict[str, float]]:
    """A literal restatement of MMAD's scoring loop (incl. removing from the list being iterated)."""
    entries = [dict(e) for e in entries]

    def merged(t):
        return "Object Analysis" if t in ("Object Structure", "Object Details") else t

    datasets = list(dict.fromkeys(e["image"].split("/")[0] for e in entries))
    types = list(dict.fromkeys(merged(e["question_type"]) for e in entries))
    stats = {(d, t): [0, 0] for d in datasets for t in types}
    det = {(d, s): [0, 0] for d in datasets for s in ("n", "a")}
    for e in entries:
        if e["correct_answer"] not in "ABCDE" or e["gpt_answer"] not in list("ABCDE"):
            entries.remove(e)
            continue
        d, t, ok = (
            e["image"].split("/")[0],
            merged(e["question_type"]),
            e["correct_answer"] == e["gpt_answer"],
        )
        stats[d, t][0] += ok
        stats[d, t][1] += 1
        if t == "Anomaly Detection":
            side = det[d, "n" if "good" in e["image"] else "a"]
            side[0] += ok
            side[1] += 1

    def acc(c, n):
        return c / n if n else 0

    table = {}
    for d in datasets:
        row = {t: acc(*stats[d, t]) * 100 for t in types}
        if "Anomaly Detection" in row:
            row["Anomaly Detection"] = (acc(*det[d, "n"]) + acc(*det[d, "a"])) / 2 * 100
        row["Average"] = sum(row.values()) / len(types)
        table[d] = row
    table["Average"] = {c: sum(table[d][c] for d in datasets) / len(datasets) for c in [*types, "Average"]}
    return table


def test_official_mode_matches_a_literal_restatement_of_mmads_loop_on_random_records():
    rng = random.Random(7)
    types = [
        "Anomaly Detection",
        "Defect Classification",
        "Defect Localization",
        "Defect Description",
        "Defect Analysis",
        "Object Classification",
        "Object Structure",
        "Object Details",
    ]
    for trial in range(30):
        entries = []
        for i in range(rng.randint(5, 80)):
            ds = rng.choice(["DS-MVTec", "MVTec-LOCO", "VisA", "GoodsAD"])
            defect = rng.choice(["good", "crack", "hole"])
            gpt = rng.choice(["A", "B", "C", "A", "B", "I cannot tell", "", "F"])
            entries.append(
                {
                    "image": f"{ds}/cat/image/{defect}/{i:03d}.png",
                    "question": {"type": "text", "text": f"Question: q{i} \nA. x\nB. y\n"},
                    "question_type": rng.choice(types),
                    "correct_answer": rng.choice("AB"),
                    "gpt_answer": gpt,
                }
            )
        ours = score([record_from_mmad(e) for e in entries]).as_dict()
        expected = _oracle(entries)
        assert set(ours) == set(expected), trial
        for row in expected:
            for col, v in expected[row].items():
                assert ours[row][col] == pytest.approx(v), (trial, row, col)


# ---------------------------------------------------------------- records: reading, mixing, duplicates


def _mmad_entry(
    image: str, qtype: str, correct: str, gpt: str, text: str = "Is there any defect in the object?"
):
    return {
        "image": image,
        "question": {"type": "text", "text": f"Question: {text} \nA. Yes.\nB. No.\n"},
        "question_type": qtype,
        "correct_answer": correct,
        "gpt_answer": gpt,
    }


def test_split_mmad_question_recovers_text_and_options():
    text, opts = split_mmad_question(
        {"type": "text", "text": "Question: Where is it? \nA. Top.\nB. Left side.\n"}
    )
    assert text == "Where is it?" and opts == {"A": "Top.", "B": "Left side."}


def test_mmad_answer_json_and_our_jsonl_mix_and_duplicates_are_an_error(tmp_path):
    key = img("VisA", "crack", 0)
    mmad_file = tmp_path / "answers_1_shot_model.json"
    mmad_file.write_text(
        json.dumps(
            [
                _mmad_entry(key, "Anomaly Detection", "A", "A"),
                _mmad_entry(
                    img("VisA", "good", 0), "Anomaly Detection", "B", "The image looks fine"
                ),  # unparsed
            ]
        )
    )
    ours = tmp_path / "run.jsonl"
    other = rec(img("VisA", "crack", 1), "Defect Analysis", "C", "C")
    ours.write_text(other.to_json() + "\n")
    records = read_records([mmad_file, ours])
    assert [r.source for r in records] == ["mmad", "mmad", "judo"]
    assert records[1].predicted is None and records[1].raw == "The image looks fine"

    same_question = EvalRecord(
        key=key,
        question="Is there any defect in the object?",
        type="Anomaly Detection",
        options=dict(YES_NO),
        answer="A",
        predicted="B",
        question_key=f"{key}#0",
    )
    ours.write_text(other.to_json() + "\n" + same_question.to_json() + "\n")
    with pytest.raises(DuplicateRecordError, match="1 question"):
        read_records([mmad_file, ours])
    assert read_records([mmad_file, ours], duplicates="first")[0].predicted == "A"
    assert read_records([mmad_file, ours], duplicates="last")[0].predicted == "B"
    assert len(read_records([mmad_file, ours], duplicates="keep")) == 4


def test_records_files_by_glob_and_missing_files(tmp_path):
    for r in range(2):
        (tmp_path / f"run.rank{r}.jsonl").write_text(
            rec(img("VisA", "crack", r), "Defect Analysis", "A", "A").to_json() + "\n"
        )
    assert len(read_records([str(tmp_path / "run.rank*.jsonl")])) == 2
    with pytest.raises(FileNotFoundError, match="no records file matches"):
        read_records([str(tmp_path / "nothing*.jsonl")])
    with pytest.raises(FileNotFoundError, match="not found"):
        read_records([tmp_path / "absent.jsonl"])


def test_bad_lines_and_torn_last_line(tmp_path):
    good = rec(img("VisA", "crack", 0), "Defect Analysis", "A", "A").to_json()
    path = tmp_path / "run.jsonl"
    path.write_text(good + "\n" + good[: len(good) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(read_records([path])) == 1
    assert any("torn last line" in str(w.message) for w in caught)

    path.write_text("{not json}\n" + good + "\n")
    with pytest.raises(RecordFormatError, match=r"run.jsonl:1: not a JSON line"):
        read_records([path])
    path.write_text(json.dumps({"image": "x", "answer": "A"}) + "\n")
    with pytest.raises(RecordFormatError, match="not an eval record"):
        read_records([path])


def test_writer_repairs_a_torn_tail_and_refuses_to_record_a_question_twice(tmp_path):
    path = tmp_path / "run.jsonl"
    a = rec(img("VisA", "crack", 0), "Defect Analysis", "A", "A")
    a.question_key = "VisA/x#0"
    b = rec(img("VisA", "crack", 1), "Defect Analysis", "A", "B")
    b.question_key = "VisA/x#1"
    path.write_text(a.to_json() + "\n" + b.to_json()[:30])
    with RecordWriter(path) as w:
        assert w.discarded_bytes == 30 and w.done == {"VisA/x#0"}
        w.write([b])
        with pytest.raises(DuplicateRecordError):
            w.write([a])
    assert [r.question_key for r in read_records([path])] == ["VisA/x#0", "VisA/x#1"]


# ---------------------------------------------------------------- seg metrics and renderings


def test_seg_scores_on_anomalous_and_emptiness_on_normal():
    bad, good = img("VisA", "crack", 0), img("VisA", "good", 0)
    truth = {bad: frozenset({(1, 1), (1, 2)}), good: frozenset()}
    records = [
        rec(bad, "Defect Localization", "A", "A", cells=[(1, 1), (1, 2)]),  # F1 1, IoU 1
        rec(bad, "Defect Analysis", "A", "A", cells=[(1, 1)]),  # F1 2/3, IoU 1/2
        rec(good, "Anomaly Detection", "B", "B", cells=[]),  # empty
        rec(good, "Object Classification", "B", "B", cells=[(0, 0)]),  # not empty
        rec(img("VisA", "hole", 9), "Defect Analysis", "A", "A", cells=None),  # no truth: left out
    ]
    seg = score_seg(records, truth)
    assert seg.f1["VisA"] == pytest.approx((1 + 2 / 3) / 2 * 100)
    assert seg.iou["VisA"] == pytest.approx(75.0)
    assert seg.empty_rate["VisA"] == pytest.approx(50.0)
    assert seg.n_no_truth == 1 and seg.present_rate == pytest.approx(80.0)
    assert "Seg F1" in markdown_seg(seg)


def test_renderings_have_paper_labels_and_json_shape():
    records = [
        rec(img("VisA", "good", 0), "Anomaly Detection", "B", "B"),
        rec(img("VisA", "crack", 0), "Anomaly Detection", "A", None),
    ]
    tables = score_both(records)
    md = markdown_table(tables["official"])
    assert "Anomaly Discrimination" in md and "| **Average** |" in md
    csv_text = csv_table(tables)
    assert csv_text.splitlines()[0].startswith("Mode,Dataset,Anomaly Discrimination")
    data = json_tables(tables)
    assert data["official"]["VisA"]["Anomaly Detection"] == pytest.approx(50.0)  # anomalous side empty -> 0
    assert data["strict"]["Average"]["Average"] == pytest.approx(50.0)
    assert data["summary"]["strict"]["unparseable"] == 1


def test_score_cli_writes_json_csv_markdown_and_fails_clearly(tmp_path, capsys):
    path = tmp_path / "run.jsonl"
    path.write_text(
        "".join(
            r.to_json() + "\n"
            for r in [
                rec(img("VisA", "good", 0), "Anomaly Detection", "B", "B"),
                rec(img("VisA", "crack", 0), "Anomaly Detection", "A", "A"),
            ]
        )
    )
    rc = score_main(
        [
            str(path),
            "--json",
            str(tmp_path / "s.json"),
            "--csv",
            str(tmp_path / "s.csv"),
            "--markdown",
            str(tmp_path / "s.md"),
            "--plot",
            str(tmp_path / "s.png"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "Headline Average: 100.00 (MMAD-official), 100.00 (strict)" in out
    assert json.loads((tmp_path / "s.json").read_text())["official"]["Average"]["Average"] == 100.0
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "s.md").read_text().startswith("Headline Average")
    assert (tmp_path / "s.csv").read_text().count("\n") == 5  # header + 2 rows x 2 modes
    assert score_main([str(tmp_path / "missing.jsonl")]) == 2
    assert "records file not found" in capsys.readouterr().err
    (tmp_path / "empty.jsonl").write_text("")
    assert score_main([str(tmp_path / "empty.jsonl")]) == 2
    assert "no records" in capsys.readouterr().err
